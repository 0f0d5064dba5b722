/* Thread exit: blocks outlive the thread that allocated them and are freed by
 * others later; thousands of short threads come and go, some allocating from a
 * thread-specific-data destructor after the allocator's own one may have run.
 * Memory must stay bounded: the budget counter when the API is there, the
 * resident set always. */
#include "harness.h"
#include "mbtest.h"
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

static size_t pick_size(tu_rng *rng) {
    uint64_t r = tu_below(rng, 1000);
    if (r < 900) return tu_between(rng, 1, 256);
    if (r < 980) return tu_between(rng, 257, 4096);
    if (r < 999) return tu_between(rng, 4097, 64 * TU_KIB);
    return tu_between(rng, 256 * TU_KIB, TU_MIB);
}

struct block {
    unsigned char *ptr;
    size_t size;
};

static void fill_block(struct block *b) { tu_fill(b->ptr, b->size, tu_seed(b->ptr, b->size)); }

static void check_and_free(struct block *b, const char *where) {
    if (!b->ptr) return;
    size_t bad = tu_check(b->ptr, b->size, tu_seed(b->ptr, b->size));
    if (bad != SIZE_MAX) tu_record_error(where, b->ptr, b->size, bad);
    T_FREE(b->ptr);
    b->ptr = NULL;
}

/* Memory in use by the allocator as the budget sees it, or 0 without the API. */
static size_t counter_bytes(void) {
    if (!MBTEST_HAVE_API) return 0;
    struct membudget_stats st;
    memset(&st, 0, sizeof st);
    membudget_stats(&st, sizeof st);
    return (size_t)st.counter_bytes;
}

/* ---- blocks that outlive their thread ------------------------------------ */

enum { PRODUCERS = 8, CONSUMERS = 4, PER_PRODUCER = 10000 };
static struct block produced[PRODUCERS][PER_PRODUCER];

struct producer_arg {
    int id;
    unsigned round;
};

/* Allocates its share, frees a third of it itself, and exits holding the rest. */
static void *producer_main(void *argp) {
    struct producer_arg *arg = argp;
    tu_rng rng = {((uint64_t)arg->round << 16) | (uint64_t)arg->id};
    struct block *mine = produced[arg->id];
    for (int k = 0; k < PER_PRODUCER; k++) {
        mine[k].size = pick_size(&rng);
        mine[k].ptr = T_MALLOC(mine[k].size);
        if (!mine[k].ptr) {
            tu_record_error("malloc returned NULL", NULL, mine[k].size, 0);
            continue;
        }
        fill_block(&mine[k]);
    }
    for (int k = 0; k < PER_PRODUCER; k++)
        if (tu_below(&rng, 3) == 0) check_and_free(&mine[k], "pattern broken before exit");
    return NULL;
}

/* Frees every CONSUMERS-th block of every (dead) producer. */
static void *consumer_main(void *argp) {
    int id = *(int *)argp;
    for (int t = 0; t < PRODUCERS; t++)
        for (int k = id; k < PER_PRODUCER; k += CONSUMERS)
            check_and_free(&produced[t][k], "pattern broken after its thread exited");
    return NULL;
}

static void test_blocks_outlive_their_thread(void) {
    size_t rounds = tu_scaled(16, 4);
    size_t counter_ref = 0, rss_ref = 0, counter_max = 0, rss_max = 0;
    atomic_store(&tu_errors, 0);
    for (size_t round = 0; round < rounds; round++) {
        pthread_t tids[PRODUCERS];
        struct producer_arg args[PRODUCERS];
        for (int t = 0; t < PRODUCERS; t++) {
            args[t].id = t;
            args[t].round = (unsigned)round;
            if (pthread_create(&tids[t], NULL, producer_main, &args[t]) != 0) {
                expect_true(0, "pthread_create of producer %d failed", t);
                return;
            }
        }
        for (int t = 0; t < PRODUCERS; t++) pthread_join(tids[t], NULL);
        /* Every producer has exited: its heap is abandoned with live blocks. */
        pthread_t ctids[CONSUMERS];
        int ids[CONSUMERS];
        for (int c = 1; c < CONSUMERS; c++) {
            ids[c] = c;
            if (pthread_create(&ctids[c], NULL, consumer_main, &ids[c]) != 0) {
                expect_true(0, "pthread_create of consumer %d failed", c);
                return;
            }
        }
        ids[0] = 0;
        consumer_main(&ids[0]); /* the main thread is consumer 0 */
        for (int c = 1; c < CONSUMERS; c++) pthread_join(ctids[c], NULL);

        size_t counter = counter_bytes(), rss = tu_rss_bytes();
        if (round == 1) {
            counter_ref = counter;
            rss_ref = rss;
        }
        if (round >= 1) {
            if (counter > counter_max) counter_max = counter;
            if (rss > rss_max) rss_max = rss;
        }
    }
    expect_true(atomic_load(&tu_errors) == 0,
                "no content or allocation errors; %lu errors, first: %s",
                atomic_load(&tu_errors), tu_first_error);
    /* Each round holds ~8 * 10^4 blocks (tens of MiB); if abandoned memory were
     * never reused, every round would add that much again. */
    size_t slack = 48 * TU_MIB;
    if (MBTEST_HAVE_API)
        expect_zu_le_f(counter_max, counter_ref + slack + counter_ref / 4,
                       "budget counter after %zu rounds vs after round 2 (MiB: %zu vs %zu)", rounds,
                       counter_max >> 20, counter_ref >> 20);
    expect_zu_le_f(rss_max, rss_ref + slack + rss_ref / 4,
                   "RSS after %zu rounds vs after round 2 (MiB: %zu vs %zu)", rounds, rss_max >> 20,
                   rss_ref >> 20);
}

