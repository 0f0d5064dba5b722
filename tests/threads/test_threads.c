/* Many threads, most frees cross-thread: blocks travel between threads through
 * mutex-protected inboxes, each carries a pattern derived from its address and
 * size that the receiver checks before freeing it, and some blocks are
 * realloc'ed by every thread they pass through.  A second test passes whole
 * batches of one size around a ring, so pages fill up and are emptied by other
 * threads over and over.  By default >= 10^7 malloc and free calls in the first
 * test alone; MBTEST_SCALE scales both down for sanitizer builds. */
#include "harness.h"
#include "mbtest.h"
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

enum {
    NTHREADS = 8,
    INBOX_CAP = 2048, /* messages a thread can have waiting */
    LOCAL_SLOTS = 256,
    DRAIN_BATCH = 64,
};

struct msg {
    unsigned char *ptr;
    size_t size;
    unsigned hops; /* realloc ping-pong: forwarded this many more times */
};

/* A bounded ring per thread; senders block (while draining their own inbox)
 * when it is full, so every block sent really is freed by another thread. */
struct inbox {
    pthread_mutex_t lock;
    unsigned head, count;
    struct msg ring[INBOX_CAP];
} __attribute__((aligned(64)));

struct worker {
    int id;
    size_t allocs; /* blocks this thread allocates */
    uint64_t mallocs, frees, reallocs, remote_frees, local_frees;
    tu_rng rng;
} __attribute__((aligned(64)));

static struct inbox inboxes[NTHREADS];
static struct worker workers[NTHREADS];
static atomic_int producers_done;
/* Mostly small; some pages' worth; a few up to 1 MiB. */
static size_t pick_size(tu_rng *rng) {
    uint64_t r = tu_below(rng, 10000);
    if (r < 9000) return tu_between(rng, 1, 256);
    if (r < 9900) return tu_between(rng, 257, 4096);
    if (r < 9990) return tu_between(rng, 4097, 64 * TU_KIB);
    return tu_between(rng, 64 * TU_KIB, TU_MIB);
}

static int send_to(int to, struct msg m) {
    struct inbox *in = &inboxes[to];
    pthread_mutex_lock(&in->lock);
    int ok = in->count < INBOX_CAP;
    if (ok) {
        in->ring[(in->head + in->count) % INBOX_CAP] = m;
        in->count++;
    }
    pthread_mutex_unlock(&in->lock);
    return ok;
}

static unsigned take_batch(int id, struct msg *out) {
    struct inbox *in = &inboxes[id];
    pthread_mutex_lock(&in->lock);
    unsigned n = in->count < DRAIN_BATCH ? in->count : DRAIN_BATCH;
    for (unsigned i = 0; i < n; i++) out[i] = in->ring[(in->head + i) % INBOX_CAP];
    in->head = (in->head + n) % INBOX_CAP;
    in->count -= n;
    pthread_mutex_unlock(&in->lock);
    return n;
}

static void check_block(const struct msg *m, const char *where) {
    size_t bad = tu_check(m->ptr, m->size, tu_seed(m->ptr, m->size));
    if (bad != SIZE_MAX) tu_record_error(where, m->ptr, m->size, bad);
    size_t usable = T_USABLE_SIZE(m->ptr);
    if (usable < m->size)
        tu_record_error("malloc_usable_size below the request", m->ptr, m->size, usable);
}

static void deliver(struct worker *w, struct msg m);

/* Frees a received block, or reallocs it and passes it on.  Forwarding happens
 * only while this thread still produces, so once every producer is done no new
 * message appears and the final drains see everything. */
static void handle(struct worker *w, struct msg m, int producing) {
    check_block(&m, "pattern broken on arrival");
    if (m.hops > 0) {
        size_t new_size = pick_size(&w->rng);
        uint64_t old_seed = tu_seed(m.ptr, m.size);
        unsigned char *q = T_REALLOC(m.ptr, new_size);
        w->reallocs++;
        if (!q) {
            tu_record_error("realloc returned NULL", m.ptr, new_size, 0);
            T_FREE(m.ptr);
            w->frees++;
            return;
        }
        size_t keep = m.size < new_size ? m.size : new_size;
        size_t bad = tu_check(q, keep, old_seed);
        if (bad != SIZE_MAX) tu_record_error("realloc lost the content", q, keep, bad);
        m.ptr = q;
        m.size = new_size;
        m.hops--;
        tu_fill(q, new_size, tu_seed(q, new_size));
        if (producing) {
            deliver(w, m);
            return;
        }
        check_block(&m, "pattern broken after realloc");
    }
    T_FREE(m.ptr);
    w->frees++;
    w->remote_frees++;
}

