/* Fork and thread churn under the preload (DESIGN §2 thread heaps, §7 fork):
 *  - 10,000 forks from a process whose 4 worker threads never stop allocating,
 *    freeing each other's blocks and resizing; every child checks blocks it
 *    inherited, allocates small, medium and large blocks and a thread of its
 *    own now and then, and exits (mostly _exit, sometimes exit);
 *  - thread create/exit churn: short-lived threads in waves, each leaving
 *    blocks in a shared pool that threads started later free (remote frees
 *    into the heaps of threads that are gone);
 *  - realloc ping-pong: blocks passed around a ring of threads, each pass a
 *    realloc to a new size in another size class, with the contents checked.
 * No fault and no deadlock (an alarm in every process, a timeout around the
 * program), and bounded memory: the budget's counter (membudget_stats) and the
 * RSS after each phase stay within a fixed distance of their values after the
 * first round of the same work, so nothing grows with the number of forks or
 * threads.
 *
 * CHURN_FORKS, CHURN_THREADS, CHURN_PASSES override the counts (defaults
 * 10000, 20000, 200000); MBTEST_SCALE scales them. */
#include "harness.h"
#include "mbtest.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { WORKERS = 4, RING = 128, POOL = 1024, CHILD_ALARM_S = 20 };

struct block {
    unsigned char *ptr;
    size_t size;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t env_count(const char *name, size_t dflt, size_t min) {
    const char *s = getenv(name);
    size_t n = s && *s ? (size_t)strtoull(s, NULL, 10) : dflt;
    return tu_scaled(n, min);
}

static int new_block(struct block *b, size_t size) {
    b->size = size;
    b->ptr = T_MALLOC(size);
    if (!b->ptr) return 0;
    tu_fill(b->ptr, size, tu_seed(b->ptr, size));
    return 1;
}

static int check_and_free(struct block *b) {
    int ok = 1;
    if (b->ptr) {
        ok = tu_check(b->ptr, b->size, tu_seed(b->ptr, b->size)) == SIZE_MAX;
        T_FREE(b->ptr);
        b->ptr = NULL;
    }
    return ok;
}

/* Mostly small, some medium, a few large. */
static size_t pick_size(tu_rng *rng) {
    uint64_t r = tu_below(rng, 1000);
    if (r < 850) return tu_between(rng, 1, 512);
    if (r < 990) return tu_between(rng, 513, 64 * TU_KIB);
    return tu_between(rng, 256 * TU_KIB, 2 * TU_MIB);
}

/* The budget's counter, or 0 when the API is not there. */
static uint64_t counter_bytes(void) {
    if (!MBTEST_HAVE_API) return 0;
    struct membudget_stats st;
    memset(&st, 0, sizeof st);
    membudget_stats(&st, sizeof st);
    return st.counter_bytes;
}

static void release_all(void) {
    if (MBTEST_HAVE_API) membudget_release(MEMBUDGET_LEVEL_CRITICAL);
    T_TRIM(0);
}

/* Growth of the counter and the RSS between two points of equal live data. */
struct mark {
    uint64_t counter;
    size_t rss;
};
static struct mark mark_now(void) {
    release_all();
    return (struct mark){counter_bytes(), tu_rss_bytes()};
}
static void expect_bounded(const char *what, struct mark first, struct mark last, size_t slack) {
    fprintf(stderr, "  %s: counter %.1f -> %.1f MiB, RSS %.1f -> %.1f MiB\n", what,
            (double)first.counter / TU_MIB, (double)last.counter / TU_MIB, (double)first.rss / TU_MIB,
            (double)last.rss / TU_MIB);
    if (MBTEST_HAVE_API)
        expect_zu_le_f(last.counter, first.counter + slack, "%s: the counter grew", what);
    expect_zu_le_f(last.rss, first.rss + slack, "%s: the RSS grew", what);
}

/* ---- workers: allocate, free each other's blocks, resize ------------------ */
static atomic_int stop_workers;
static atomic_ulong worker_errors, worker_ops;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct block pool[POOL];

static void *worker_main(void *arg) {
    int id = (int)(intptr_t)arg;
    tu_rng rng = {(uint64_t)id * 7919 + 1};
    /* Lowest priority: on two cores the forking thread and its children never
     * wait for the workers, and the workers are still mid-allocation at every
     * fork. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    struct block ring[RING];
    memset(ring, 0, sizeof ring);
    unsigned long n = 0;
    while (!atomic_load_explicit(&stop_workers, memory_order_relaxed)) {
        struct block *slot = &ring[n++ % RING];
        if (!check_and_free(slot)) atomic_fetch_add(&worker_errors, 1);
        if (!new_block(slot, pick_size(&rng))) atomic_fetch_add(&worker_errors, 1);
        if ((n & 3) == 0) {
            struct block mine = *slot;
            pthread_mutex_lock(&pool_lock);
            struct block *s = &pool[tu_below(&rng, POOL)];
            *slot = *s;
            *s = mine;
            pthread_mutex_unlock(&pool_lock);
        }
        if ((n & 255) == 0 && slot->ptr) {
            /* Resize in place or move: the pattern must follow the block. */
            size_t keep = slot->size, to = pick_size(&rng);
            uint64_t seed = tu_seed(slot->ptr, slot->size);
            unsigned char *q = T_REALLOC(slot->ptr, to);
            if (!q || tu_check(q, keep < to ? keep : to, seed) != SIZE_MAX) {
                atomic_fetch_add(&worker_errors, 1);
                slot->ptr = q;
                slot->size = 0;
            } else {
                slot->ptr = q;
                slot->size = to;
                tu_fill(q, to, tu_seed(q, to));
            }
        }
    }
    for (int i = 0; i < RING; i++)
        if (!check_and_free(&ring[i])) atomic_fetch_add(&worker_errors, 1);
    atomic_fetch_add(&worker_ops, n);
    return NULL;
}

