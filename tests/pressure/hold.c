/* An idle process for the outside-pressure tests (tests/pressure/run.py):
 * registers a pressure callback, allocates and touches MIB mebibytes, prints
 * "ready PID", then waits for lines on standard input: "dump PATH" writes a
 * report there with membudget_dump() and answers "dumped RC"; "grow N"
 * allocates and touches N more mebibytes and answers "grown N"; the end of the
 * input ends the process.  Each callback writes one line "level N" to
 * standard output with write(2) (it may run on the monitor thread or inside
 * an allocation).  The public API is looked up with dlsym so that the program
 * builds without the library. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_pressure(int level, void *arg) {
    (void)arg;
    char line[32];
    int n = snprintf(line, sizeof line, "level %d\n", level);
    if (n > 0 && write(1, line, (size_t)n) < 0) _exit(3);
}

/* Allocates and touches mib mebibytes, kept to the end; false when refused. */
static bool grow(long mib) {
    for (long i = 0; i < mib; i++) {
        char *p = malloc(1 << 20);
        if (p == NULL) {
            printf("malloc failed at %ld MiB\n", i);
            return false;
        }
        memset(p, (int)(i & 0x7f) | 1, 1 << 20);
    }
    return true;
}

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 16;
    int (*on)(void (*)(int, void *), void *) =
        (int (*)(void (*)(int, void *), void *))dlsym(RTLD_DEFAULT, "membudget_on_pressure");
    if (on == NULL || on(on_pressure, NULL) != 0) {
        printf("no membudget_on_pressure\n");
        return 2;
    }
    if (!grow(mib)) return 2;
    int (*dump)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "membudget_dump");
    printf("ready %ld\n", (long)getpid());
    fflush(stdout);
    char line[4096];
    while (fgets(line, sizeof line, stdin) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "dump ", 5) == 0 && dump != NULL) {
            printf("dumped %d\n", dump(line + 5));
            fflush(stdout);
        } else if (strncmp(line, "grow ", 5) == 0) {
            if (!grow(atol(line + 5))) return 2;
            printf("grown %ld\n", atol(line + 5));
            fflush(stdout);
        }
    }
    return 0;
}