static void drain(struct worker *w, int producing) {
    struct msg batch[DRAIN_BATCH];
    unsigned n;
    while ((n = take_batch(w->id, batch)) > 0)
        for (unsigned i = 0; i < n; i++) handle(w, batch[i], producing);
}

/* Sends to a random other thread, draining our own inbox while the target's is
 * full, so two threads sending to each other cannot wait forever. */
static void deliver(struct worker *w, struct msg m) {
    int to = (w->id + 1 + (int)tu_below(&w->rng, NTHREADS - 1)) % NTHREADS;
    while (!send_to(to, m)) {
        struct msg batch[DRAIN_BATCH];
        unsigned n = take_batch(w->id, batch);
        /* Not forwarding from here keeps the stack flat. */
        for (unsigned i = 0; i < n; i++) handle(w, batch[i], 0);
        if (n == 0) sched_yield();
    }
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    struct msg local[LOCAL_SLOTS];
    memset(local, 0, sizeof local);
    for (size_t n = 0; n < w->allocs; n++) {
        size_t size = pick_size(&w->rng);
        uint64_t how = tu_below(&w->rng, 64);
        unsigned char *p;
        if (how == 0) {
            p = T_CALLOC(1, size);
            if (p) {
                size_t bad = tu_check_zero(p, size);
                if (bad != SIZE_MAX) tu_record_error("calloc block not zeroed", p, size, bad);
            }
        } else if (how == 1) {
            void *out = NULL;
            size_t alignment = (size_t)32 << tu_below(&w->rng, 8);
            p = T_POSIX_MEMALIGN(&out, alignment, size) == 0 ? out : NULL;
            if (p && ((uintptr_t)p & (alignment - 1)))
                tu_record_error("posix_memalign misaligned", p, size, alignment);
        } else {
            p = T_MALLOC(size);
        }
        if (!p) {
            tu_record_error("allocation returned NULL", NULL, size, 0);
            continue;
        }
        w->mallocs++;
        tu_fill(p, size, tu_seed(p, size));
        struct msg m = {p, size, 0};
        uint64_t route = tu_below(&w->rng, 16);
        if (route < 12) {
            /* Cross-thread: 3 in 4 blocks; one in 8 of those ping-pongs. */
            if (tu_below(&w->rng, 8) == 0) m.hops = 1 + (unsigned)tu_below(&w->rng, 4);
            deliver(w, m);
        } else {
            /* Local: replace a slot, freeing what it held. */
            struct msg *slot = &local[tu_below(&w->rng, LOCAL_SLOTS)];
            if (slot->ptr) {
                check_block(slot, "pattern broken in a local block");
                T_FREE(slot->ptr);
                w->frees++;
                w->local_frees++;
            }
            *slot = m;
        }
        if ((n & 7) == 0) drain(w, 1);
    }
    atomic_fetch_add(&producers_done, 1);
    while (atomic_load(&producers_done) < NTHREADS) {
        drain(w, 0);
        sched_yield();
    }
    drain(w, 0);
    for (int i = 0; i < LOCAL_SLOTS; i++) {
        if (!local[i].ptr) continue;
        check_block(&local[i], "pattern broken in a local block");
        T_FREE(local[i].ptr);
        w->frees++;
        w->local_frees++;
    }
    return NULL;
}

