/* A process to watch: grows by STEP_KIB every INTERVAL_MS up to MAX_MIB (0: no
 * maximum, until the budget stops it), touching what it allocates, and exits
 * normally (through exit(), so the library's destructor runs) on SIGTERM or
 * SIGINT.  Each step is a fresh large allocation, so each passes an allocator
 * slow path and the monitor ticks (at most once per MEMBUDGET_INTERVAL).
 *
 *   live STEP_KIB INTERVAL_MS MAX_MIB [fork|sites]
 *
 * Prints "ready PID" once it has allocated its first step; with "fork", a
 * child does the same after the parent's first step and prints "child PID".
 * With "sites", the steps come from two named allocation sites, so that the
 * sampled top site is known: of every four steps, three are allocated by
 * grow_site_a and one by grow_site_b (step i by grow_site_b when i % 4 == 3),
 * and "done PID" is printed once MAX_MIB is reached. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static int two_sites;

/* The allocation sites of "sites" mode: named, never inlined, so that their
 * return addresses symbolize to these names. */
__attribute__((noinline)) char *grow_site_a(size_t step) {
    char *p = malloc(step);
    if (p != NULL) memset(p, 1, step);
    __asm__ volatile("" ::: "memory"); /* not a tail call */
    return p;
}

__attribute__((noinline)) char *grow_site_b(size_t step) {
    char *p = malloc(step);
    if (p != NULL) memset(p, 2, step);
    __asm__ volatile("" ::: "memory");
    return p;
}

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void grow(size_t step, long interval_ms, size_t max_bytes, const char *label) {
    size_t total = 0, steps = 0;
    int announced = 0, done = 0;
    while (!stop) {
        if (max_bytes == 0 || total + step <= max_bytes) {
            char *p;
            if (!two_sites) {
                p = malloc(step);
                if (p != NULL) memset(p, 1, step);
            } else {
                p = steps % 4 == 3 ? grow_site_b(step) : grow_site_a(step);
            }
            if (p == NULL) {
                fprintf(stderr, "live: malloc failed at %zu bytes\n", total);
                exit(1);
            }
            total += step;
            steps++;
        } else if (two_sites && !done) {
            printf("done %ld\n", (long)getpid());
            fflush(stdout);
            done = 1;
        }
        if (!announced) {
            printf("%s %ld\n", label, (long)getpid());
            fflush(stdout);
            announced = 1;
        }
        struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: live STEP_KIB INTERVAL_MS MAX_MIB [fork|sites]\n");
        return 2;
    }
    size_t step = (size_t)strtoul(argv[1], NULL, 10) << 10;
    long interval_ms = strtol(argv[2], NULL, 10);
    size_t max_bytes = (size_t)strtoul(argv[3], NULL, 10) << 20;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    two_sites = argc > 4 && strcmp(argv[4], "sites") == 0;
    if (argc > 4 && strcmp(argv[4], "fork") == 0) {
        pid_t child = fork();
        if (child == 0) {
            grow(step, interval_ms, max_bytes, "child");
            return 0;
        }
        grow(step, interval_ms, max_bytes, "ready");
        kill(child, SIGTERM);
        waitpid(child, NULL, 0);
        return 0;
    }
    grow(step, interval_ms, max_bytes, "ready");
    return 0;
}
