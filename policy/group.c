/* Groups and bands (see group.h).  Runs at ticks and in the constructor: raw
 * system calls only, no allocation, no stdio, no lock; the shared file is
 * read and written with atomics, one field at a time. */
#include "policy/group.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "alloc/os.h"
#include "membudget.h"
#include "policy/config.h"
#include "policy/statspage.h"

#define RELAXED memory_order_relaxed

static struct mb_group_file *group; /* the mapped file, or NULL */
static struct mb_group_slot *mine;  /* this process's slot, or NULL */

/* mine, read once: mb_group_leave (the destructor) clears it while another
 * thread may be inside a tick; the mapping itself stays. */
static struct mb_group_slot *my_slot(void) { return __atomic_load_n(&mine, __ATOMIC_ACQUIRE); }
static uint32_t my_pid;
static uint64_t my_start;
static _Atomic unsigned my_band;
static bool band_explicit; /* MEMBUDGET_PRIORITY was set: the state does not move it */
static bool wanted; /* MEMBUDGET_GROUP was set and the file mapped */
static char name[MB_GROUP_NAME_MAX + 1];
/* This process's footprint at which the group reaches its next threshold,
 * others standing still (mb_group_next_footprint). */
static _Atomic uint64_t next_footprint = UINT64_MAX;

/* ---- the file ---------------------------------------------------------------- */

static void say(const struct mb_sink *sink, const char *what, const char *detail, long err) {
    char line[300];
    struct mb_buf b = mb_buf_on(line, sizeof line);
    mb_buf_str(&b, "membudget: MEMBUDGET_GROUP=");
    mb_buf_str(&b, name);
    mb_buf_str(&b, ": ");
    mb_buf_str(&b, what);
    if (detail != NULL) mb_buf_str(&b, detail);
    if (err != 0) {
        mb_buf_str(&b, " (errno ");
        mb_buf_u64(&b, (uint64_t)-err);
        mb_buf_char(&b, ')');
    }
    mb_buf_str(&b, "; this process runs outside the group");
    mb_sink_line(sink, b.data, b.len);
}

/* Opens the file in the per-user directory, or with in_place creates it
 * there (a filesystem that cannot make it unnamed: mb_group_file_create): a
 * regular file, ours, closed to others, of the group's size.  The fd, or
 * -errno with *why (-ENOENT: there is none and in_place is false). */
static long file_open(int dir, const char *file, bool in_place, bool *created, const char **why) {
    const int common = O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    *created = false;
    long fd = in_place ? os_openat(dir, file, common | O_CREAT | O_EXCL, 0600) : -EEXIST;
    if (fd >= 0) {
        *created = true;
        long rc = os_file_allocate((int)fd, MB_GROUP_FILE_BYTES);
        if (rc < 0) {
            os_close((int)fd);
            os_unlinkat(dir, file);
            *why = "cannot size the group file";
            return rc;
        }
        return fd;
    }
    if (fd != -EEXIST) {
        *why = "cannot create the group file";
        return fd;
    }
    fd = os_openat(dir, file, common, 0);
    if (fd == -ENOENT && !in_place) return fd;
    if (fd < 0) {
        *why = fd == -ELOOP ? "the group file is a link" : "cannot open the group file";
        return fd;
    }
    struct stat st;
    long rc = os_fstat((int)fd, &st);
    /* The creator sizes the file just after making it: wait that out. */
    for (int tries = 0; rc == 0 && S_ISREG(st.st_mode) && st.st_size == 0 && tries < 1000; tries++) {
        os_yield();
        rc = os_fstat((int)fd, &st);
    }
    *why = rc < 0                                 ? "cannot examine the group file"
           : !S_ISREG(st.st_mode)                 ? "the group file is not a regular file"
           : (long)st.st_uid != (long)os_geteuid() ? "the group file belongs to another user"
           : (st.st_mode & 077) != 0              ? "the group file is open to other users"
           : st.st_size != MB_GROUP_FILE_BYTES    ? "the group file has the wrong size"
                                                  : NULL;
    if (*why == NULL) return fd;
    os_close((int)fd);
    return rc < 0 ? rc : -EPERM;
}