/* ---- short threads ------------------------------------------------------- */

enum { WAVE = 8, HANDOFF = 4 };
static pthread_key_t test_key;
static struct block handoff[WAVE][HANDOFF];

/* Runs at thread exit, after or before the allocator's own destructor (keys
 * run in creation order, and the allocator's key is older): frees the block
 * stored under the key, then allocates and frees once more. */
static void key_destructor(void *value) {
    struct block *b = value;
    check_and_free(b, "pattern broken in a destructor");
    T_FREE(b);
    unsigned char *late = T_MALLOC(200);
    if (!late) {
        tu_record_error("malloc in a key destructor returned NULL", NULL, 200, 0);
        return;
    }
    memset(late, 0x3e, 200);
    T_FREE(late);
}

static void *short_thread_main(void *argp) {
    int slot = (int)(intptr_t)argp;
    tu_rng rng = {(uint64_t)slot * 7919 + 1};
    struct block local[32];
    for (int i = 0; i < 32; i++) {
        local[i].size = pick_size(&rng);
        local[i].ptr = T_MALLOC(local[i].size);
        if (!local[i].ptr) {
            tu_record_error("malloc returned NULL", NULL, local[i].size, 0);
            continue;
        }
        fill_block(&local[i]);
    }
    /* Free the blocks the previous thread of this slot left behind. */
    for (int i = 0; i < HANDOFF; i++)
        check_and_free(&handoff[slot][i], "pattern broken in handoff");
    for (int i = 0; i < 32; i++) {
        if (i < HANDOFF)
            handoff[slot][i] = local[i];
        else
            check_and_free(&local[i], "pattern broken");
    }
    /* A block freed by the key destructor at exit. */
    struct block *b = T_MALLOC(sizeof *b);
    if (b) {
        b->size = 100;
        b->ptr = T_MALLOC(b->size);
        if (b->ptr) fill_block(b);
        pthread_setspecific(test_key, b);
    }
    return NULL;
}

static size_t threads_live(void) {
    struct membudget_stats st;
    memset(&st, 0, sizeof st);
    membudget_stats(&st, sizeof st);
    return (size_t)st.threads_live;
}

static void test_thread_churn(void) {
    size_t total = tu_scaled(4000, 400);
    size_t counter_ref = 0, rss_ref = 0;
    atomic_store(&tu_errors, 0);
    /* The allocator's own key is created at its first use, before this one. */
    T_FREE(T_MALLOC(1));
    expect_int_eq(pthread_key_create(&test_key, key_destructor), 0, "pthread_key_create");
    memset(handoff, 0, sizeof handoff);
    size_t made = 0;
    while (made < total) {
        pthread_t tids[WAVE];
        int started = 0;
        for (int s = 0; s < WAVE; s++) {
            if (pthread_create(&tids[s], NULL, short_thread_main, (void *)(intptr_t)s) != 0) break;
            started++;
        }
        expect_int_eq(started, WAVE, "all threads of a wave started");
        for (int s = 0; s < started; s++) pthread_join(tids[s], NULL);
        if (started < WAVE) break;
        made += WAVE;
        if (made == 200) {
            counter_ref = counter_bytes();
            rss_ref = tu_rss_bytes();
        }
    }
    for (int s = 0; s < WAVE; s++)
        for (int i = 0; i < HANDOFF; i++)
            check_and_free(&handoff[s][i], "pattern broken in handoff");
    size_t counter = counter_bytes(), rss = tu_rss_bytes();
    pthread_key_delete(test_key);
    expect_true(atomic_load(&tu_errors) == 0,
                "no content or allocation errors; %lu errors, first: %s",
                atomic_load(&tu_errors), tu_first_error);
    if (MBTEST_HAVE_API) {
        expect_zu_le_f(counter, counter_ref + 16 * TU_MIB,
                       "budget counter after %zu threads vs after 200 (MiB: %zu vs %zu)", made,
                       counter >> 20, counter_ref >> 20);
        /* Every joined thread's heap was given back, including one a destructor
         * may have re-created; only the main thread's is left. */
        expect_zu_le_f(threads_live(), 1, "thread heaps still owned after %zu threads exited",
                       made);
    }
    expect_zu_le_f(rss, rss_ref + 32 * TU_MIB,
                   "RSS after %zu threads vs after 200 (MiB: %zu vs %zu)", made, rss >> 20,
                   rss_ref >> 20);
}

int main(void) {
    RUN(test_blocks_outlive_their_thread);
    RUN(test_thread_churn);
    return harness_finish();
}
