/* Allocation sampling (see sample.h).
 *
 * Two fixed tables, in static storage so that nothing is allocated:
 *  - sites: deduplicated stacks, open addressing on the stack's hash.  A slot is
 *    written once, under the sample lock, and published by storing its hash
 *    (release); lookups read without the lock.  Sites are never removed, so a
 *    probe sequence never changes under a reader.
 *  - live: the sampled blocks, keyed by address, in buckets of 8 slots with two
 *    candidate buckets per address.  A slot is claimed with one CAS on its key
 *    and cleared by the free that retires it; an address is live in one slot at
 *    most, and only the thread that holds the block (its allocator or its
 *    freer) touches that slot, so no lock is needed.
 *  - a counting filter over the addresses of the live samples (64K counters of
 *    one byte), so that a free of an unsampled block on a flagged page (one
 *    with a live sample) is turned away after one load of a small table.
 * The allocator flags a page while it holds live samples (it counts them), so
 * a free on any other page costs nothing here.
 *
 * Estimates: a sample of s bytes taken at rate R had probability
 * p = 1 - exp(-s/R); it adds s/p bytes and 1/p objects to its site, and its
 * free subtracts exactly the same figures (computed again from s). */
#include "policy/sample.h"

#include <stdatomic.h>
#include <string.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "alloc/alloc.h"

/* Frames of ours (the sampler, the malloc entry points) above the caller's. */
#define SAMPLE_SKIP_MAX 8
/* Until the constructor has set the rate: look again after this many bytes. */
#define SAMPLE_PRE_INIT_INTERVAL ((int64_t)64 << 10)
#define SAMPLE_RATE_MAX ((uint64_t)1 << 40)
/* How long a new site waits for the sample lock before it gives up. */
#define SAMPLE_LOCK_WAIT_NS (1000 * 1000ull)
/* How long fork waits for threads inside the unwinder to come out. */
#define FORK_QUIESCE_WAIT_NS (2000 * 1000 * 1000ull)
#define SITES_FULL (MB_SAMPLE_SITES / 8 * 7) /* keep probes short */
#define LIVE_BUCKET_SLOTS 8
#define LIVE_BUCKETS (MB_SAMPLE_LIVE_SLOTS / LIVE_BUCKET_SLOTS)
#define LIVE_BUCKET_BITS 13 /* log2(LIVE_BUCKETS) */
/* A live slot's meta: the block's size above, its site + 1 in the low bits
 * (0: no site, so a slot claimed and never completed retires nothing). */
#define META_SITE_BITS 16
#define META_SITE_MASK (((uint64_t)1 << META_SITE_BITS) - 1)

_Static_assert(LIVE_BUCKETS == (1u << LIVE_BUCKET_BITS), "live bucket count");
_Static_assert(MB_SAMPLE_OVERFLOW_SITE + 1 < META_SITE_MASK, "site index fits the meta");
_Static_assert((MB_SAMPLE_SITES & (MB_SAMPLE_SITES - 1)) == 0, "site table size");
_Static_assert(MB_SAMPLE_SITES <= UINT16_MAX + 1, "a site index fits the dense list");

struct site {
    _Atomic uint64_t hash; /* 0: free slot; stored last, with release */
    uint32_t depth;        /* written once, before hash */
    uint32_t list_pos;     /* its entry in site_list; written once, before hash */
    _Atomic uint64_t live_samples, live_bytes, est_bytes, est_objects_1024, total_samples;
    uintptr_t frames[MB_SAMPLE_MAX_FRAMES]; /* written once, before hash */
};

static struct site sites[MB_SAMPLE_SITES + 1]; /* + the overflow site */
static _Atomic uint64_t site_count;
/* The occupied slots of `sites`, in the order they were filled (under the
 * sample lock): entry i is published by storing site_list_count > i with
 * release, so a reader walks only the recorded sites.  Survives fork as the
 * sites do. */