/* Maps the file and checks its header (hostile); NULL with *why. */
static struct mb_group_file *file_map(long fd, bool created, uint64_t limit, const char **why) {
    long addr = os_mmap(NULL, MB_GROUP_FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
    if (os_failed(addr)) {
        *why = "cannot map the group file";
        return NULL;
    }
    struct mb_group_file *g = (struct mb_group_file *)addr;
    if (created)
        mb_group_file_init(g, name, limit, limit != 0 ? MB_GROUP_LIMIT_CREATOR : MB_GROUP_LIMIT_NONE,
                           (uint32_t)os_getpid());
    for (int tries = 0; atomic_load_explicit(&g->magic, memory_order_acquire) != MB_GROUP_MAGIC &&
                        tries < 1000;
         tries++)
        os_yield();
    if (atomic_load_explicit(&g->magic, memory_order_acquire) == MB_GROUP_MAGIC &&
        g->version == MB_GROUP_VERSION && g->slots == MB_GROUP_SLOTS &&
        g->size == sizeof *g)
        return g;
    *why = "the group file is not a membudget group of this version";
    os_munmap(g, MB_GROUP_FILE_BYTES);
    return NULL;
}

/* The group's file, opened, or made when there is none: the mapping, or
 * NULL with *why and *err. */
static struct mb_group_file *file_get(int dir, const char *file, uint64_t limit, const char **why,
                                      long *err) {
    bool created = false;
    long fd = file_open(dir, file, false, &created, why);
    if (fd == -ENOENT) {
        struct mb_group_file *made = mb_group_file_create(
            dir, file, name, limit, limit != 0 ? MB_GROUP_LIMIT_CREATOR : MB_GROUP_LIMIT_NONE, &fd);
        if (made != NULL) return made;
        *why = "cannot create the group file";
        /* Made by another process meanwhile, or to be made in place. */
        if (fd == -EEXIST || fd == -EOPNOTSUPP)
            fd = file_open(dir, file, fd == -EOPNOTSUPP, &created, why);
    }
    if (fd < 0) {
        *err = fd;
        return NULL;
    }
    struct mb_group_file *g = file_map(fd, created, limit, why);
    os_close((int)fd);
    *err = 0;
    return g;
}

/* ---- the slot ---------------------------------------------------------------- */

/* Fills a slot this process holds as MB_GROUP_CLAIMING | pid, then names it. */
static void slot_take(struct mb_group_slot *s, uint64_t footprint) {
    atomic_store_explicit(&s->start_ticks, my_start, RELAXED);
    atomic_store_explicit(&s->band, my_band, RELAXED);
    atomic_store_explicit(&s->footprint_bytes, footprint, RELAXED);
    atomic_store_explicit(&s->requested, 0, RELAXED);
    atomic_store_explicit(&s->acknowledged, 0, RELAXED);
    atomic_store_explicit(&s->released_bytes, 0, RELAXED);
    atomic_store_explicit(&s->flags, 0, RELAXED);
    atomic_store_explicit(&s->asked_seq, 0, RELAXED);
    atomic_store_explicit(&s->pid, my_pid, memory_order_release);
    mine = s;
}

/* Whether a slot holding pid (not 0) may be taken: its member is gone, or
 * the process that was taking it died midway, or the pid is forged. */
static bool slot_abandoned(const struct mb_group_slot *s, uint32_t pid) {
    if ((pid & MB_GROUP_CLAIMING) != 0) {
        uint32_t claimer = pid & ~MB_GROUP_CLAIMING;
        return claimer == 0 || claimer > MB_GROUP_PID_MAX ||
               os_process_state((pid_t)claimer, 0) == OS_PROCESS_GONE;
    }
    return pid > MB_GROUP_PID_MAX ||
           os_process_state((pid_t)pid, atomic_load_explicit(&s->start_ticks, RELAXED)) ==
               OS_PROCESS_GONE;
}

/* This process's slot: its own (the same process after exec: same pid and
 * start time), else a free one, else a dead member's.  False: the table is
 * full of live members. */
static bool slot_claim(uint64_t footprint) {
    struct mb_group_slot *own = NULL;
    for (uint32_t i = 0; i < MB_GROUP_SLOTS && own == NULL; i++) {
        struct mb_group_slot *s = &group->slot[i];
        if (atomic_load_explicit(&s->pid, memory_order_acquire) == my_pid &&
            atomic_load_explicit(&s->start_ticks, RELAXED) == my_start)
            own = s;
    }
    if (own != NULL) {
        uint32_t expected = my_pid;
        if (atomic_compare_exchange_strong(&own->pid, &expected, MB_GROUP_CLAIMING | my_pid)) {
            slot_take(own, footprint);
            return true;
        }
    }
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < MB_GROUP_SLOTS; i++) {
            struct mb_group_slot *s = &group->slot[i];
            uint32_t pid = atomic_load_explicit(&s->pid, memory_order_acquire);
            if (pass == 0 ? pid != 0 : !slot_abandoned(s, pid)) continue;
            if (atomic_compare_exchange_strong(&s->pid, &pid, MB_GROUP_CLAIMING | my_pid)) {
                slot_take(s, footprint);
                return true;
            }
        }
    return false;
}

