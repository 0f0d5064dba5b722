/* fork from a process whose other threads are busy allocating: the child must
 * find the allocator usable (no lock left held by a thread that does not exist
 * in the child), allocate and free small and large blocks, free blocks it
 * inherited, and exit 0.  A child that hangs is killed by its own alarm and
 * counts as a failure; the parent has an alarm too. */
#include "harness.h"
#include "mbtest.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Sanitizer runtimes from clang 14 do not take their own locks around fork, so
 * a child of a threaded process must not start threads (ASan's allocator lock
 * may be held by a thread that is gone; TSan refuses outright) nor run their
 * exit-time work.  Those parts of the child run only without a sanitizer. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

enum { WORKERS = 4, CHILD_ALARM_S = 10, RING = 256, SHARED = 512 };

struct block {
    unsigned char *ptr;
    size_t size;
};

static atomic_int stop_workers;
static atomic_ulong worker_errors;

/* Blocks passed between the workers so frees are also cross-thread when fork
 * happens. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct block shared_blocks[SHARED];

/* The workers' sizes: mostly small, a few large.  Their memory stays small on
 * purpose: after every fork each page they write is copied again. */
static size_t pick_size(tu_rng *rng) {
    uint64_t r = tu_below(rng, 1000);
    if (r < 900) return tu_between(rng, 1, 512);
    if (r < 999) return tu_between(rng, 513, 16 * TU_KIB);
    return tu_between(rng, 64 * TU_KIB, TU_MIB);
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

static int new_block(struct block *b, size_t size) {
    b->size = size;
    b->ptr = T_MALLOC(size);
    if (!b->ptr) return 0;
    tu_fill(b->ptr, size, tu_seed(b->ptr, size));
    return 1;
}

static void *worker_main(void *arg) {
    int id = (int)(intptr_t)arg;
    tu_rng rng = {(uint64_t)id + 99};
    /* Lowest priority (Linux nice values are per thread): the workers take
     * whatever CPU is idle, a child or the forking thread never waits for them
     * on a small machine, and they are still mid-allocation at every fork. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    struct block ring[RING];
    memset(ring, 0, sizeof ring);
    unsigned long n = 0;
    while (!atomic_load_explicit(&stop_workers, memory_order_relaxed)) {
        struct block *slot = &ring[n++ % RING];
        if (!check_and_free(slot)) atomic_fetch_add(&worker_errors, 1);
        if (!new_block(slot, pick_size(&rng))) atomic_fetch_add(&worker_errors, 1);
        if ((n & 3) == 0) {
            /* Swap a block with the shared pool: what comes back was most
             * likely allocated by another worker. */
            struct block mine = *slot;
            pthread_mutex_lock(&shared_lock);
            struct block *s = &shared_blocks[tu_below(&rng, SHARED)];
            *slot = *s;
            *s = mine;
            pthread_mutex_unlock(&shared_lock);
        }
        if ((n & 1023) == 0) {
            void *r = T_REALLOC(T_MALLOC(100), 300000);
            T_FREE(r);
        }
    }
    for (int i = 0; i < RING; i++)
        if (!check_and_free(&ring[i])) atomic_fetch_add(&worker_errors, 1);
    return NULL;
}

/* Blocks the main thread holds across every fork; children check and free some. */
enum { INHERITED = 256 };
static struct block inherited[INHERITED];

/* What a child allocates: small and medium; large ones are asked for by name. */
static size_t child_size(tu_rng *rng) {
    return tu_below(rng, 10) ? tu_between(rng, 1, 512) : tu_between(rng, 513, 32 * TU_KIB);
}

static void *child_thread_main(void *arg) {
    (void)arg;
    tu_rng rng = {5};
    int ok = 1;
    for (int i = 0; i < 500; i++) {
        struct block b;
        if (!new_block(&b, child_size(&rng))) return (void *)1;
        ok &= check_and_free(&b);
    }
    return ok ? NULL : (void *)1;
}

