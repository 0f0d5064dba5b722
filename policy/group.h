/* Groups and bands (DESIGN §11, issue 17): one budget for a set of processes.
 *
 * A group is a file <root>/membudget-<uid>/group.<NAME> in the per-user
 * directory of the live pages (policy/statspage.h, made and checked by
 * mb_statspage_open_dir): two users' groups of the same name are two files in
 * two directories, never mixed.  The file is one page, mapped shared by every
 * member: a header (the limit, the chosen victim) and a fixed table of
 * MB_GROUP_SLOTS slots.  A process claims a free or dead slot with a
 * compare-and-swap on its pid and then writes only its own slot; the group's
 * footprint is the sum of the live slots, read at the process's ticks.  A slot
 * whose pid is gone, a zombie, or a later process of the same pid (its start
 * time differs) no longer counts, whoever reads it, and is taken by the next
 * process that joins.  The file outlives its creator.
 *
 * Everything in the file was written by another process and is hostile: a pid,
 * a band, a footprint or a limit out of range makes that slot (or the limit)
 * count for nothing, never a crash.
 *
 * Over the group's Conservative or Strict threshold (0.8 and 0.9 of its
 * limit), the member that notices asks one member at a time for a release at
 * that level, in band order and largest first within a band, by raising the
 * `requested` level in that member's slot; the next member is asked only once
 * the last one has answered (its library thread or its next tick runs its
 * callbacks and releases, then writes `acknowledged`) and the group is still
 * over, or has been silent for MB_GROUP_ANSWER_NS.  Under 90% of Conservative, members clear their own requests.
 *
 * At the kill threshold (the group limit) exactly one member is chosen: the
 * lowest band, then the largest footprint, then the newest.  The choice is
 * written into the header with a compare-and-swap, so that two members that
 * notice at once agree; the victim shrinks (critical release) or acts per
 * MEMBUDGET_ACTION, and its report has a `group` section.  A victim that has
 * not marked its slot MB_GROUP_SLOT_SAW_CHOSEN within MB_GROUP_ANSWER_NS (it
 * never ticks) is passed over for the next choice.  This header is also
 * the format the tools read: fields are only ever appended. */
#ifndef MEMBUDGET_POLICY_GROUP_H
#define MEMBUDGET_POLICY_GROUP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"


#define MB_GROUP_FILE_PREFIX "group."
#define MB_GROUP_NAME_MAX 64
#define MB_GROUP_SLOTS 64
#define MB_GROUP_BANDS 10 /* MEMBUDGET_PRIORITY 0 (least important) .. 9 */
#define MB_GROUP_BAND_INACTIVE 2 /* the default band of MEMBUDGET_STATE=inactive */
#define MB_GROUP_BAND_ACTIVE 8   /* and of active */
#define MB_GROUP_MAGIC 0x3172676du /* "mgr1" in memory on little-endian */
#define MB_GROUP_VERSION 1u
#define MB_GROUP_FILE_BYTES 4096u
#define MB_GROUP_PID_MAX 4194304u /* Linux's PID_MAX_LIMIT: a larger pid is forged */
/* A slot's pid while process P fills it in is MB_GROUP_CLAIMING | P: it
 * counts for nothing, and once P is gone (killed midway) the slot is free. */
#define MB_GROUP_CLAIMING 0x80000000u
/* How long a member may take to answer an ask, or to notice it was chosen,
 * before the others go past it: a member that never ticks (stopped, or idle
 * with MEMBUDGET_CONTROL=off) must not stall the group.  A member with its
 * library thread answers within the page period (1 s). */
#define MB_GROUP_ANSWER_NS 3000000000ull
/* Slot flags: the member saw itself chosen as the victim (cleared when it is
 * no longer the one). */
#define MB_GROUP_SLOT_SAW_CHOSEN 1u

struct mb_group_slot {
    _Atomic uint32_t pid;   /* 0: free; MB_GROUP_CLAIMING | pid: being taken */
    _Atomic uint32_t band;  /* 0 .. MB_GROUP_BANDS-1 */
    _Atomic uint64_t start_ticks;     /* os_start_time of the member */
    _Atomic uint64_t footprint_bytes; /* written at the member's ticks */
    _Atomic uint32_t requested;       /* enum membudget_level asked of it, 0: none */
    _Atomic uint32_t acknowledged;    /* the last level it served */
    _Atomic uint64_t released_bytes;  /* what its releases gave back, in total */
    _Atomic uint32_t flags;
    _Atomic uint32_t asked_seq;       /* the header's asks_total when last asked */
};

enum mb_group_limit_source {
    MB_GROUP_LIMIT_NONE = 0,
    MB_GROUP_LIMIT_CREATOR, /* MEMBUDGET_GROUP_LIMIT of the process that made the file */
    MB_GROUP_LIMIT_COMMAND  /* `membudget group NAME --limit` */
};