static void join(const struct mb_sink *sink, uint64_t footprint) {
    my_pid = (uint32_t)os_getpid();
    my_start = os_start_time();
    if (slot_claim(footprint)) return;
    char count[24];
    struct mb_buf b = mb_buf_on(count, sizeof count);
    mb_buf_u64(&b, MB_GROUP_SLOTS);
    mb_buf_str(&b, " live members");
    say(sink, "the group is full: ", count, 0);
}

void mb_group_init(const struct mb_config *cfg, const struct mb_sink *sink) {
    if (cfg->group[0] == '\0' || !mb_group_name_valid(cfg->group)) return;
    memcpy(name, cfg->group, strlen(cfg->group) + 1);
    band_explicit = mb_config_is_set(cfg, MB_OPT_PRIORITY);
    my_band = band_explicit ? cfg->priority
              : cfg->state == MB_STATE_INACTIVE      ? MB_GROUP_BAND_INACTIVE
                                                     : MB_GROUP_BAND_ACTIVE;
    const char *why = NULL;
    long dir = mb_statspage_open_dir(&why);
    if (dir < 0) {
        char path[64];
        mb_statspage_path(path, sizeof path, os_statspage_root(), os_geteuid(), -1);
        say(sink, why != NULL ? why : "cannot open ", path, dir);
        return;
    }
    char file[sizeof MB_GROUP_FILE_PREFIX + MB_GROUP_NAME_MAX];
    long err = 0;
    struct mb_buf b = mb_buf_on(file, sizeof file);
    mb_buf_str(&b, MB_GROUP_FILE_PREFIX);
    mb_buf_str(&b, name);
    group = file_get((int)dir, file, cfg->group_limit_bytes, &why, &err);
    os_close((int)dir);
    if (group == NULL) {
        say(sink, why, NULL, err);
        return;
    }
    wanted = true;
    join(sink, 0);
}

bool mb_group_joined(void) { return my_slot() != NULL; }
const char *mb_group_name(void) { return wanted ? name : ""; }
unsigned mb_group_band(void) { return my_band; }

void mb_group_set_state(enum mb_state state) {
    if (band_explicit) return;
    my_band = state == MB_STATE_INACTIVE ? MB_GROUP_BAND_INACTIVE : MB_GROUP_BAND_ACTIVE;
    struct mb_group_slot *s = my_slot();
    if (s != NULL && my_pid == (uint32_t)os_getpid())
        atomic_store_explicit(&s->band, my_band, RELAXED);
}