static void start_workers(pthread_t *tids) {
    atomic_store(&stop_workers, 0);
    for (int i = 0; i < WORKERS; i++)
        expect_int_eq(pthread_create(&tids[i], NULL, worker_main, (void *)(intptr_t)i), 0,
                      "pthread_create of a worker");
}

static void stop_workers_and_drain(pthread_t *tids) {
    atomic_store(&stop_workers, 1);
    for (int i = 0; i < WORKERS; i++) pthread_join(tids[i], NULL);
    for (int i = 0; i < POOL; i++)
        if (!check_and_free(&pool[i])) atomic_fetch_add(&worker_errors, 1);
}

/* ---- forks ------------------------------------------------------------------ */
enum { INHERITED = 64 };
static struct block inherited[INHERITED];

static void *child_thread(void *arg) {
    tu_rng rng = {(uint64_t)(uintptr_t)arg};
    for (int i = 0; i < 200; i++) {
        struct block b;
        if (!new_block(&b, pick_size(&rng) % 4096 + 1) || !check_and_free(&b)) return (void *)1;
    }
    return NULL;
}

static int child_main(unsigned i) {
    tu_rng rng = {i * 31 + 5};
    for (int k = 0; k < INHERITED; k++) {
        if (tu_check(inherited[k].ptr, inherited[k].size,
                     tu_seed(inherited[k].ptr, inherited[k].size)) != SIZE_MAX)
            return 2;
        if ((k + i) % 4 == 0) T_FREE(inherited[k].ptr); /* frees of the parent's blocks */
    }
    struct block live[32];
    memset(live, 0, sizeof live);
    for (int k = 0; k < 96; k++) {
        struct block *b = &live[tu_below(&rng, 32)];
        if (!check_and_free(b)) return 3;
        if (!new_block(b, tu_below(&rng, 16) ? tu_between(&rng, 1, 2048)
                                              : tu_between(&rng, 2049, 128 * TU_KIB)))
            return 4;
    }
    if (i % 16 == 0) {
        struct block big;
        if (!new_block(&big, TU_MIB + i % 4096) || !check_and_free(&big)) return 5;
    }
    if (i % 64 == 0) {
        pthread_t t;
        void *res = (void *)1;
        if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)(i + 1)) != 0) return 6;
        pthread_join(t, &res);
        if (res) return 7;
    }
    for (int k = 0; k < 32; k++)
        if (!check_and_free(&live[k])) return 8;
    return 0;
}

/* Forks `count` children, at most `batch` alive at a time. */
static unsigned fork_batch(unsigned first, unsigned count, unsigned batch, unsigned *failures) {
    unsigned done = 0;
    while (done < count && *failures < 5) {
        pid_t pids[16];
        unsigned n = 0;
        for (; n < batch && done + n < count; n++) {
            pid_t pid = fork();
            if (pid < 0) {
                expect_true(0, "fork %u: errno %d", first + done + n, errno);
                (*failures)++;
                break;
            }
            if (pid == 0) {
                alarm(CHILD_ALARM_S);
                unsigned i = first + done + n;
                int rc = child_main(i);
                if (i % 10 == 7) exit(rc); /* atexit handlers and stdio, as real programs */
                _exit(rc);
            }
            pids[n] = pid;
        }
        for (unsigned k = 0; k < n; k++) {
            int status = 0;
            while (waitpid(pids[k], &status, 0) < 0 && errno == EINTR) {
            }
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                if (WIFSIGNALED(status))
                    expect_true(0, "child %u killed by signal %d%s", first + done + k, WTERMSIG(status),
                                WTERMSIG(status) == SIGALRM ? " (hung)" : "");
                else
                    expect_true(0, "child %u exited with %d", first + done + k, WEXITSTATUS(status));
                (*failures)++;
            }
        }
        done += n;
        if (n == 0) break;
    }
    return done;
}

