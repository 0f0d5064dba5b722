/* A process to command from outside (tests/control/run.py): registers a
 * pressure callback that appends "level N" to LOG, takes MIB MiB early, says
 * "ready PID" and then waits without allocating (idle: no allocator slow
 * path, so no inline monitor tick), until SIGTERM ends it through exit().
 *
 *   target LOG MIB [map|busy|fork]
 *
 *   (none)  MIB MiB of malloc'd 1 MiB blocks, every byte touched;
 *   map     one anonymous mapping of MIB MiB, left untouched (the counter
 *           charges it: a large footprint without the memory);
 *   busy    as (none), then allocates 128 KiB every 50 ms (the inline
 *           monitor ticks: a page without the control thread);
 *   fork    as (none), then forks: the child allocates 8 MiB (its first
 *           monitor tick), says "child PID" and waits too. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "membudget.h"

static int log_fd = -1;
static volatile sig_atomic_t stop;

/* Runs on the library's thread for `membudget release`: write(2) only. */
static void on_pressure(int level, void *arg) {
    (void)arg;
    char line[32];
    int n = snprintf(line, sizeof line, "level %d pid %ld\n", level, (long)getpid());
    if (n > 0 && write(log_fd, line, (size_t)n) < 0) _exit(3);
}

static void on_term(int sig) {
    (void)sig;
    stop = 1;
}

static void take_blocks(size_t mib) {
    for (size_t i = 0; i < mib; i++) {
        char *p = malloc(1 << 20);
        if (p == NULL) {
            fprintf(stderr, "target: malloc failed after %zu MiB\n", i);
            exit(2);
        }
        memset(p, 1, 1 << 20);
    }
}

static void wait_idle(void) {
    while (!stop) pause();
}

/* A fresh 128 KiB block every 50 ms, kept (a freed one would come back from
 * the allocator's cache without a slow path): 2.5 MiB a second. */
static void busy(void) {
    while (!stop) {
        char *p = malloc(128 << 10);
        if (p != NULL) memset(p, 2, 128 << 10);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: target LOG MIB [map|busy|fork]\n");
        return 2;
    }
    const char *mode = argc > 3 ? argv[3] : "";
    size_t mib = strtoul(argv[2], NULL, 10);
    log_fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0 || membudget_on_pressure(on_pressure, NULL) != 0) {
        perror("target");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    if (strcmp(mode, "map") == 0) {
        if (mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
            MAP_FAILED) {
            perror("target: mmap");
            return 2;
        }
    } else {
        take_blocks(mib);
    }
    printf("ready %ld\n", (long)getpid());
    fflush(stdout);
    if (strcmp(mode, "busy") == 0) {
        busy();
    } else if (strcmp(mode, "fork") == 0) {
        pid_t child = fork();
        if (child == 0) {
            take_blocks(8);
            printf("child %ld\n", (long)getpid());
            fflush(stdout);
            wait_idle();
            exit(0);
        }
        wait_idle();
        if (child > 0) kill(child, SIGTERM);
    } else {
        wait_idle();
    }
    exit(0);
}