uint64_t mb_group_kill_bytes(void) {
    if (group == NULL) return 0;
    uint64_t limit = atomic_load_explicit(&group->limit_bytes, RELAXED);
    return limit >= MB_MIB && limit <= MB_SIZE_SETTING_MAX ? limit : 0;
}

/* ---- ticks ------------------------------------------------------------------- */

/* Whether member a is asked before member b: lower band, then larger. */
static bool asked_before(const struct mb_group_member *a, const struct mb_group_member *b) {
    if (a->band != b->band) return a->band < b->band;
    if (a->footprint_bytes != b->footprint_bytes) return a->footprint_bytes > b->footprint_bytes;
    return a->slot < b->slot;
}

/* When this process first saw each slot's outstanding ask (by asked_seq):
 * ticks run one at a time, inside the pressure gate. */
static struct {
    uint32_t seq;
    uint64_t since_ns;
} ask_seen[MB_GROUP_SLOTS];

/* Whether member m, asked and not answered, has had MB_GROUP_ANSWER_NS. */
static bool ask_overdue(const struct mb_group_member *m, uint64_t now) {
    uint32_t seq = atomic_load_explicit(&group->slot[m->slot].asked_seq, RELAXED);
    if (ask_seen[m->slot].seq != seq || ask_seen[m->slot].since_ns == 0) {
        ask_seen[m->slot].seq = seq;
        ask_seen[m->slot].since_ns = now;
        return false;
    }
    return now - ask_seen[m->slot].since_ns >= MB_GROUP_ANSWER_NS;
}

/* Over Conservative or Strict: the first member in band order that has not
 * answered this level is asked (once); later ones wait for its answer, or
 * for MB_GROUP_ANSWER_NS when it does not answer (stopped, never ticks). */
static void ask_in_band_order(const struct mb_group_view *v, uint32_t level) {
    uint8_t order[MB_GROUP_SLOTS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < v->count; i++) { /* insertion sort: at most 64 */
        uint32_t j = n++;
        while (j > 0 && asked_before(&v->member[i], &v->member[order[j - 1]])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = (uint8_t)i;
    }
    uint64_t now = os_now_ns();
    for (uint32_t k = 0; k < n; k++) {
        const struct mb_group_member *m = &v->member[order[k]];
        if (m->acknowledged >= level) continue;
        struct mb_group_slot *s = &group->slot[m->slot];
        uint32_t req = atomic_load_explicit(&s->requested, RELAXED);
        if (req >= level && ask_overdue(m, now)) continue; /* asked, silent: the next */
        if (req < level && atomic_load_explicit(&s->pid, RELAXED) == m->pid &&
            atomic_compare_exchange_strong(&s->requested, &req, level)) {
            uint32_t seq = atomic_fetch_add_explicit(&group->asks_total, 1, RELAXED) + 1;
            atomic_store_explicit(&s->asked_seq, seq, RELAXED);
        }
        return; /* asked now or before: its answer comes first */
    }
}

/* The release level the group's footprint asks for, with hysteresis for
 * clearing: -1 under 90% of Conservative (clear), 0 between. */
static int group_level(const struct mb_group_view *v) {
    struct mb_group_thresholds t;
    mb_group_thresholds(v->limit_bytes, &t);
    if (v->limit_bytes == 0) return -1;
    if (v->sum_bytes >= t.strict_bytes) return MEMBUDGET_LEVEL_STRICT;
    if (v->sum_bytes >= t.conservative_bytes) return MEMBUDGET_LEVEL_CONSERVATIVE;
    return v->sum_bytes < t.conservative_bytes - t.conservative_bytes / 10 ? -1 : 0;
}

unsigned mb_group_asked(void) {
    struct mb_group_slot *s = my_slot();
    if (s == NULL || my_pid != (uint32_t)os_getpid()) return 0;
    uint32_t req = atomic_load_explicit(&s->requested, memory_order_acquire);
    uint32_t ack = atomic_load_explicit(&s->acknowledged, RELAXED);
    if (req != MEMBUDGET_LEVEL_CONSERVATIVE && req != MEMBUDGET_LEVEL_STRICT) return 0;
    return req > ack ? req : 0;
}

void mb_group_answered(unsigned level, uint64_t released, uint64_t footprint) {
    struct mb_group_slot *s = my_slot();
    if (s == NULL) return;
    atomic_store_explicit(&s->footprint_bytes, footprint, RELAXED);
    atomic_fetch_add_explicit(&s->released_bytes, released, RELAXED);
    atomic_store_explicit(&s->acknowledged, level, memory_order_release);
}

/* The group's next threshold above its sum, in this process's footprint; none
 * once the sum is at the limit (the ticks then do the work). */
static void set_next_footprint(const struct mb_group_view *v, uint64_t footprint) {
    struct mb_group_thresholds t;
    mb_group_thresholds(v->limit_bytes, &t);
    const uint64_t levels[3] = {t.conservative_bytes, t.strict_bytes, t.kill_bytes};
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < 3 && next == UINT64_MAX; i++)
        if (v->limit_bytes != 0 && levels[i] > v->sum_bytes)
            next = footprint + (levels[i] - v->sum_bytes);
    atomic_store_explicit(&next_footprint, next, RELAXED);
}