static void test_cross_thread_churn(void) {
    /* 5.2 * 10^6 blocks at scale 1; each is malloc'ed (or realloc'ed) and freed:
     * over 10^7 calls. */
    size_t total_allocs = tu_scaled(5200000, 20000);
    atomic_store(&producers_done, 0);
    atomic_store(&tu_errors, 0);
    for (int i = 0; i < NTHREADS; i++) {
        pthread_mutex_init(&inboxes[i].lock, NULL);
        inboxes[i].head = inboxes[i].count = 0;
        memset(&workers[i], 0, sizeof workers[i]);
        workers[i].id = i;
        workers[i].allocs = total_allocs / NTHREADS;
        workers[i].rng.state = 0x1000 + (uint64_t)i;
    }
    pthread_t tids[NTHREADS];
    int started = 0;
    for (int i = 0; i < NTHREADS; i++) {
        int rc = pthread_create(&tids[i], NULL, worker_main, &workers[i]);
        expect_int_eq_f(rc, 0, "pthread_create of worker %d", i);
        if (rc != 0) break;
        started++;
    }
    if (started < NTHREADS) {
        /* Unblock the started ones: they wait for all producers. */
        atomic_fetch_add(&producers_done, NTHREADS - started);
    }
    for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);

    uint64_t mallocs = 0, frees = 0, reallocs = 0, remote = 0, local = 0;
    for (int i = 0; i < NTHREADS; i++) {
        mallocs += workers[i].mallocs;
        frees += workers[i].frees;
        reallocs += workers[i].reallocs;
        remote += workers[i].remote_frees;
        local += workers[i].local_frees;
        pthread_mutex_destroy(&inboxes[i].lock);
    }
    fprintf(stderr,
            "test_threads: %d threads, %llu malloc, %llu realloc, %llu free (%llu by another "
            "thread, %llu by the owner)\n",
            NTHREADS, (unsigned long long)mallocs, (unsigned long long)reallocs,
            (unsigned long long)frees, (unsigned long long)remote, (unsigned long long)local);
    expect_true(atomic_load(&tu_errors) == 0,
                "no content or allocation errors; %lu errors, first: %s",
                atomic_load(&tu_errors), tu_first_error);
    expect_zu_eq_f(frees, mallocs, "every allocated block was freed exactly once");
    expect_zu_le_f(total_allocs / NTHREADS * NTHREADS * 2, mallocs + frees + reallocs,
                   "the planned number of operations ran");
    expect_true(remote > frees / 2, "most frees are cross-thread: %llu of %llu",
                (unsigned long long)remote, (unsigned long long)frees);
}

/* ---- batches around a ring ---------------------------------------------------
 * Thread i allocates a batch of blocks of one size (enough to fill several
 * pages), hands it to thread i+1 and frees the batch thread i-1 handed it.  Every
 * page is filled by its owner and emptied by a neighbour: the path of a remote
 * free into a full page, and of the owner taking such a page back, runs
 * thousands of times. */
enum { RING_THREADS = 8, BATCH = 1024, BOX_DEPTH = 4 };

struct batch {
    atomic_size_t size; /* 0 while the batch is free for its owner to fill */
    unsigned char *blocks[BATCH];
};

struct box {
    pthread_mutex_t lock;
    unsigned head, count;
    struct batch *slots[BOX_DEPTH];
} __attribute__((aligned(64)));

static struct box boxes[RING_THREADS];
static struct batch batches[RING_THREADS][BOX_DEPTH + 2];
static atomic_int ring_done;
static atomic_ulong ring_ops;
static size_t ring_rounds;

static int box_put(int to, struct batch *b) {
    struct box *x = &boxes[to];
    pthread_mutex_lock(&x->lock);
    int ok = x->count < BOX_DEPTH;
    if (ok) {
        x->slots[(x->head + x->count) % BOX_DEPTH] = b;
        x->count++;
    }
    pthread_mutex_unlock(&x->lock);
    return ok;
}

static struct batch *box_take(int id) {
    struct box *x = &boxes[id];
    struct batch *b = NULL;
    pthread_mutex_lock(&x->lock);
    if (x->count) {
        b = x->slots[x->head];
        x->head = (x->head + 1) % BOX_DEPTH;
        x->count--;
    }
    pthread_mutex_unlock(&x->lock);
    return b;
}

