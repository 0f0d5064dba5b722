/* MEMBUDGET_ACTION=fail in C: allocate 1 MiB blocks until malloc returns NULL
 * with ENOMEM, free half of them, then allocate again: the process lives on. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BLOCKS 4096

int main(void) {
    static char *blocks[MAX_BLOCKS];
    size_t n = 0;
    int err = 0;
    for (; n < MAX_BLOCKS; n++) {
        errno = 0;
        blocks[n] = malloc(1 << 20);
        if (blocks[n] == NULL) {
            err = errno;
            break;
        }
        memset(blocks[n], 7, 1 << 20);
    }
    if (n == MAX_BLOCKS) {
        printf("never refused\n");
        return 1;
    }
    /* The error path itself may allocate: the emergency reserve lets it. */
    char *message = malloc(4096);
    snprintf(message, 4096, "refused after %zu MiB errno=%s", n, err == ENOMEM ? "ENOMEM" : "other");
    printf("%s\n", message);
    free(message);
    for (size_t i = 0; i < n / 2; i++) free(blocks[i]);
    size_t again = 0;
    for (; again < n / 4; again++) {
        char *p = malloc(1 << 20);
        if (p == NULL) break;
        memset(p, 9, 1 << 20);
        blocks[again] = p;
    }
    printf("recovered %s\n", again == n / 4 ? "yes" : "no");
    return again == n / 4 ? 0 : 2;
}
