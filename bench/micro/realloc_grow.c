/* Realloc growth: many buffers grown by realloc from a few bytes to several MiB, the
 * way string builders and vectors grow.  Half the buffers reallocate to the exact new
 * length on every append (naive builders), half grow their capacity by 1.5x (vectors).
 * Appends go to a random live buffer, so neighbours keep getting in each other's way. */
#include "common.h"

#define BUFFERS 16           /* growing at the same time */
#define ROUNDS 40            /* each round grows BUFFERS buffers to their final size */
#define MIN_FINAL (256u << 10)
#define MAX_FINAL (6u << 20)
#define MAX_APPEND 8192
#define PIECE 4096           /* the content pattern changes every PIECE bytes */

typedef struct {
    unsigned char *data;
    size_t len, cap, final;
    unsigned id;
    int exact;               /* naive builder: realloc to the exact length */
} buffer_t;

static unsigned char pattern(size_t pos, unsigned id) {
    return (unsigned char)((pos / PIECE) * 131u + id * 7u + 1u);
}

/* Writes the pattern over [from, to) a piece at a time. */
static void fill(buffer_t *b, size_t from, size_t to) {
    while (from < to) {
        size_t end = (from / PIECE + 1) * PIECE;
        if (end > to) end = to;
        memset(b->data + from, pattern(from, b->id), end - from);
        from = end;
    }
}

static void buffer_append(buffer_t *b, size_t n) {
    size_t need = b->len + n;
    if (need > b->cap) {
        size_t cap = b->exact ? need : b->cap + b->cap / 2;
        if (cap < need) cap = need;
        unsigned char *p = realloc(b->data, cap);
        if (!p) die("realloc returned NULL", cap);
        b->data = p;
        b->cap = cap;
    }
    fill(b, b->len, need);
    b->len = need;
}

/* Samples one byte per piece: catches content lost or misplaced by a realloc. */
static uint64_t buffer_verify(const buffer_t *b, rng_t *rng) {
    uint64_t sum = 0;
    for (size_t base = 0; base < b->len; base += PIECE) {
        size_t span = b->len - base < PIECE ? b->len - base : PIECE;
        size_t pos = base + (size_t)(rng_next(rng) % span);
        if (b->data[pos] != pattern(pos, b->id)) die("buffer content lost in realloc", pos);
        sum += b->data[pos];
    }
    return sum;
}

static void buffer_start(buffer_t *b, rng_t *rng, unsigned id) {
    b->id = id;
    b->exact = (int)(id & 1);
    b->len = 0;
    b->cap = 16;
    b->final = rng_range(rng, MIN_FINAL, MAX_FINAL);
    b->data = xmalloc(b->cap);
}

int main(void) {
    rng_t rng = {2024};
    buffer_t buf[BUFFERS];
    unsigned next_id = 0, done = 0;
    uint64_t sum = 0, bytes = 0, appends = 0;
    for (int i = 0; i < BUFFERS; i++) buffer_start(&buf[i], &rng, next_id++);

    /* A finished buffer is verified, freed and replaced until every round is done. */
    while (done < (unsigned)(ROUNDS * BUFFERS)) {
        buffer_t *b = &buf[rng_next(&rng) % BUFFERS];
        if (b->data == NULL) continue;
        size_t n = rng_range(&rng, 1, MAX_APPEND);
        if (b->len + n > b->final) n = b->final - b->len;
        buffer_append(b, n);
        appends++;
        if (b->len < b->final) continue;
        sum += buffer_verify(b, &rng);
        bytes += b->len;
        free(b->data);
        b->data = NULL;
        done++;
        if (next_id < (unsigned)(ROUNDS * BUFFERS)) buffer_start(b, &rng, next_id++);
    }
    printf("realloc_grow buffers=%u appends=%" PRIu64 " bytes=%" PRIu64 " checksum=%016" PRIx64 "\n",
           done, appends, bytes, sum);
    return 0;
}