/* Checks and frees a received batch; returns it empty (its owner reuses it). */
static void free_batch(struct batch *b) {
    for (int k = 0; k < BATCH; k++) {
        unsigned char *p = b->blocks[k];
        if (!p) continue;
        size_t size = atomic_load_explicit(&b->size, memory_order_relaxed);
        size_t bad = tu_check(p, size, tu_seed(p, size));
        if (bad != SIZE_MAX) tu_record_error("pattern broken in a batch", p, size, bad);
        T_FREE(p);
        b->blocks[k] = NULL;
    }
    atomic_fetch_add_explicit(&ring_ops, BATCH, memory_order_relaxed);
    atomic_store_explicit(&b->size, 0, memory_order_release);
}

static void *ring_main(void *arg) {
    int id = (int)(intptr_t)arg, next = (id + 1) % RING_THREADS;
    static const size_t sizes[] = {16, 48, 112, 640, 3000};
    for (size_t r = 0; r < ring_rounds; r++) {
        /* A batch of ours that the neighbour has finished with. */
        struct batch *b = NULL;
        while (!b) {
            for (int i = 0; i < BOX_DEPTH + 2 && !b; i++) {
                struct batch *c = &batches[id][i];
                if (atomic_load_explicit(&c->size, memory_order_acquire) == 0) b = c;
            }
            struct batch *in = box_take(id);
            if (in)
                free_batch(in);
            else if (!b)
                sched_yield();
        }
        size_t size = sizes[(r + (size_t)id) % (sizeof sizes / sizeof sizes[0])];
        for (int k = 0; k < BATCH; k++) {
            unsigned char *p = T_MALLOC(size);
            if (p)
                tu_fill(p, size, tu_seed(p, size));
            else
                tu_record_error("malloc returned NULL in a batch", NULL, size, 0);
            b->blocks[k] = p;
        }
        atomic_fetch_add_explicit(&ring_ops, BATCH, memory_order_relaxed);
        atomic_store_explicit(&b->size, size, memory_order_relaxed);
        while (!box_put(next, b)) {
            struct batch *in = box_take(id);
            if (in)
                free_batch(in);
            else
                sched_yield();
        }
        struct batch *in = box_take(id);
        if (in) free_batch(in);
    }
    atomic_fetch_add(&ring_done, 1);
    for (;;) {
        struct batch *in = box_take(id);
        if (in) {
            free_batch(in);
            continue;
        }
        if (atomic_load(&ring_done) == RING_THREADS) {
            /* Nobody sends any more; whatever was sent to us is in the box. */
            while ((in = box_take(id)) != NULL) free_batch(in);
            break;
        }
        sched_yield();
    }
    return NULL;
}

static void test_batches_around_a_ring(void) {
    ring_rounds = tu_scaled(300, 20);
    atomic_store(&ring_done, 0);
    atomic_store(&ring_ops, 0);
    atomic_store(&tu_errors, 0);
    for (int i = 0; i < RING_THREADS; i++) {
        pthread_mutex_init(&boxes[i].lock, NULL);
        boxes[i].head = boxes[i].count = 0;
        for (int k = 0; k < BOX_DEPTH + 2; k++) atomic_store(&batches[i][k].size, 0);
    }
    pthread_t tids[RING_THREADS];
    int started = 0;
    for (int i = 0; i < RING_THREADS; i++) {
        if (pthread_create(&tids[i], NULL, ring_main, (void *)(intptr_t)i) != 0) break;
        started++;
    }
    expect_int_eq(started, RING_THREADS, "all ring threads started");
    if (started < RING_THREADS) atomic_fetch_add(&ring_done, RING_THREADS - started);
    for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);
    for (int i = 0; i < RING_THREADS; i++) pthread_mutex_destroy(&boxes[i].lock);
    fprintf(stderr, "test_threads: ring of %d threads, %zu batches of %d each, %lu calls\n",
            RING_THREADS, ring_rounds, BATCH, atomic_load(&ring_ops));
    expect_true(atomic_load(&tu_errors) == 0,
                "no content or allocation errors; %lu errors, first: %s",
                atomic_load(&tu_errors), tu_first_error);
    expect_zu_eq_f(atomic_load(&ring_ops), (size_t)started * ring_rounds * BATCH * 2,
                   "every batch was allocated and freed");
}

int main(void) {
    RUN(test_cross_thread_churn);
    RUN(test_batches_around_a_ring);
    return harness_finish();
}
