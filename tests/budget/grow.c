/* A program that grows until it is stopped: `grow THREADS BLOCK_BYTES [mmap]`.
 * Every thread allocates blocks of BLOCK_BYTES and writes them whole, so the OS
 * sees what the budget counts.  With "mmap", one anonymous mapping of
 * BLOCK_BYTES is made and touched instead; with "sbrk", BLOCK_BYTES of brk memory
 * (which the counter never sees) is touched and the program sleeps 3 s, idle, so
 * only the monitor's baseline can notice it; "slept" goes to stderr after the
 * sleep, before the next allocation (1 MiB: the jemalloc backend's inline
 * monitor ticks every 256 KiB a thread allocates).  Prints "NULL" and exits 3 when an
 * allocation fails (MEMBUDGET_ACTION=fail); never returns otherwise. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t block_bytes = 256 << 10;

static void *grow(void *arg) {
    (void)arg;
    for (;;) {
        char *p = malloc(block_bytes);
        if (p == NULL) {
            printf("NULL errno=%d\n", errno);
            fflush(stdout);
            exit(3);
        }
        memset(p, 1, block_bytes);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (argc > 2) block_bytes = strtoul(argv[2], NULL, 0);
    if (argc > 3 && strcmp(argv[3], "mmap") == 0) {
        char *p = mmap(NULL, block_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            printf("MAP_FAILED errno=%d\n", errno);
            return 3;
        }
        memset(p, 1, block_bytes);
        printf("mapped\n");
        return 0;
    }
    if (argc > 3 && strcmp(argv[3], "sbrk") == 0) {
        char *p = sbrk((intptr_t)block_bytes);
        if (p == (void *)-1) return 4;
        memset(p, 1, block_bytes);
        sleep(3);
        static const char msg[] = "slept\n";
        if (write(2, msg, sizeof msg - 1) < 0) return 5; /* write(2): no allocation */
        char *q = malloc((size_t)1 << 20);
        if (q != NULL) memset(q, 1, (size_t)1 << 20);
        printf("idle survived\n");
        return 0;
    }
    pthread_t tids[64];
    if (threads < 1 || threads > 64) threads = 1;
    for (int i = 0; i < threads; i++) pthread_create(&tids[i], NULL, grow, NULL);
    for (int i = 0; i < threads; i++) pthread_join(tids[i], NULL);
    return 0;
}
