/* A command for `membudget run` to watch (tests/run/run.py):
 *
 *   grow MIB [--count FILE TIMES] [--sleep-ms MS] [--pause-at MIB FILE TEXT]
 *
 * Allocates MIB MiB, one touched MiB at a time, and exits 0 ("allocated N
 * MiB" on stdout) unless the budget stops it first.
 *   --count FILE TIMES   adds one line to FILE first; once FILE has more
 *                        than TIMES lines, exits 0 at once ("enough runs"):
 *                        the first TIMES runs grow, the next one does not
 *   --sleep-ms MS        sleeps MS milliseconds before growing
 *   --pause-at MIB FILE TEXT  after MIB MiB, waits (up to 120 s) until FILE
 *                        holds TEXT, then goes on growing */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Lines in path after adding one. */
static long count_run(const char *path) {
    FILE *f = fopen(path, "a");
    if (f == NULL) {
        perror(path);
        exit(3);
    }
    fputs("run\n", f);
    fclose(f);
    f = fopen(path, "r");
    long lines = 0;
    for (int c; f != NULL && (c = fgetc(f)) != EOF;) lines += c == '\n';
    if (f != NULL) fclose(f);
    return lines;
}

static int file_holds(const char *path, const char *text) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: grow MIB [--count FILE TIMES] [--sleep-ms MS] "
                        "[--pause-at MIB FILE TEXT]\n");
        return 2;
    }
    long mib = atol(argv[1]), pause_at = -1;
    const char *pause_file = NULL, *pause_text = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 2 < argc) {
            if (count_run(argv[i + 1]) > atol(argv[i + 2])) {
                puts("enough runs");
                return 0;
            }
            i += 2;
        } else if (strcmp(argv[i], "--sleep-ms") == 0 && i + 1 < argc) {
            sleep_ms(atol(argv[++i]));
        } else if (strcmp(argv[i], "--pause-at") == 0 && i + 3 < argc) {
            pause_at = atol(argv[i + 1]);
            pause_file = argv[i + 2];
            pause_text = argv[i + 3];
            i += 3;
        } else {
            fprintf(stderr, "grow: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    for (long i = 0; i < mib; i++) {
        if (i == pause_at) {
            for (int t = 0; t < 1200 && !file_holds(pause_file, pause_text); t++) sleep_ms(100);
        }
        char *p = malloc(1 << 20);
        if (p == NULL) {
            printf("malloc failed at %ld MiB\n", i);
            return 4;
        }
        memset(p, (int)i, 1 << 20);
    }
    printf("allocated %ld MiB\n", mib);
    return 0;
}