static _Atomic uint16_t site_list[SITES_FULL];
static _Atomic uint32_t site_list_count;
/* est_bytes of the site of each site_list entry, side by side: a pass over
 * every recorded site reads one contiguous array (8 bytes a site) rather than
 * a cache line of each site.  Updated with est_bytes, at samples only. */
static _Atomic uint64_t site_list_est[SITES_FULL];
/* The top-site hint (see mb_sample_top_site): the last site whose estimate
 * grew past the hinted site's.  MB_SAMPLE_NO_SITE: none yet. */
static _Atomic uint32_t leader_hint = MB_SAMPLE_NO_SITE;
static mb_lock_t sample_lock = MB_LOCK_INIT(LOCK_RANK_SAMPLE);

static _Atomic uintptr_t live_keys[LIVE_BUCKETS][LIVE_BUCKET_SLOTS];
static _Atomic uint64_t live_meta[LIVE_BUCKETS][LIVE_BUCKET_SLOTS];
/* Live samples per address hash; a counter that reached 255 stays (then its
 * addresses always look in the table). */
#define FILTER_BITS 16
static _Atomic uint8_t live_filter[1u << FILTER_BITS];

static _Atomic uint64_t sample_rate;
static _Atomic bool sample_ready;
/* Taken and live samples are the sums over the sites (no global counter to
 * update on every sample). */
static _Atomic uint64_t samples_dropped, samples_unrecorded, unwind_failures;
/* Threads inside the unwinder, and a fork about to happen: no thread may be
 * inside libunwind (holding its locks) when the process forks. */
static _Atomic int unwinders;
static _Atomic bool forking;
/* libunwind is set up (its caching policy) at the first sample, not at start:
 * a program that never samples never runs it, its text and its data stay
 * untouched (~80 KB resident).  UNWIND_UNSET, then UNWIND_SETTING while one
 * thread sets it up, then UNWIND_READY. */
enum { UNWIND_UNSET, UNWIND_SETTING, UNWIND_READY };
static _Atomic int unwind_state;
/* Our own executable code: leading frames inside it are skipped. */
static uintptr_t self_text_start, self_text_end;

static __thread uint64_t rng_state;
static __thread bool in_sample;
static __thread bool armed; /* the thread's first interval has been drawn */

/* ---- arithmetic without libm ---------------------------------------------- */

#define LN2 0.69314718055994530942

/* e^-x for x >= 0: x = k ln2 + r with 0 <= r < ln2, e^-r by its series. */
/* 1/n! for n = 0..13: the series below are evaluated by Horner's rule. */
static const double inverse_factorial[14] = {1.0,
                                             1.0,
                                             1.0 / 2,
                                             1.0 / 6,
                                             1.0 / 24,
                                             1.0 / 120,
                                             1.0 / 720,
                                             1.0 / 5040,
                                             1.0 / 40320,
                                             1.0 / 362880,
                                             1.0 / 3628800,
                                             1.0 / 39916800,
                                             1.0 / 479001600,
                                             1.0 / 6227020800.0};

/* sum over n = first..last of (-x)^(n-first) / n! */
static double series_neg(double x, int first, int last) {
    double sum = inverse_factorial[last];
    for (int n = last - 1; n >= first; n--) sum = inverse_factorial[n] - x * sum;
    return sum;
}

/* 2^(-j/16) for j = 0..15. */
static const double two_pow_minus_sixteenths[16] = {1.0,
                                                    0.9576032806985737,
                                                    0.91700404320467122,
                                                    0.87812608018664973,
                                                    0.8408964152537145,
                                                    0.80524516597462714,
                                                    0.77110541270397037,
                                                    0.73841307296974967,
                                                    0.70710678118654757,
                                                    0.67712777346844633,
                                                    0.64841977732550482,
                                                    0.620928906036742,
                                                    0.59460355750136051,
                                                    0.56939431737834578,
                                                    0.54525386633262884,
                                                    0.52213689121370688};

