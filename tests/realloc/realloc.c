/* Large blocks grown by realloc (issue 19's realloc_grow), run preloaded
 * under the release and the debug library:
 *   warm     a block that cannot grow in place while a freed span is cached
 *            moves into that span's resident pages: growing it from 1 MiB to
 *            8 MiB, writing every new byte, faults in few pages (a remapped
 *            span's grown tail would fault in every one of its 1,792);
 *   content  blocks grown and shrunk by realloc, by exact lengths and by
 *            half again, interleaved with frees: every byte written survives
 *            every move, and malloc_trim makes the debug build check its
 *            counter against everything it committed.
 * Faults are counted with getrusage; nothing here is timed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "realloc: FAIL %s:%d: ", __func__, __LINE__);                          \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static long minflt(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static unsigned char byte_at(size_t pos, unsigned id) {
    return (unsigned char)((pos / 4096) * 131u + (pos % 4096) / 512 + id * 7u + 1u);
}

static void write_range(unsigned char *p, size_t from, size_t to, unsigned id) {
    for (size_t i = from, end; i < to; i = end) { /* a piece per 512 bytes of the pattern */
        end = (i / 512 + 1) * 512;
        if (end > to) end = to;
        memset(p + i, byte_at(i, id), end - i);
    }
}

/* Index of the first byte in [0, len) that is not the pattern's, or len. */
static size_t first_wrong(const unsigned char *p, size_t len, unsigned id) {
    for (size_t i = 0; i < len; i++)
        if (p[i] != byte_at(i, id)) return i;
    return len;
}

static void case_warm(void) {
    size_t len = 1 * MIB;
    unsigned char *a = malloc(len);
    unsigned char *b = malloc(16 * MIB);
    CHECK(a != NULL && b != NULL, "malloc of 1 MiB and 16 MiB failed");
    if (a == NULL || b == NULL) return;
    write_range(a, 0, len, 1);
    /* Nothing may move to end where b starts (it would then grow in place
     * into b's pages, warm either way): a page of our own right below b. */
    void *guard = mmap(b - 4096, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                       -1, 0);
    memset(b, 0x5a, 16 * MIB); /* resident */
    __asm__ volatile("" : : "r"(b) : "memory"); /* a store before free is not dead here */
    free(b);                                    /* kept in the large-span cache */
    long before = minflt();
    while (len < 8 * MIB) {
        size_t next = len + 256 * KIB;
        unsigned char *q = realloc(a, next);
        CHECK(q != NULL, "realloc to %zu bytes failed", next);
        if (q == NULL) break;
        a = q;
        write_range(a, len, next, 1);
        len = next;
    }
    long faults = minflt() - before;
    size_t pages = (8 * MIB - 1 * MIB) / 4096;
    printf("warm: grown to %zu bytes with %ld minor faults (%zu pages written)\n", len, faults, pages);
    CHECK(faults < (long)(pages / 4), "%ld minor faults growing into a cached span's pages (%zu written)",
          faults, pages);
    size_t wrong = first_wrong(a, len, 1);
    CHECK(wrong == len, "byte %zu of the grown block lost", wrong);
    free(a);
    if (guard != MAP_FAILED) munmap(guard, 4096);
}

#define BLOCKS 6

static void case_content(void) {
    unsigned char *p[BLOCKS] = {0};
    size_t len[BLOCKS] = {0};
    uint64_t rng = 2024;
    for (unsigned step = 0; step < 600 && failures == 0; step++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        unsigned i = (unsigned)(rng >> 33) % BLOCKS;
        size_t next;
        if ((rng >> 20) % 16 == 0) {
            next = 0; /* free it */
        } else if (len[i] < 6 * MIB) {
            size_t add = 1 + (size_t)((rng >> 40) % (96 * KIB));
            next = (i & 1) ? len[i] + add : len[i] + len[i] / 2 + add; /* exact, or half again */
        } else {
            next = len[i] / 3 + 1; /* shrink */
        }
        if (next == 0) {
            free(p[i]);
            p[i] = NULL;
            len[i] = 0;
            continue;
        }
        unsigned char *q = realloc(p[i], next);
        CHECK(q != NULL, "realloc to %zu bytes failed", next);
        if (q == NULL) return;
        size_t kept = len[i] < next ? len[i] : next;
        size_t wrong = first_wrong(q, kept, i);
        CHECK(wrong == kept, "block %u: byte %zu of %zu lost resizing to %zu", i, wrong, kept, next);
        if (next > kept) write_range(q, kept, next, i);
        CHECK(malloc_usable_size(q) >= next, "usable size %zu below %zu", malloc_usable_size(q), next);
        p[i] = q;
        len[i] = next;
        if (step % 100 == 99) malloc_trim(0);
    }
    for (unsigned i = 0; i < BLOCKS; i++) free(p[i]);
    malloc_trim(0);
    printf("content: 600 resizes checked\n");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: realloc warm|content\n");
        return 2;
    }
    /* Pages, not huge pages: a fault per 4 KiB written into fresh memory. */
    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    if (strcmp(argv[1], "warm") == 0)
        case_warm();
    else if (strcmp(argv[1], "content") == 0)
        case_content();
    else {
        fprintf(stderr, "realloc: unknown case '%s' (accepted: warm, content)\n", argv[1]);
        return 2;
    }
    return failures == 0 ? 0 : 1;
}
