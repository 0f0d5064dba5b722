/* The membudget command (DESIGN §9): what its subcommands share — error lines
 * and exit codes, option parsing, finding the library and the report tool, and
 * byte counts in the library's own format.  The command is an ordinary program
 * (stdio and malloc are fine here); it never runs under the preload itself. */
#ifndef MEMBUDGET_TOOLS_CLI_H
#define MEMBUDGET_TOOLS_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/fmt.h" /* mb_bytes_text, mb_bytes_short_text: sizes as the library writes them */

/* Exit codes of the command itself (a command run by `membudget run` passes
 * its own status through). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1 /* the request could not be done (no such process, ...) */
#define CLI_EXIT_USAGE 2   /* bad arguments: one line on stderr */

/* "membudget SUB: message" on stderr, then exit(CLI_EXIT_USAGE).  The message
 * names the argument and the accepted form. */
_Noreturn void cli_usage_error(const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "membudget SUB: message" on stderr. */
void cli_error(const char *sub, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* getopt_long with the error lines of this command.  Returns the option, -1 at
 * the end; on an unknown option or a missing value it exits with a usage
 * error whose text lists `accepted`.  optstring must start with ':' (and with
 * "+:" to stop at the first operand). */
int cli_getopt(const char *sub, int argc, char **argv, const char *optstring,
               const struct option *longopts, const char *accepted);
/* Resets getopt for the next parse. */
void cli_getopt_reset(void);

/* Parsers of option values; false on anything but the whole accepted form. */
/* s as a JSON string on stdout (tx_json: well-formed UTF-8 kept, quotes,
 * backslashes and control bytes escaped, other bytes as U+FFFD). */
void cli_json_string(const char *s);
bool cli_parse_seconds(const char *s, double min, double max, double *out);
bool cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* The installation layout.  The library is looked for next to the executable
 * (the build tree: build/membudget beside build/libmembudget.so), then in
 * ../lib relative to it (an installed tree, wherever DESTDIR put it), then in
 * the library directory compiled in; the report tool likewise beside the
 * executable, in ../libexec/membudget, then in the compiled-in directory.
 * Each writes the absolute path found, or returns false and lists the places
 * looked at in `looked`. */
bool cli_find_library(char *out, size_t cap, char *looked, size_t looked_cap);
bool cli_find_report_tool(char *out, size_t cap, char *looked, size_t looked_cap);

/* Subcommands: argv[0] is the subcommand's name; each returns the exit code. */
int cmd_run(int argc, char **argv);
int cmd_limits(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_report(int argc, char **argv);
/* state, pages, release and dump (tools/cmd_control.c): argv[0] says which. */
int cmd_control(int argc, char **argv);
/* group (tools/cmd_group.c); top and limits hand --group to cmd_group_of. */
int cmd_group(int argc, char **argv);
int cmd_group_of(const char *sub, int argc, char **argv);
bool cmd_group_wanted(int argc, char **argv);

#endif