/* e^-x for x >= 0: x = (16k + j) ln2/16 + r with 0 <= r < ln2/16, so
 * e^-x = 2^-k 2^(-j/16) e^-r, and e^-r needs 7 terms (error < 1e-13). */
static double exp_neg(double x) {
    if (x > 700.0) return 0.0;
    int n = (int)(x * (16.0 / LN2));
    double sum = series_neg(x - n * (LN2 / 16.0), 0, 7) * two_pow_minus_sixteenths[n & 15];
    int k = n >> 4;
    for (; k >= 60; k -= 60) sum *= 0x1p-60;
    return sum * (1.0 / (double)((uint64_t)1 << k));
}

/* 1 - e^-x, accurate for small x too (13 terms below 0.5: error < 1e-14). */
static double one_minus_exp_neg(double x) {
    if (x >= 0.5) return 1.0 - exp_neg(x);
    return x * series_neg(x, 1, 13);
}

/* ln(u) for u > 0: u = m 2^e with 1 <= m < 2, ln m = 2 atanh((m-1)/(m+1)). */
static double ln(double u) {
    uint64_t bits;
    memcpy(&bits, &u, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & (((uint64_t)1 << 52) - 1)) | ((uint64_t)1023 << 52);
    double m;
    memcpy(&m, &bits, sizeof m);
    double z = (m - 1.0) / (m + 1.0), z2 = z * z, term = z, sum = 0.0;
    for (int i = 1; i <= 27; i += 2) {
        sum += term / i;
        term *= z2;
    }
    return e * LN2 + 2.0 * sum;
}