static void test_fork_churn(void) {
    unsigned forks = (unsigned)env_count("CHURN_FORKS", 10000, 100), failures = 0;
    tu_rng rng = {77};
    for (int k = 0; k < INHERITED; k++) new_block(&inherited[k], pick_size(&rng) % 8192 + 1);
    pthread_t tids[WORKERS];
    start_workers(tids);
    double t0 = now_s();
    /* A first tenth, then the rest; memory is compared between the two. */
    unsigned warm = forks / 10, done = fork_batch(0, warm, 4, &failures);
    struct mark first = {counter_bytes(), tu_rss_bytes()};
    done += fork_batch(warm, forks - warm, 4, &failures);
    struct mark last = {counter_bytes(), tu_rss_bytes()};
    double t1 = now_s();
    stop_workers_and_drain(tids);
    fprintf(stderr, "  %u forks in %.1f s (%.0f/s), %lu worker operations meanwhile\n", done, t1 - t0,
            done / (t1 - t0), (unsigned long)atomic_load(&worker_ops));
    expect_int_eq_f(done, forks, "forks run");
    expect_int_eq_f(failures, 0, "children that failed");
    expect_int_eq_f(atomic_load(&worker_errors), 0, "pattern or allocation errors in the workers");
    /* Live data differs from moment to moment (the workers run): a wide margin. */
    expect_bounded("forks", first, last, 64 * TU_MIB);
    for (int k = 0; k < INHERITED; k++) check_and_free(&inherited[k]);
}

/* ---- thread create/exit churn with remote frees ------------------------------ */
enum { SHARED = 4096, PER_THREAD = 96 };
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct block shared[SHARED];
static atomic_ulong churn_errors;

static void *churn_thread(void *arg) {
    tu_rng rng = {(uint64_t)(uintptr_t)arg * 2654435761u + 3};
    struct block mine[PER_THREAD];
    for (int i = 0; i < PER_THREAD; i++)
        if (!new_block(&mine[i], pick_size(&rng) % (32 * TU_KIB) + 1)) atomic_fetch_add(&churn_errors, 1);
    /* Half go to the pool, in exchange for blocks of threads that may be gone. */
    for (int i = 0; i < PER_THREAD; i += 2) {
        pthread_mutex_lock(&shared_lock);
        struct block *s = &shared[tu_below(&rng, SHARED)];
        struct block theirs = *s;
        *s = mine[i];
        pthread_mutex_unlock(&shared_lock);
        mine[i] = theirs;
    }
    for (int i = 0; i < PER_THREAD; i++)
        if (!check_and_free(&mine[i])) atomic_fetch_add(&churn_errors, 1);
    return NULL;
}

static void churn_threads(unsigned first, unsigned count) {
    enum { WAVE = 16 };
    for (unsigned done = 0; done < count;) {
        pthread_t t[WAVE];
        unsigned n = 0;
        for (; n < WAVE && done + n < count; n++)
            if (pthread_create(&t[n], NULL, churn_thread, (void *)(uintptr_t)(first + done + n)) != 0) {
                expect_true(0, "pthread_create: thread %u", first + done + n);
                break;
            }
        for (unsigned k = 0; k < n; k++) pthread_join(t[k], NULL);
        done += n;
        if (n == 0) break;
    }
}

static void test_thread_churn(void) {
    unsigned threads = (unsigned)env_count("CHURN_THREADS", 20000, 64);
    /* A full pool from the start, so both marks see as much live data. */
    tu_rng rng = {4242};
    for (int i = 0; i < SHARED; i++) new_block(&shared[i], pick_size(&rng) % (32 * TU_KIB) + 1);
    double t0 = now_s();
    unsigned warm = threads / 10;
    churn_threads(0, warm);
    struct mark first = mark_now();
    churn_threads(warm, threads - warm);
    struct mark last = mark_now();
    fprintf(stderr, "  %u threads in %.1f s\n", threads, now_s() - t0);
    expect_int_eq_f(atomic_load(&churn_errors), 0, "pattern or allocation errors");
    /* The pool holds the same number of blocks at both marks. */
    expect_bounded("threads", first, last, 16 * TU_MIB);
    if (MBTEST_HAVE_API) {
        struct membudget_stats st;
        memset(&st, 0, sizeof st);
        membudget_stats(&st, sizeof st);
        fprintf(stderr, "  thread heaps: %llu created, %llu live\n", (unsigned long long)st.threads,
                (unsigned long long)st.threads_live);
        /* The main thread and perhaps a monitor thread: every other heap was
         * given up when its thread ended. */
        expect_zu_le_f(st.threads_live, 2, "thread heaps still owned after every thread ended");
    }
    for (int i = 0; i < SHARED; i++)
        if (!check_and_free(&shared[i])) expect_true(0, "pool block %d lost its pattern", i);
}