struct mb_group_file {
    _Atomic uint32_t magic; /* written last by the creator */
    uint32_t version, size, slots;
    _Atomic uint64_t limit_bytes;  /* 0: none yet */
    uint64_t created_unix_ns;
    uint32_t creator_pid;
    _Atomic uint32_t limit_source; /* enum mb_group_limit_source */
    /* The chosen victim: (pid << 32) | (slot + 1); 0: none. */
    _Atomic uint64_t victim;
    _Atomic uint64_t victims_total; /* how many were ever chosen */
    char name[MB_GROUP_NAME_MAX + 4];
    _Atomic uint32_t asks_total;    /* release requests ever made (band order) */
    struct mb_group_slot slot[MB_GROUP_SLOTS];
};
_Static_assert(sizeof(struct mb_group_file) <= MB_GROUP_FILE_BYTES, "the group file is one page");

/* 1 to MB_GROUP_NAME_MAX characters of [A-Za-z0-9._-], not "." or "..". */
static inline bool mb_group_name_valid(const char *name) {
    size_t n = 0;
    for (; name[n] != '\0'; n++) {
        char c = name[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n >= MB_GROUP_NAME_MAX) return false;
    }
    if (n == 0) return false;
    return !(name[0] == '.' && (n == 1 || (n == 2 && name[1] == '.')));
}

/* The group's thresholds, from its limit with a process's fractions. */
struct mb_group_thresholds {
    uint64_t conservative_bytes, strict_bytes, kill_bytes; /* all 0 without a limit */
};
void mb_group_thresholds(uint64_t limit, struct mb_group_thresholds *out);

/* Fills a file just created (size MB_GROUP_FILE_BYTES, zeroed, no one else
 * writing yet), magic last. */
void mb_group_file_init(struct mb_group_file *g, const char *name, uint64_t limit,
                        enum mb_group_limit_source source, uint32_t creator_pid);
/* Makes the group file `file` in directory dir, filled (mb_group_file_init)
 * before it has its name, so that no process ever opens one half-made, and a
 * creator killed midway leaves no file that refuses every later member.  The
 * shared mapping, or NULL with *err: -EEXIST when another process made it
 * first (open that one), -EOPNOTSUPP when the filesystem cannot make a file
 * without a name (create it in place). */
struct mb_group_file *mb_group_file_create(int dir, const char *file, const char *name,
                                           uint64_t limit, enum mb_group_limit_source source,
                                           long *err);

/* One member as a reader sees it (copied, checked). */
struct mb_group_member {
    uint32_t pid, band, slot;
    uint64_t start_ticks, footprint_bytes, released_bytes;
    uint32_t requested, acknowledged;
};
struct mb_group_view {
    uint64_t limit_bytes, sum_bytes;
    uint32_t count;       /* live members */
    uint32_t victim_pid;  /* 0: none chosen */
    uint64_t victim_word; /* the header's victim word this view was read against */
    struct mb_group_member member[MB_GROUP_SLOTS];
};
/* Copies and checks the live members of a mapped group file (the library's or
 * a tool's): out-of-range slots and dead members are left out. */
void mb_group_read(const struct mb_group_file *g, struct mb_group_view *out);
/* The member of v a kill threshold takes: lowest band, then largest footprint,
 * then newest (latest start, then highest pid), passing over the member in
 * slot skip_slot (MB_GROUP_SLOTS: none).  NULL when v has no other. */
const struct mb_group_member *mb_group_choose(const struct mb_group_view *v, uint32_t skip_slot);

/* From the constructor, after the pressure code: joins MEMBUDGET_GROUP when
 * set (one line on the sink when it cannot: a bad directory, a forged file, a
 * full table), the process running on outside the group. */
void mb_group_init(const struct mb_config *cfg, const struct mb_sink *sink);
bool mb_group_joined(void);
/* The name joined, or "". */
const char *mb_group_name(void);
unsigned mb_group_band(void);
/* The state changed (membudget_set_state, `membudget state`): without
 * MEMBUDGET_PRIORITY the band follows it, as at start-up. */
void mb_group_set_state(enum mb_state state);

/* At a tick: publishes this member's footprint and reads the group.  Returns
 * true when this process is the group's victim (chosen now or before). */
bool mb_group_tick(uint64_t footprint);
/* A release the group asked of this process (enum membudget_level,
 * conservative or strict) that it has not answered yet; 0: none. */
unsigned mb_group_asked(void);
/* After serving it: what the release gave back, and the footprint after. */
void mb_group_answered(unsigned level, uint64_t released, uint64_t footprint);
/* The victim after its critical release: publishes the new footprint and
 * says whether the group is still at or over its limit.  When not, the
 * victim mark is cleared. */
bool mb_group_still_over(uint64_t footprint, uint64_t released);
/* The group as this member sees it now, for the report. */
bool mb_group_snapshot(struct mb_group_view *out);
/* This process's footprint at which, the other members standing still, the
 * group reaches its next threshold (Conservative, Strict, the limit), as of
 * the last tick; UINT64_MAX when none.  The pressure code makes it a charge
 * threshold, so that the member that grows notices at once. */
uint64_t mb_group_next_footprint(void);
/* Whether the group's mark names this process as its victim now. */
bool mb_group_chosen(void);
/* The group's kill threshold (its limit), 0 when none. */
uint64_t mb_group_kill_bytes(void);

/* Leaves the slot (at exit). */
void mb_group_leave(void);
/* In the fork child: the parent's slot is the parent's; the child takes its
 * own at its first tick. */
void mb_group_atfork_child(void);

#endif
