/* Reading a group file (see group.h): the part the library and the tools
 * share.  Everything in the file is hostile: each field is copied once and
 * checked before use. */
#include "policy/group.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc/os.h"
#include "policy/config.h"

#define RELAXED memory_order_relaxed

void mb_group_thresholds(uint64_t limit, struct mb_group_thresholds *out) {
    const uint32_t conservative = (uint32_t)(MB_CONSERVATIVE_DEFAULT * 1e9 + 0.5);
    const uint32_t strict = (uint32_t)(MB_STRICT_DEFAULT * 1e9 + 0.5);
    out->conservative_bytes = mb_apply_ppb(limit, conservative);
    out->strict_bytes = mb_apply_ppb(limit, strict);
    out->kill_bytes = limit;
}

/* ---- reading the table (hostile) -------------------------------------------- */

static bool slot_read(const struct mb_group_slot *s, uint32_t index, struct mb_group_member *m) {
    uint32_t pid = atomic_load_explicit(&s->pid, memory_order_acquire);
    if (pid == 0 || pid > MB_GROUP_PID_MAX) return false; /* free, being taken, or forged */
    m->pid = pid;
    m->slot = index;
    m->band = atomic_load_explicit(&s->band, RELAXED);
    m->start_ticks = atomic_load_explicit(&s->start_ticks, RELAXED);
    m->footprint_bytes = atomic_load_explicit(&s->footprint_bytes, RELAXED);
    m->released_bytes = atomic_load_explicit(&s->released_bytes, RELAXED);
    m->requested = atomic_load_explicit(&s->requested, RELAXED);
    m->acknowledged = atomic_load_explicit(&s->acknowledged, RELAXED);
    if (m->band >= MB_GROUP_BANDS || m->footprint_bytes > MB_SIZE_SETTING_MAX) return false;
    if (m->released_bytes > MB_SIZE_SETTING_MAX) m->released_bytes = 0;
    /* Liveness by pid and start time: a SIGKILL or a crash leaves the slot
     * behind, and a later process may have the pid.  A member that cannot be
     * looked at now (this process is out of file descriptors) still counts. */
    return os_process_state((pid_t)pid, m->start_ticks) != OS_PROCESS_GONE;
}

void mb_group_read(const struct mb_group_file *g, struct mb_group_view *out) {
    out->count = 0;
    out->sum_bytes = 0;
    uint64_t limit = atomic_load_explicit(&g->limit_bytes, RELAXED);
    out->limit_bytes = limit >= MB_MIB && limit <= MB_SIZE_SETTING_MAX ? limit : 0;
    for (uint32_t i = 0; i < MB_GROUP_SLOTS; i++) {
        struct mb_group_member *m = &out->member[out->count];
        if (!slot_read(&g->slot[i], i, m)) continue;
        out->sum_bytes += m->footprint_bytes; /* each <= 2^56: no overflow in 64 slots */
        out->count++;
    }
    uint64_t victim = atomic_load_explicit(&g->victim, memory_order_acquire);
    out->victim_pid = 0;
    out->victim_word = victim;
    for (uint32_t i = 0; i < out->count; i++)
        if (victim != 0 && out->member[i].pid == (uint32_t)(victim >> 32) &&
            out->member[i].slot + 1 == (uint32_t)victim)
            out->victim_pid = out->member[i].pid;
}

const struct mb_group_member *mb_group_choose(const struct mb_group_view *v, uint32_t skip_slot) {
    const struct mb_group_member *best = NULL;
    for (uint32_t i = 0; i < v->count; i++) {
        const struct mb_group_member *m = &v->member[i];
        if (m->slot == skip_slot) continue;
        if (best == NULL || m->band < best->band) {
            best = m;
            continue;
        }
        if (m->band > best->band) continue;
        if (m->footprint_bytes != best->footprint_bytes) {
            if (m->footprint_bytes > best->footprint_bytes) best = m;
            continue;
        }
        if (m->start_ticks > best->start_ticks ||
            (m->start_ticks == best->start_ticks && m->pid > best->pid))
            best = m;
    }
    return best;
}


void mb_group_file_init(struct mb_group_file *g, const char *name, uint64_t limit,
                        enum mb_group_limit_source source, uint32_t creator_pid) {
    g->version = MB_GROUP_VERSION;
    g->size = (uint32_t)sizeof *g;
    g->slots = MB_GROUP_SLOTS;
    atomic_store_explicit(&g->limit_bytes, limit, RELAXED);
    atomic_store_explicit(&g->limit_source, (uint32_t)source, RELAXED);
    g->created_unix_ns = os_realtime_ns();
    g->creator_pid = creator_pid;
    size_t n = strlen(name);
    if (n > MB_GROUP_NAME_MAX) n = MB_GROUP_NAME_MAX;
    memcpy(g->name, name, n);
    g->name[n] = '\0';
    atomic_store_explicit(&g->magic, MB_GROUP_MAGIC, memory_order_release);
}

struct mb_group_file *mb_group_file_create(int dir, const char *file, const char *name,
                                           uint64_t limit, enum mb_group_limit_source source,
                                           long *err) {
    long fd = os_file_create_unnamed(dir, file, MB_GROUP_FILE_BYTES);
    if (fd < 0) {
        *err = fd;
        return NULL;
    }
    long addr = os_mmap(NULL, MB_GROUP_FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
    if (os_failed(addr)) {
        os_close((int)fd);
        *err = addr;
        return NULL;
    }
    struct mb_group_file *g = (struct mb_group_file *)addr;
    mb_group_file_init(g, name, limit, source, (uint32_t)os_getpid());
    long rc = os_file_publish((int)fd, dir, file);
    os_close((int)fd);
    if (rc == 0) return g;
    os_munmap(g, MB_GROUP_FILE_BYTES);
    *err = rc;
    return NULL;
}
