/* Producer/consumer cross-thread frees: producers allocate batches of small blocks
 * and hand them over a bounded queue to consumers, which verify and free them.  Every
 * block dies in a thread other than the one that allocated it (the remote-free path).
 * Consumers keep the previous batch alive until the next arrives, so remote frees
 * and new allocations overlap. */
#include <pthread.h>

#include "common.h"

#define PRODUCERS 2
#define CONSUMERS 2
#define BATCHES_PER_PRODUCER 9000
#define BATCH 1000           /* blocks per batch */
#define QUEUE_CAP 32         /* batches in flight at most */
#define MIN_SIZE 8
#define MAX_SIZE 1024

typedef struct {
    uint32_t count;
    uint32_t size[BATCH];
    void *block[BATCH];
} batch_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    batch_t *ring[QUEUE_CAP];
    unsigned head, tail, len, producers_left;
} queue = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
           {0}, 0, 0, 0, PRODUCERS};

static void queue_push(batch_t *b) {
    pthread_mutex_lock(&queue.lock);
    while (queue.len == QUEUE_CAP) pthread_cond_wait(&queue.not_full, &queue.lock);
    queue.ring[queue.tail] = b;
    queue.tail = (queue.tail + 1) % QUEUE_CAP;
    queue.len++;
    pthread_cond_signal(&queue.not_empty);
    pthread_mutex_unlock(&queue.lock);
}

/* NULL once every producer is done and the queue is drained. */
static batch_t *queue_pop(void) {
    pthread_mutex_lock(&queue.lock);
    while (queue.len == 0 && queue.producers_left > 0)
        pthread_cond_wait(&queue.not_empty, &queue.lock);
    batch_t *b = NULL;
    if (queue.len > 0) {
        b = queue.ring[queue.head];
        queue.head = (queue.head + 1) % QUEUE_CAP;
        queue.len--;
        pthread_cond_signal(&queue.not_full);
    }
    pthread_mutex_unlock(&queue.lock);
    return b;
}

static void producer_done(void) {
    pthread_mutex_lock(&queue.lock);
    queue.producers_left--;
    pthread_cond_broadcast(&queue.not_empty);
    pthread_mutex_unlock(&queue.lock);
}

static void *producer(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    rng_t rng = {1000 + id};
    for (uint32_t n = 0; n < BATCHES_PER_PRODUCER; n++) {
        batch_t *b = xmalloc(sizeof *b);
        b->count = BATCH;
        for (uint32_t i = 0; i < BATCH; i++) {
            size_t size = rng_range(&rng, MIN_SIZE, MAX_SIZE);
            b->block[i] = xmalloc(size);
            b->size[i] = (uint32_t)size;
            stamp_write(b->block[i], size, (id << 40) ^ ((uint64_t)n * BATCH + i));
        }
        queue_push(b);
    }
    producer_done();
    return NULL;
}

typedef struct {
    uint64_t sum, blocks;
} consumer_result_t;

static uint64_t batch_release(batch_t *b, uint64_t *blocks) {
    uint64_t sum = 0;
    for (uint32_t i = 0; i < b->count; i++) {
        sum += stamp_check(b->block[i], b->size[i]);
        free(b->block[i]);
    }
    *blocks += b->count;
    free(b);
    return sum;
}

static void *consumer(void *arg) {
    consumer_result_t *res = arg;
    batch_t *held = NULL, *b;
    while ((b = queue_pop()) != NULL) {
        if (held) res->sum += batch_release(held, &res->blocks);
        held = b;
    }
    if (held) res->sum += batch_release(held, &res->blocks);
    return NULL;
}

int main(void) {
    pthread_t prod[PRODUCERS], cons[CONSUMERS];
    consumer_result_t res[CONSUMERS] = {{0, 0}};
    for (uintptr_t i = 0; i < CONSUMERS; i++)
        if (pthread_create(&cons[i], NULL, consumer, &res[i])) die("pthread_create", i);
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        if (pthread_create(&prod[i], NULL, producer, (void *)i)) die("pthread_create", i);
    for (int i = 0; i < PRODUCERS; i++) pthread_join(prod[i], NULL);
    uint64_t sum = 0, blocks = 0;
    for (int i = 0; i < CONSUMERS; i++) {
        pthread_join(cons[i], NULL);
        sum += res[i].sum;
        blocks += res[i].blocks;
    }
    /* The split between consumers depends on scheduling; the totals do not. */
    printf("prodcons producers=%d consumers=%d blocks=%" PRIu64 " checksum=%016" PRIx64 "\n",
           PRODUCERS, CONSUMERS, blocks, sum);
    if (blocks != (uint64_t)PRODUCERS * BATCHES_PER_PRODUCER * BATCH) die("blocks lost", blocks);
    return 0;
}