uint64_t mb_group_next_footprint(void) {
    return my_slot() != NULL ? atomic_load_explicit(&next_footprint, RELAXED) : UINT64_MAX;
}

static uint64_t victim_word(const struct mb_group_member *m) {
    return ((uint64_t)m->pid << 32) | (uint64_t)(m->slot + 1);
}

/* This process's victim word: (pid << 32) | (slot + 1). */
static uint64_t my_word(const struct mb_group_slot *s) {
    return ((uint64_t)my_pid << 32) | (uint64_t)((size_t)(s - group->slot) + 1);
}

/* The chosen member marks in its slot that it saw the choice. */
static void saw_chosen(struct mb_group_slot *s, bool chosen) {
    uint32_t flags = atomic_load_explicit(&s->flags, RELAXED);
    if (chosen != ((flags & MB_GROUP_SLOT_SAW_CHOSEN) != 0))
        atomic_store_explicit(&s->flags, flags ^ MB_GROUP_SLOT_SAW_CHOSEN, memory_order_release);
}

/* The slot of a chosen member that has not seen the choice for
 * MB_GROUP_ANSWER_NS of this process's ticks, else MB_GROUP_SLOTS. */
static uint32_t victim_stalled(const struct mb_group_view *v) {
    static uint64_t seen_word, since_ns;
    uint32_t slot = (uint32_t)v->victim_word - 1;
    if (v->victim_pid == 0 || slot >= MB_GROUP_SLOTS ||
        (atomic_load_explicit(&group->slot[slot].flags, memory_order_acquire) &
         MB_GROUP_SLOT_SAW_CHOSEN) != 0) {
        seen_word = 0;
        return MB_GROUP_SLOTS;
    }
    uint64_t now = os_now_ns();
    if (seen_word != v->victim_word) {
        seen_word = v->victim_word;
        since_ns = now;
        return MB_GROUP_SLOTS;
    }
    return now - since_ns >= MB_GROUP_ANSWER_NS ? slot : MB_GROUP_SLOTS;
}