/* The child's work; its return value is the exit status. */
static int child_work(unsigned iteration) {
    tu_rng rng = {iteration + 1000};
    /* Inherited blocks: intact, and freeable (every other one). */
    for (int i = 0; i < INHERITED; i++) {
        if (!inherited[i].ptr) continue;
        if (tu_check(inherited[i].ptr, inherited[i].size,
                     tu_seed(inherited[i].ptr, inherited[i].size)) != SIZE_MAX)
            return 2;
        if (i & 1) T_FREE(inherited[i].ptr);
    }
    enum { LIVE = 256 };
    struct block live[LIVE];
    memset(live, 0, sizeof live);
    for (int i = 0; i < 2 * LIVE; i++) {
        struct block *b = &live[tu_below(&rng, LIVE)];
        if (!check_and_free(b)) return 3;
        if (!new_block(b, child_size(&rng))) return 4;
    }
    /* Large blocks, well past any small-object class. */
    static const size_t large[] = {TU_MIB, 4 * TU_MIB + 5};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        struct block b;
        if (!new_block(&b, large[i])) return 5;
        if (!check_and_free(&b)) return 6;
    }
    unsigned char *z = T_CALLOC(500, 1000);
    if (!z || tu_check_zero(z, 500000) != SIZE_MAX) return 7;
    z = T_REALLOC(z, 1500000);
    if (!z) return 8;
    T_FREE(z);
    for (int i = 0; i < LIVE; i++)
        if (!check_and_free(&live[i])) return 9;
    /* A thread in the child. */
    if (!UNDER_SANITIZER && iteration % 4 == 0) {
        pthread_t t;
        void *res = (void *)1;
        if (pthread_create(&t, NULL, child_thread_main, NULL) != 0) return 10;
        pthread_join(t, &res);
        if (res) return 11;
    }
    return 0;
}

static void describe_status(int status, char *out, size_t len) {
    if (WIFEXITED(status))
        snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        snprintf(out, len, "hung (killed by its %d s alarm)", CHILD_ALARM_S);
    else if (WIFSIGNALED(status))
        snprintf(out, len, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(out, len, "status 0x%x", status);
}

/* Forks `forks` times from the calling thread while the workers run. */
static unsigned fork_many(unsigned forks, unsigned *failed) {
    unsigned done = 0;
    *failed = 0;
    for (unsigned i = 0; i < forks && *failed < 3; i++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            expect_true(0, "fork number %u failed: errno %d", i, errno);
            (*failed)++;
            continue;
        }
        if (pid == 0) {
            alarm(CHILD_ALARM_S);
            int rc = child_work(i);
            /* Most children leave with _exit; some run exit() and its
             * handlers, as real programs do. */
            if (i % 8 == 3 && !UNDER_SANITIZER) exit(rc);
            _exit(rc);
        }
        int status = 0;
        pid_t w;
        while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
        }
        done++;
        if (w != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char what[96];
            describe_status(status, what, sizeof what);
            expect_true(0, "child %u %s", i, what);
            (*failed)++;
        }
    }
    return done;
}

static void start_workers(pthread_t *tids) {
    atomic_store(&stop_workers, 0);
    for (int i = 0; i < WORKERS; i++) {
        int rc = pthread_create(&tids[i], NULL, worker_main, (void *)(intptr_t)i);
        expect_int_eq(rc, 0, "pthread_create of a worker");
    }
}

static void stop_and_join(pthread_t *tids) {
    atomic_store(&stop_workers, 1);
    for (int i = 0; i < WORKERS; i++) pthread_join(tids[i], NULL);
}

static void test_fork_from_main_thread(void) {
    unsigned forks = (unsigned)tu_scaled(240, 30), failed;
    pthread_t tids[WORKERS];
    start_workers(tids);
    unsigned done = fork_many(forks, &failed);
    stop_and_join(tids);
    expect_true(done == forks || failed >= 3, "%u of %u forks ran", done, forks);
    expect_int_eq_f(failed, 0, "children that did not exit 0, of %u", done);
}

struct forker_arg {
    unsigned forks, done, failed;
};

static void *forker_main(void *argp) {
    struct forker_arg *arg = argp;
    arg->done = fork_many(arg->forks, &arg->failed);
    return NULL;
}

/* The same from a thread that is not the main one: the child's only thread is
 * then one whose heap was a worker's. */
static void test_fork_from_other_thread(void) {
    struct forker_arg arg = {(unsigned)tu_scaled(40, 10), 0, 0};
    pthread_t tids[WORKERS], forker;
    start_workers(tids);
    int rc = pthread_create(&forker, NULL, forker_main, &arg);
    expect_int_eq(rc, 0, "pthread_create of the forking thread");
    if (rc == 0) pthread_join(forker, NULL);
    stop_and_join(tids);
    expect_int_eq_f(arg.failed, 0, "children that did not exit 0, of %u", arg.done);
}

static void test_workers_saw_no_errors(void) {
    expect_int_eq(atomic_load(&worker_errors), 0, "pattern or allocation errors in the workers");
    for (int i = 0; i < SHARED; i++) {
        if (!check_and_free(&shared_blocks[i])) {
            expect_true(0, "shared block %d lost its pattern", i);
            break;
        }
    }
}

int main(void) {
    /* The whole program must not hang: a deadlock in the parent ends here. */
    alarm(300);
    tu_rng rng = {1};
    for (int i = 0; i < INHERITED; i++) new_block(&inherited[i], pick_size(&rng));
    RUN(test_fork_from_main_thread);
    RUN(test_fork_from_other_thread);
    RUN(test_workers_saw_no_errors);
    for (int i = 0; i < INHERITED; i++) check_and_free(&inherited[i]);
    return harness_finish();
}