static uint64_t rng_next(void) {
    if (rng_state == 0)
        rng_state = os_now_ns() ^ ((uint64_t)os_gettid() << 32) ^ (uintptr_t)&rng_state;
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Bytes to the next sample: exponential with mean `rate`. */
static int64_t next_interval(uint64_t rate) {
    double u = (double)((rng_next() >> 11) + 1) * 0x1p-53; /* (0, 1] */
    return (int64_t)(-ln(u) * (double)rate);               /* <= 37 * 2^40 */
}

/* What one sample of `size` bytes stands for. */
static void sample_weight(uint64_t size, uint64_t rate, uint64_t *bytes, uint64_t *objects_1024) {
    /* The last size seen by this thread: a realloc's retired sample is often
     * the size its previous sample added. */
    static __thread uint64_t last_size, last_rate, last_bytes, last_objects;
    if (size == 0) size = 1;
    if (size == last_size && rate == last_rate) {
        *bytes = last_bytes;
        *objects_1024 = last_objects;
        return;
    }
    double x = (double)size / (double)rate;
    if (x > 40.0) { /* p = 1 to double precision */
        *bytes = size;
        *objects_1024 = 1024;
    } else {
        double p = one_minus_exp_neg(x);
        double inverse = p > 1e-12 ? 1.0 / p : 1e12;
        *bytes = (uint64_t)((double)size * inverse + 0.5);
        *objects_1024 = (uint64_t)(1024.0 * inverse + 0.5);
    }
    last_size = size;
    last_rate = rate;
    last_bytes = *bytes;
    last_objects = *objects_1024;
}

/* ---- sites ------------------------------------------------------------------ */

static uint64_t hash_frames(const uintptr_t *frames, uint32_t depth) {
    uint64_t h = 0xcbf29ce484222325ull ^ depth;
    for (uint32_t i = 0; i < depth; i++) {
        h ^= frames[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h != 0 ? h : 1;
}

static bool site_matches(const struct site *s, const uintptr_t *frames, uint32_t depth) {
    return s->depth == depth && memcmp(s->frames, frames, depth * sizeof *frames) == 0;
}

/* Probes from the stack's home slot; returns the site or the first free slot
 * (*found tells which).  Reads without the lock. */
static size_t site_probe(uint64_t h, const uintptr_t *frames, uint32_t depth, bool *found) {
    size_t mask = MB_SAMPLE_SITES - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        uint64_t slot_hash = atomic_load_explicit(&sites[i].hash, memory_order_acquire);
        if (slot_hash == 0) {
            *found = false;
            return i;
        }
        if (slot_hash == h && site_matches(&sites[i], frames, depth)) {
            *found = true;
            return i;
        }
    }
}

static uint32_t site_find_or_add(const uintptr_t *frames, uint32_t depth) {
    uint64_t h = hash_frames(frames, depth);
    bool found;
    size_t i = site_probe(h, frames, depth, &found);
    if (found) return (uint32_t)i;
    if (atomic_load_explicit(&site_count, memory_order_relaxed) >= SITES_FULL ||
        !mb_lock_bounded(&sample_lock, SAMPLE_LOCK_WAIT_NS)) {
        atomic_fetch_add_explicit(&samples_unrecorded, 1, memory_order_relaxed);
        return MB_SAMPLE_OVERFLOW_SITE;
    }
    /* Another thread may have added it (or taken the free slot) meanwhile. */
    i = site_probe(h, frames, depth, &found);
    if (!found) {
        if (atomic_load_explicit(&site_count, memory_order_relaxed) >= SITES_FULL) {
            mb_unlock(&sample_lock);
            atomic_fetch_add_explicit(&samples_unrecorded, 1, memory_order_relaxed);
            return MB_SAMPLE_OVERFLOW_SITE;
        }
        struct site *s = &sites[i];
        /* n < SITES_FULL (checked above, under the lock that adds sites). */
        uint64_t n = atomic_load_explicit(&site_count, memory_order_relaxed);
        s->depth = depth;
        s->list_pos = (uint32_t)n;
        memcpy(s->frames, frames, depth * sizeof *frames);
        atomic_store_explicit(&site_list[n], (uint16_t)i, memory_order_relaxed);
        atomic_store_explicit(&s->hash, h, memory_order_release);
        atomic_store_explicit(&site_count, n + 1, memory_order_relaxed);
        atomic_store_explicit(&site_list_count, (uint32_t)(n + 1), memory_order_release);
    }
    mb_unlock(&sample_lock);
    return (uint32_t)i;
}

/* A recorded site's estimate grew to est: it becomes the hint when it passed
 * the hinted site's (two relaxed loads, at samples only). */
static void leader_note(uint32_t site, uint64_t est) {
    uint32_t hint = atomic_load_explicit(&leader_hint, memory_order_relaxed);
    if (hint == site) return;
    if (hint == MB_SAMPLE_NO_SITE ||
        est > atomic_load_explicit(&sites[hint].est_bytes, memory_order_relaxed))
        atomic_store_explicit(&leader_hint, site, memory_order_relaxed);
}

static void site_account(uint32_t site, uint64_t size, bool add) {
    uint64_t bytes, objects;
    sample_weight(size, atomic_load_explicit(&sample_rate, memory_order_relaxed), &bytes, &objects);
    struct site *s = &sites[site];
    if (add) {
        atomic_fetch_add_explicit(&s->live_samples, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->live_bytes, size, memory_order_relaxed);
        uint64_t est = atomic_fetch_add_explicit(&s->est_bytes, bytes, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->est_objects_1024, objects, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->total_samples, 1, memory_order_relaxed);
        if (site < MB_SAMPLE_OVERFLOW_SITE) {
            atomic_fetch_add_explicit(&site_list_est[s->list_pos], bytes, memory_order_relaxed);
            leader_note(site, est + bytes);
        }
    } else {
        atomic_fetch_sub_explicit(&s->live_samples, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&s->live_bytes, size, memory_order_relaxed);
        atomic_fetch_sub_explicit(&s->est_bytes, bytes, memory_order_relaxed);
        if (site < MB_SAMPLE_OVERFLOW_SITE)
            atomic_fetch_sub_explicit(&site_list_est[s->list_pos], bytes, memory_order_relaxed);
        atomic_fetch_sub_explicit(&s->est_objects_1024, objects, memory_order_relaxed);
    }
}

/* A block resized in place and sampled again at the same site (a buffer grown
 * by realloc): one sample replaces the other, in four additions instead of ten
 * (the differences wrap modulo 2^64 when they are negative). */
static void site_replace(uint32_t site, uint64_t old_size, uint64_t new_size) {
    uint64_t rate = atomic_load_explicit(&sample_rate, memory_order_relaxed);
    uint64_t old_bytes, old_objects, new_bytes, new_objects;
    sample_weight(old_size, rate, &old_bytes, &old_objects);
    sample_weight(new_size, rate, &new_bytes, &new_objects);
    struct site *s = &sites[site];
    atomic_fetch_add_explicit(&s->live_bytes, new_size - old_size, memory_order_relaxed);
    uint64_t est =
        atomic_fetch_add_explicit(&s->est_bytes, new_bytes - old_bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->est_objects_1024, new_objects - old_objects,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&s->total_samples, 1, memory_order_relaxed);
    if (site < MB_SAMPLE_OVERFLOW_SITE) {
        atomic_fetch_add_explicit(&site_list_est[s->list_pos], new_bytes - old_bytes,
                                  memory_order_relaxed);
        if (new_bytes > old_bytes) leader_note(site, est + (new_bytes - old_bytes));
    }
}

static void meta_retire(uint64_t meta) {
    uint64_t site_plus_one = meta & META_SITE_MASK;
    if (site_plus_one == 0) return;
    site_account((uint32_t)(site_plus_one - 1), meta >> META_SITE_BITS, false);
}

/* ---- live blocks ------------------------------------------------------------ */

static uint64_t live_hash(uintptr_t addr) { return (uint64_t)(addr >> 4) * 0x9e3779b97f4a7c15ull; }

static void live_buckets(uint64_t h, size_t *b1, size_t *b2) {
    *b1 = (size_t)(h >> (64 - LIVE_BUCKET_BITS));
    *b2 = (size_t)(h >> 20) & (LIVE_BUCKETS - 1);
    if (*b2 == *b1) *b2 ^= 1;
}

static _Atomic uint8_t *filter_slot(uint64_t h) {
    return &live_filter[(h >> 33) & ((1u << FILTER_BITS) - 1)];
}

static void filter_add(uint64_t h) {
    _Atomic uint8_t *f = filter_slot(h);
    uint8_t c = atomic_load_explicit(f, memory_order_relaxed);
    while (c != UINT8_MAX &&
           !atomic_compare_exchange_weak_explicit(f, &c, (uint8_t)(c + 1), memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

static void filter_remove(uint64_t h) {
    _Atomic uint8_t *f = filter_slot(h);
    uint8_t c = atomic_load_explicit(f, memory_order_relaxed);
    while (c != 0 && c != UINT8_MAX &&
           !atomic_compare_exchange_weak_explicit(f, &c, (uint8_t)(c - 1), memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

enum live_result { LIVE_FULL = 0, LIVE_ADDED, LIVE_REPLACED };

/* Records addr with meta.  An address already present (realloc in place) gets
 * the new meta, and the old one is stored in *replaced for the caller to
 * retire.  LIVE_FULL when both buckets are full. */
static enum live_result live_insert(uintptr_t addr, uint64_t meta, uint64_t *replaced) {
    uint64_t h = live_hash(addr);
    size_t b[2];
    live_buckets(h, &b[0], &b[1]);
    if (atomic_load_explicit(filter_slot(h), memory_order_relaxed) != 0) {
        for (int k = 0; k < 2; k++) {
            for (int s = 0; s < LIVE_BUCKET_SLOTS; s++) {
                if (atomic_load_explicit(&live_keys[b[k]][s], memory_order_relaxed) == addr) {
                    *replaced =
                        atomic_exchange_explicit(&live_meta[b[k]][s], meta, memory_order_relaxed);
                    return LIVE_REPLACED;
                }
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        for (int s = 0; s < LIVE_BUCKET_SLOTS; s++) {
            uintptr_t expected = 0;
            if (atomic_load_explicit(&live_keys[b[k]][s], memory_order_relaxed) == 0 &&
                atomic_compare_exchange_strong_explicit(&live_keys[b[k]][s], &expected, addr,
                                                        memory_order_relaxed,
                                                        memory_order_relaxed)) {
                atomic_store_explicit(&live_meta[b[k]][s], meta, memory_order_relaxed);
                filter_add(h);
                return LIVE_ADDED;
            }
        }
    }
    return LIVE_FULL;
}

/* The allocator's hook: a block of a flagged page or span is being freed.
 * Returns whether it was a sampled block (now retired). */
static bool sample_free(void *p) {
    uintptr_t addr = (uintptr_t)p;
    uint64_t h = live_hash(addr);
    if (atomic_load_explicit(filter_slot(h), memory_order_relaxed) == 0) return false;
    size_t b[2];
    live_buckets(h, &b[0], &b[1]);
    for (int k = 0; k < 2; k++) {
        for (int s = 0; s < LIVE_BUCKET_SLOTS; s++) {
            if (atomic_load_explicit(&live_keys[b[k]][s], memory_order_relaxed) != addr) continue;
            uint64_t meta = atomic_load_explicit(&live_meta[b[k]][s], memory_order_relaxed);
            atomic_store_explicit(&live_meta[b[k]][s], 0, memory_order_relaxed);
            atomic_store_explicit(&live_keys[b[k]][s], 0, memory_order_release);
            filter_remove(h);
            meta_retire(meta);
            return true;
        }
    }
    return false;
}

/* ---- recording ---------------------------------------------------------------- */

static bool in_self(uintptr_t pc) { return pc >= self_text_start && pc < self_text_end; }

/* True when libunwind may be used.  The first caller sets it up: per-thread
 * caches, so that libunwind takes no lock of its own to unwind, which a signal
 * handler or a fork could find held.  A thread that finds another one setting
 * it up does not wait: its sample is counted as unrecorded. */
static bool unwind_ready(void) {
    int state = atomic_load_explicit(&unwind_state, memory_order_acquire);
    if (__builtin_expect(state == UNWIND_READY, 1)) return true;
    if (state != UNWIND_UNSET ||
        !atomic_compare_exchange_strong_explicit(&unwind_state, &state, UNWIND_SETTING,
                                                 memory_order_acq_rel, memory_order_acquire))
        return false;
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    atomic_store_explicit(&unwind_state, UNWIND_READY, memory_order_release);
    return true;
}

static void sample_record(void *p, size_t size) {
    uintptr_t buf[MB_SAMPLE_MAX_FRAMES + SAMPLE_SKIP_MAX];
    int n = 0;
    bool unwound = false;
    /* Announce first, then look: a fork either waits for us or we see it. */
    atomic_fetch_add_explicit(&unwinders, 1, memory_order_seq_cst);
    if (!atomic_load_explicit(&forking, memory_order_seq_cst) && unwind_ready()) {
        n = unw_backtrace((void **)buf, (int)(sizeof buf / sizeof *buf));
        unwound = true;
    }
    atomic_fetch_sub_explicit(&unwinders, 1, memory_order_release);
    int skip = 0;
    while (skip < n && skip < SAMPLE_SKIP_MAX && in_self(buf[skip])) skip++;
    uint32_t depth = n > skip ? (uint32_t)(n - skip) : 0;
    if (depth > MB_SAMPLE_MAX_FRAMES) depth = MB_SAMPLE_MAX_FRAMES;
    uint32_t site = MB_SAMPLE_OVERFLOW_SITE;
    if (depth > 0) {
        site = site_find_or_add(buf + skip, depth);
    } else {
        if (unwound) atomic_fetch_add_explicit(&unwind_failures, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&samples_unrecorded, 1, memory_order_relaxed);
    }
    uint64_t stored_size = size < ((uint64_t)1 << (64 - META_SITE_BITS)) ? size : 0;
    uint64_t meta = stored_size << META_SITE_BITS | (site + 1);
    uint64_t replaced = 0;
    enum live_result result = live_insert((uintptr_t)p, meta, &replaced);
    if (result == LIVE_FULL) {
        atomic_fetch_add_explicit(&samples_dropped, 1, memory_order_relaxed);
        return;
    }
    if (result == LIVE_REPLACED && (replaced & META_SITE_MASK) == site + 1) {
        site_replace(site, replaced >> META_SITE_BITS, stored_size);
    } else {
        if (result == LIVE_REPLACED) meta_retire(replaced);
        site_account(site, stored_size, true);
    }
    /* A replaced sample's block is flagged already (pages count their samples). */
    if (result == LIVE_ADDED) alloc_backend.mark_sampled(p);
}

int64_t mb_sample_allocation(void **pp, size_t size) {
    if (!atomic_load_explicit(&sample_ready, memory_order_acquire)) return SAMPLE_PRE_INIT_INTERVAL;
    uint64_t rate = atomic_load_explicit(&sample_rate, memory_order_relaxed);
    if (rate == 0) return INT64_MAX;
    if (in_sample) return next_interval(rate); /* the caller's guard makes this unreachable */
    in_sample = true;
    if (!armed) {
        /* A thread's countdown starts at 0: its first allocation lands here
         * whatever its size.  Draw the first interval and sample only if the
         * allocation reaches it, as with any other interval. */
        armed = true;
        int64_t first = next_interval(rate);
        if ((uint64_t)first >= size) {
            in_sample = false;
            return first - (int64_t)size;
        }
    }
    int64_t next = next_interval(rate);
    void *p = alloc_backend.sample_prepare(*pp, size);
    if (p != NULL) {
        *pp = p;
        sample_record(p, size);
    }
    in_sample = false;
    return next;
}

/* ---- set-up, reading, fork ---------------------------------------------------- */

void mb_sample_init(uint64_t sample_bytes) {
    os_own_text(&self_text_start, &self_text_end);
    if (sample_bytes > SAMPLE_RATE_MAX) sample_bytes = SAMPLE_RATE_MAX;
    atomic_store_explicit(&sample_rate, sample_bytes, memory_order_relaxed);
    alloc_set_sample_hooks(mb_sample_allocation, sample_free);
    atomic_store_explicit(&sample_ready, true, memory_order_release);
}

uint64_t mb_sample_rate(void) { return atomic_load_explicit(&sample_rate, memory_order_relaxed); }

bool mb_sample_site(size_t i, struct mb_site_view *out) {
    if (i > MB_SAMPLE_OVERFLOW_SITE) return false;
    const struct site *s = &sites[i];
    if (i < MB_SAMPLE_OVERFLOW_SITE) {
        if (atomic_load_explicit(&s->hash, memory_order_acquire) == 0) return false;
        out->depth = s->depth;
    } else {
        out->depth = 0;
    }
    out->frames = s->frames;
    out->est_bytes = atomic_load_explicit(&s->est_bytes, memory_order_relaxed);
    out->est_objects_1024 = atomic_load_explicit(&s->est_objects_1024, memory_order_relaxed);
    out->live_samples = atomic_load_explicit(&s->live_samples, memory_order_relaxed);
    out->live_bytes = atomic_load_explicit(&s->live_bytes, memory_order_relaxed);
    out->total_samples = atomic_load_explicit(&s->total_samples, memory_order_relaxed);
    return true;
}

/* A site's estimate as a candidate for the top: 0 for no site, and for a
 * figure read mid-update that wrapped below zero. */
static uint64_t top_candidate_bytes(uint32_t i) {
    if (i >= MB_SAMPLE_OVERFLOW_SITE) return 0;
    uint64_t est = atomic_load_explicit(&sites[i].est_bytes, memory_order_relaxed);
    if (est > ((uint64_t)1 << 62) ||
        atomic_load_explicit(&sites[i].live_samples, memory_order_relaxed) == 0)
        return 0;
    return est;
}

uint32_t mb_sample_top_site(bool full, uint32_t current) {
    uint32_t best = MB_SAMPLE_NO_SITE;
    uint64_t best_bytes = 0;
    if (full) {
        uint32_t n = atomic_load_explicit(&site_list_count, memory_order_acquire), pos = 0;
        for (uint32_t k = 0; k < n; k++) {
            uint64_t est = atomic_load_explicit(&site_list_est[k], memory_order_relaxed);
            if (est > best_bytes && est <= ((uint64_t)1 << 62)) { /* not wrapped mid-update */
                pos = k;
                best_bytes = est;
            }
        }
        if (best_bytes == 0) return MB_SAMPLE_NO_SITE;
        best = atomic_load_explicit(&site_list[pos], memory_order_relaxed);
        atomic_store_explicit(&leader_hint, best, memory_order_relaxed);
        return best;
    }
    uint32_t hint = atomic_load_explicit(&leader_hint, memory_order_relaxed);
    uint64_t current_bytes = top_candidate_bytes(current), hint_bytes = top_candidate_bytes(hint);
    if (hint_bytes > current_bytes) return hint;
    return current_bytes > 0 ? current : MB_SAMPLE_NO_SITE;
}

void mb_sample_stats(struct mb_sample_stats *out) {
    out->rate_bytes = atomic_load_explicit(&sample_rate, memory_order_relaxed);
    out->samples = out->live_samples = 0;
    for (size_t i = 0; i <= MB_SAMPLE_OVERFLOW_SITE; i++) {
        const struct site *s = &sites[i];
        if (i < MB_SAMPLE_OVERFLOW_SITE &&
            atomic_load_explicit(&s->hash, memory_order_acquire) == 0)
            continue;
        out->samples += atomic_load_explicit(&s->total_samples, memory_order_relaxed);
        out->live_samples += atomic_load_explicit(&s->live_samples, memory_order_relaxed);
    }
    out->dropped = atomic_load_explicit(&samples_dropped, memory_order_relaxed);
    out->unrecorded = atomic_load_explicit(&samples_unrecorded, memory_order_relaxed);
    out->sites = atomic_load_explicit(&site_count, memory_order_relaxed);
    out->unwind_failures = atomic_load_explicit(&unwind_failures, memory_order_relaxed);
}

void mb_sample_atfork_quiesce(void) {
    atomic_store_explicit(&forking, true, memory_order_seq_cst);
    uint64_t start = os_now_ns();
    while (atomic_load_explicit(&unwinders, memory_order_acquire) != 0 &&
           os_now_ns() - start < FORK_QUIESCE_WAIT_NS)
        os_yield();
}

void mb_sample_atfork_prepare(void) { mb_lock(&sample_lock); }

void mb_sample_atfork_parent(void) {
    mb_unlock(&sample_lock);
    atomic_store_explicit(&forking, false, memory_order_release);
}

void mb_sample_atfork_child(void) {
    mb_lock_reset(&sample_lock);
    atomic_store_explicit(&unwinders, 0, memory_order_relaxed);
    /* unwind_state stays as it was: a fork that did not wait for a set-up in
     * progress leaves UNWIND_SETTING, and the child records its samples without
     * stacks rather than enter libunwind, whose lock that thread may hold. */
    atomic_store_explicit(&forking, false, memory_order_release);
    rng_state = 0; /* parent and child draw different intervals */
}