/* ---- realloc ping-pong around a ring of threads -------------------------------- */
enum { RING_THREADS = 4, BALLS = 3 };
struct ball {
    unsigned char *ptr;
    size_t size;
    uint64_t seed;
};
struct mailbox {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct ball balls[BALLS + 1];
    unsigned count;
};
static struct mailbox boxes[RING_THREADS];
static atomic_long passes_left;
static atomic_ulong pingpong_errors;

static void put(struct mailbox *m, struct ball b) {
    pthread_mutex_lock(&m->lock);
    m->balls[m->count++] = b;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static void *pingpong_thread(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    tu_rng rng = {id + 101};
    struct mailbox *in = &boxes[id], *out = &boxes[(id + 1) % RING_THREADS];
    for (;;) {
        pthread_mutex_lock(&in->lock);
        while (in->count == 0) pthread_cond_wait(&in->cond, &in->lock);
        struct ball b = in->balls[--in->count];
        pthread_mutex_unlock(&in->lock);
        if (b.ptr == NULL) { /* the end: pass it on and stop */
            put(out, b);
            return NULL;
        }
        long left = atomic_fetch_sub(&passes_left, 1);
        if (left <= 0) { /* the game is over: pass it on untouched */
            put(out, b);
            continue;
        }
        /* A size in another class: tiny, small, medium, big or large. */
        static const size_t tops[] = {64, 1024, 8192, 65536, 262144, 1048576};
        size_t to = tu_between(&rng, 1, tops[tu_below(&rng, 6)]);
        size_t keep = b.size < to ? b.size : to;
        unsigned char *q = T_REALLOC(b.ptr, to);
        if (!q || tu_check(q, keep, b.seed) != SIZE_MAX) {
            atomic_fetch_add(&pingpong_errors, 1);
            if (!q) q = T_MALLOC(to);
        }
        b.ptr = q;
        b.size = to;
        b.seed = tu_seed(q, to);
        tu_fill(q, to, b.seed);
        if (left == 1) { /* the last pass: this ball ends the game around the ring */
            T_FREE(b.ptr);
            b.ptr = NULL;
        }
        put(out, b);
        if (b.ptr == NULL) return NULL;
    }
}

static void test_realloc_pingpong(void) {
    unsigned long passes = env_count("CHURN_PASSES", 200000, 1000);
    atomic_store(&passes_left, (long)passes);
    struct mark first = mark_now();
    for (int i = 0; i < RING_THREADS; i++) {
        pthread_mutex_init(&boxes[i].lock, NULL);
        pthread_cond_init(&boxes[i].cond, NULL);
        boxes[i].count = 0;
    }
    for (int i = 0; i < BALLS; i++) {
        unsigned char *p = T_MALLOC(100);
        tu_fill(p, 100, tu_seed(p, 100));
        put(&boxes[i % RING_THREADS], (struct ball){p, 100, tu_seed(p, 100)});
    }
    double t0 = now_s();
    pthread_t t[RING_THREADS];
    for (int i = 0; i < RING_THREADS; i++)
        pthread_create(&t[i], NULL, pingpong_thread, (void *)(uintptr_t)i);
    for (int i = 0; i < RING_THREADS; i++) pthread_join(t[i], NULL);
    /* Balls still in a mailbox when the game ended. */
    unsigned left = 0;
    for (int i = 0; i < RING_THREADS; i++)
        for (unsigned k = 0; k < boxes[i].count; k++)
            if (boxes[i].balls[k].ptr) {
                struct ball b = boxes[i].balls[k];
                if (tu_check(b.ptr, b.size, b.seed) != SIZE_MAX) atomic_fetch_add(&pingpong_errors, 1);
                T_FREE(b.ptr);
                left++;
            }
    fprintf(stderr, "  %lu passes in %.1f s, %u balls left over\n", passes, now_s() - t0, left);
    expect_int_eq_f(atomic_load(&pingpong_errors), 0, "contents lost in realloc across threads");
    expect_int_eq_f(left, BALLS - 1, "balls still in play at the end");
    struct mark last = mark_now();
    expect_bounded("ping-pong", first, last, 16 * TU_MIB);
}

int main(void) {
    /* A deadlock anywhere ends the program here rather than at the suite's
     * timeout; MBTEST_SCALE above 1 (make stress) gets more time. */
    alarm((unsigned)(600 * (tu_scale() > 1 ? tu_scale() : 1)));
    setvbuf(stderr, NULL, _IOLBF, 0);
    if (!MBTEST_HAVE_API) fprintf(stderr, "  (no membudget API: the RSS alone is watched)\n");
    RUN(test_fork_churn);
    RUN(test_thread_churn);
    RUN(test_realloc_pingpong);
    return harness_finish();
}