bool mb_group_tick(uint64_t footprint) {
    if (wanted && my_slot() == NULL && my_pid != (uint32_t)os_getpid()) {
        join(NULL, footprint); /* a fork child's first tick */
        if (my_slot() == NULL) my_pid = (uint32_t)os_getpid(); /* said once */
    }
    struct mb_group_slot *s = my_slot();
    if (s == NULL) return false;
    atomic_store_explicit(&s->footprint_bytes, footprint, RELAXED);
    static struct mb_group_view view; /* inside the pressure gate: one at a time */
    mb_group_read(group, &view);
    set_next_footprint(&view, footprint);
    int level = group_level(&view);
    if (level < 0 && (atomic_load_explicit(&s->requested, RELAXED) != 0 ||
                      atomic_load_explicit(&s->acknowledged, RELAXED) != 0)) {
        atomic_store_explicit(&s->requested, 0, RELAXED); /* under again: re-armed */
        atomic_store_explicit(&s->acknowledged, 0, RELAXED);
    }
    if (level > 0) ask_in_band_order(&view, (uint32_t)level);
    /* Every change of the mark compares against the word the view was read
     * with: a member whose view is older than another's mark changes nothing
     * (two members noticing at once agree on one victim). */
    uint64_t word = view.victim_word;
    if (view.limit_bytes == 0 || view.sum_bytes < view.limit_bytes) {
        /* Under the limit: a mark left from before is cleared. */
        if (word != 0) atomic_compare_exchange_strong(&group->victim, &word, 0);
        saw_chosen(s, false);
        return false;
    }
    uint32_t skip = victim_stalled(&view);
    if (view.victim_pid == 0 || skip < MB_GROUP_SLOTS) {
        /* None chosen, the chosen one is gone, or it has not noticed in
         * MB_GROUP_ANSWER_NS (it never ticks): choose, and agree. */
        const struct mb_group_member *m = mb_group_choose(&view, skip);
        if (m == NULL) {
            saw_chosen(s, false);
            return false;
        }
        if (atomic_compare_exchange_strong(&group->victim, &word, victim_word(m)))
            atomic_fetch_add_explicit(&group->victims_total, 1, RELAXED);
    }
    bool chosen = atomic_load_explicit(&group->victim, memory_order_acquire) == my_word(s);
    saw_chosen(s, chosen);
    return chosen;
}

bool mb_group_still_over(uint64_t footprint, uint64_t released) {
    struct mb_group_slot *s = my_slot();
    if (s == NULL) return false;
    atomic_store_explicit(&s->footprint_bytes, footprint, RELAXED);
    atomic_fetch_add_explicit(&s->released_bytes, released, RELAXED);
    static struct mb_group_view view;
    mb_group_read(group, &view);
    uint64_t word = my_word(s);
    /* Over, and still the one marked: act.  A mark moved to another member
     * meanwhile is not this process's to act on. */
    if (view.limit_bytes != 0 && view.sum_bytes >= view.limit_bytes)
        return view.victim_word == word;
    atomic_compare_exchange_strong(&group->victim, &word, 0);
    return false;
}

bool mb_group_chosen(void) {
    struct mb_group_slot *s = my_slot();
    if (s == NULL || my_pid != (uint32_t)os_getpid()) return false;
    return atomic_load_explicit(&group->victim, memory_order_acquire) == my_word(s);
}

bool mb_group_snapshot(struct mb_group_view *out) {
    if (my_slot() == NULL) return false;
    mb_group_read(group, out);
    return true;
}

void mb_group_leave(void) {
    struct mb_group_slot *s = my_slot();
    if (s == NULL || my_pid != (uint32_t)os_getpid()) return;
    __atomic_store_n(&mine, NULL, __ATOMIC_RELEASE);
    atomic_store_explicit(&s->footprint_bytes, 0, RELAXED);
    uint32_t expected = my_pid;
    atomic_compare_exchange_strong(&s->pid, &expected, 0);
}

void mb_group_atfork_child(void) {
    atomic_store_explicit(&next_footprint, UINT64_MAX, RELAXED);
    __atomic_store_n(&mine, NULL, __ATOMIC_RELEASE); /* the parent's; my_pid still names the
                                                      * parent until the child joins */
}
