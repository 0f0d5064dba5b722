/* The start-up handshake between `membudget run` and the library it preloads:
 * how `run` learns that the library really started in the command (ld.so
 * skips a preload it cannot load with one warning, and a static or setuid
 * program never reads LD_PRELOAD at all).  A format shared by preload/init.c
 * (the answer) and tools/run_start.c (the question), as the stats page's is.
 *
 * `run` makes an AF_UNIX SOCK_SEQPACKET pair, leaves one end open across exec
 * and names it in the environment:
 *
 *     MEMBUDGET_HANDSHAKE=FD:INODE
 *
 * FD the inherited descriptor, INODE its st_ino: a process that inherited the
 * variable but whose FD is now something else (closed and reused) sends
 * nothing.  A socket rather than a pipe, so that a late answer to a `run` that
 * has gone costs nothing: send(MSG_NOSIGNAL | MSG_DONTWAIT) raises no SIGPIPE
 * and never blocks.  The library takes the variable out of the environment at
 * start-up, so the programs the command execs never answer in its place, then
 * sends one record and closes the descriptor:
 *
 *     membudget-handshake PID STATE VERSION\n
 *
 * STATE is `allocator` when the library is the process's malloc, `foreign`
 * when it is loaded but another malloc won (the program defines its own). */
#ifndef MEMBUDGET_PRELOAD_HANDSHAKE_H
#define MEMBUDGET_PRELOAD_HANDSHAKE_H

#define MB_HANDSHAKE_ENV "MEMBUDGET_HANDSHAKE"
#define MB_HANDSHAKE_TAG "membudget-handshake"
#define MB_HANDSHAKE_ALLOCATOR "allocator"
#define MB_HANDSHAKE_FOREIGN "foreign"
#define MB_HANDSHAKE_RECORD_MAX 128 /* bytes, the newline included */

#endif
