/* Limits and thresholds (DESIGN §4).  ramSize is bmalloc's availableMemory with
 * the own cgroup playing iOS's jetsamLimit(); the kill threshold is WebKit's
 * thresholdForMemoryKill (or MEMBUDGET_LIMIT); the policy thresholds are
 * thresholdForPolicy's fractions of the base threshold.  Runs inside the first
 * malloc: no allocation, no stdio.  What the OS says (RAM, the container's
 * limit) comes from the platform (os_limits_probe, alloc/os.h); the rest is
 * arithmetic (mb_thresholds_compute) and the text of where each number came
 * from. */
#include "policy/limits.h"

#include <errno.h>
#include <string.h>

#include "alloc/os.h"

/* ---- ramSize ------------------------------------------------------------- */

uint64_t mb_ram_round_up(uint64_t bytes) {
    uint64_t mask = MB_RAM_MULTIPLE - 1;
    if (bytes > UINT64_MAX - mask) return bytes & ~mask;
    return (bytes + mask) & ~mask;
}

uint64_t mb_ram_cap(uint64_t ram_bytes) {
    /* floor(9 * ram / 10) without overflow: ram = 10q + r. */
    return ram_bytes / 10 * 9 + ram_bytes % 10 * 9 / 10;
}

static void ram_term(struct mb_buf *terms, unsigned *count, const char *what, uint64_t bytes) {
    mb_buf_str(terms, (*count)++ == 0 ? "" : ", ");
    mb_buf_str(terms, what);
    mb_buf_bytes(terms, bytes);
}

static void compute_ram(struct mb_limits *lim, const struct mb_config *cfg) {
    char text[MB_SOURCE_MAX], env[MB_CONFIG_RAW_MAX + 32];
    struct mb_buf terms, src;
    mb_buf_init(&terms, text, sizeof text);
    uint64_t smallest = 0;
    unsigned count = 0;
    if (lim->phys_bytes != 0) {
        smallest = lim->phys_bytes;
        ram_term(&terms, &count, "physical RAM ", lim->phys_bytes);
    }
    if (lim->cgroup_bytes != 0) {
        if (smallest == 0 || lim->cgroup_bytes < smallest) smallest = lim->cgroup_bytes;
        ram_term(&terms, &count, "cgroup limit ", lim->cgroup_bytes);
    }
    if (cfg != NULL && cfg->ram_bytes != 0) {
        if (smallest == 0 || cfg->ram_bytes < smallest) smallest = cfg->ram_bytes;
        struct mb_buf e;
        mb_buf_init(&e, env, sizeof env);
        mb_buf_str(&e, "MEMBUDGET_RAM=");
        mb_buf_str(&e, cfg->raw[MB_OPT_RAM]);
        mb_buf_str(&e, " = ");
        ram_term(&terms, &count, env, cfg->ram_bytes);
    }
    lim->ram_from_cgroup = lim->cgroup_bytes != 0 && lim->cgroup_bytes == smallest;
    mb_buf_init(&src, lim->ram_source, sizeof lim->ram_source);
    if (smallest == 0) {
        lim->ram_bytes = MB_RAM_GUESS_BYTES;
        mb_buf_str(&src, "nothing readable: bmalloc's availableMemoryGuess");
        return;
    }
    lim->ram_bytes = mb_ram_round_up(smallest);
    if (count > 1) mb_buf_str(&src, "min(");
    mb_buf_str(&src, text);
    if (count > 1) mb_buf_char(&src, ')');
    mb_buf_str(&src, lim->ram_bytes == smallest ? ", a multiple of 128 MiB"
                                                : " rounded up to a multiple of 128 MiB");
}

void mb_limits_probe(struct mb_limits *lim, const char *root, const struct mb_config *cfg) {
    /* Failed opens are expected (no cgroup, no memory.max); a malloc that
     * succeeds must not leave errno changed. */
    int saved = errno;
    os_limits_probe(lim, root);
    lim->cgroup_change = 0;
    compute_ram(lim, cfg);
    errno = saved;
}

void mb_limits_set_cgroup(struct mb_limits *lim, const struct mb_config *cfg, uint64_t bytes,
                          uint64_t old, const char *file) {
    struct mb_buf src;
    mb_buf_init(&src, lim->cgroup_source, sizeof lim->cgroup_source);
    lim->cgroup_change = bytes != 0 && (old == 0 || bytes < old) ? -1 : 1;
    lim->cgroup_bytes = bytes;
    if (bytes == 0) {
        mb_buf_str(&src, "none: removed at run time from ");
        mb_buf_str(&src, file);
        mb_buf_str(&src, " (was ");
        mb_buf_u64(&src, old);
        mb_buf_char(&src, ')');
    } else {
        mb_buf_str(&src, file);
        mb_buf_str(&src, " = ");
        mb_buf_u64(&src, bytes);
        mb_buf_str(&src, lim->cgroup_change < 0 ? ", lowered at run time from "
                                                : ", raised at run time from ");
        if (old == 0)
            mb_buf_str(&src, "none");
        else
            mb_buf_u64(&src, old);
    }
    compute_ram(lim, cfg);
}

/* The kill threshold's source, when the cgroup's limit changed at run time and
 * decided it through ramSize: "cgroup limit lowered at run time to 256 MiB: "
 * before the rule's own text. */
static void note_cgroup_change(struct mb_limits *lim) {
    if (lim->cgroup_change == 0 || !lim->kill_from_ram || !lim->ram_from_cgroup) return;
    char rule[MB_SOURCE_MAX];
    memcpy(rule, lim->kill_source, sizeof rule);
    struct mb_buf b;
    mb_buf_init(&b, lim->kill_source, sizeof lim->kill_source);
    mb_buf_str(&b, lim->cgroup_change < 0 ? "cgroup limit lowered at run time to "
                                          : "cgroup limit raised at run time to ");
    mb_buf_bytes(&b, lim->cgroup_bytes);
    mb_buf_str(&b, ": ");
    mb_buf_str(&b, rule);
}

/* ---- the kill threshold ---------------------------------------------------- */

/* The model's value before the 0.9 x ramSize cap. */
static uint64_t model_uncapped(enum mb_model model, enum mb_state state, unsigned pages,
                               bool is64, uint64_t ram_bytes) {
    const uint64_t GB = MB_GIB; /* WebKit's GB is 2^30 */
    bool active = state == MB_STATE_ACTIVE;
    if (model == MB_MODEL_WEBKIT) {
        /* MemoryPressureHandler.cpp: thresholdForMemoryKillOfInactiveProcess and
         * thresholdForMemoryKillOfActiveProcess. */
        if (!active) return is64 ? 3 * GB + (uint64_t)pages * GB : (pages > 1 ? 3 * GB : 2 * GB);
        if (!is64) return 3 * GB;
        return (ram_bytes > 16 * GB ? 15 * GB : 7 * GB) + (uint64_t)pages * GB;
    }
    /* The older thresholdForMemoryKillWithProcessState, as the seeds quote it. */
    uint64_t threshold = 2 * GB;
    if (is64) {
        if (active) threshold = 4 * GB;
        if (pages > 1) threshold += (uint64_t)(pages - 1 < 4 ? pages - 1 : 4) * GB;
    } else if (pages > 1 || active) {
        threshold = 3 * GB;
    }
    return threshold;
}

uint64_t mb_model_kill_threshold(enum mb_model model, enum mb_state state, unsigned pages,
                                 unsigned word_bits, uint64_t ram_bytes) {
    if (pages == 0) pages = 1;
    uint64_t t = model_uncapped(model, state, pages, word_bits != 32, ram_bytes);
    uint64_t cap = mb_ram_cap(ram_bytes);
    return t < cap ? t : cap;
}

/* "webkit model: active, 1 page, 64-bit: min(16 GiB, 0.9 x ramSize 24 GiB)" */
static void model_source(char *out, size_t cap, enum mb_model model, enum mb_state state,
                         unsigned pages, unsigned word_bits, uint64_t ram_bytes) {
    struct mb_buf b;
    mb_buf_init(&b, out, cap);
    mb_buf_str(&b, mb_option_value_name(MB_OPT_MODEL, model));
    mb_buf_str(&b, " model: ");
    mb_buf_str(&b, mb_option_value_name(MB_OPT_STATE, state));
    mb_buf_str(&b, ", ");
    mb_buf_u64(&b, pages);
    mb_buf_str(&b, pages == 1 ? " page, " : " pages, ");
    mb_buf_str(&b, word_bits == 32 ? "32-bit: min(" : "64-bit: min(");
    mb_buf_bytes(&b, model_uncapped(model, state, pages, word_bits != 32, ram_bytes));
    mb_buf_str(&b, ", 0.9 x ramSize ");
    mb_buf_bytes(&b, ram_bytes);
    mb_buf_char(&b, ')');
}

void mb_limits_params_from_config(struct mb_limits_params *p, const struct mb_config *cfg) {
    p->state = cfg->state;
    p->pages = cfg->pages;
    p->word_bits = (unsigned)(sizeof(void *) * 8);
    p->api_limit_bytes = 0;
    p->set_by = 0;
}

/* ---- the policy thresholds ------------------------------------------------- */

static uint64_t amount_bytes(const struct mb_amount *a, uint64_t base) {
    return a->kind == MB_AMOUNT_BYTES ? a->bytes : mb_apply_ppb(base, a->ppb);
}

static void threshold_source(char *out, size_t cap, const struct mb_config *cfg,
                             enum mb_option_id id, const struct mb_amount *a, bool is_default) {
    struct mb_buf b;
    mb_buf_init(&b, out, cap);
    if (!is_default) {
        mb_buf_str(&b, mb_option_desc(id)->name);
        mb_buf_char(&b, '=');
        mb_buf_str(&b, cfg->raw[id]);
        if (a->kind == MB_AMOUNT_BYTES) return;
        mb_buf_str(&b, ": ");
    }
    mb_buf_ppb(&b, a->ppb);
    mb_buf_str(&b, " x base threshold");
    if (is_default) mb_buf_str(&b, " (default)");
}

static void report_order(const struct mb_sink *sink, const struct mb_config *cfg, uint64_t cons,
                         uint64_t strict, uint64_t kill) {
    char line[640];
    struct mb_buf b;
    mb_buf_init(&b, line, sizeof line);
    mb_buf_str(&b, "membudget: ");
    unsigned named = 0;
    for (int id = MB_OPT_CONSERVATIVE; id <= MB_OPT_STRICT; id++) {
        if (!mb_config_is_set(cfg, (enum mb_option_id)id)) continue;
        mb_buf_str(&b, named++ == 0 ? "" : " and ");
        mb_buf_str(&b, mb_option_desc((enum mb_option_id)id)->name);
        mb_buf_str(&b, "='");
        mb_buf_str(&b, cfg->raw[id]);
        mb_buf_char(&b, '\'');
    }
    mb_buf_str(&b, named > 1 ? " are" : " is");
    mb_buf_str(&b, " not valid (expected conservative < strict <= kill threshold, but ");
    mb_buf_u64(&b, cons);
    mb_buf_str(&b, " < ");
    mb_buf_u64(&b, strict);
    mb_buf_str(&b, " <= ");
    mb_buf_u64(&b, kill);
    mb_buf_str(&b, " bytes does not hold); using the defaults");
    mb_sink_line(sink, b.data, b.len);
}

/* The kill threshold and whether it came from ramSize. */
static void compute_kill(struct mb_thresholds *t, const struct mb_config *cfg,
                         const struct mb_limits_params *p) {
    uint64_t ram = t->ram_bytes;
    t->kill_from_ram = t->kill_raised = false;
    if (p->api_limit_bytes != 0) {
        t->kill_rule = MB_KILL_API;
        t->kill_bytes = p->api_limit_bytes;
    } else if (cfg->limit.kind == MB_AMOUNT_BYTES) {
        t->kill_rule = MB_KILL_SIZE;
        t->kill_bytes = cfg->limit.bytes;
    } else if (cfg->limit.kind == MB_AMOUNT_FRACTION) {
        t->kill_rule = MB_KILL_PERCENT;
        t->kill_bytes = mb_apply_ppb(ram, cfg->limit.ppb);
        t->kill_from_ram = true;
        /* Sizes have a floor of 1 MiB; a percentage of ramSize >= 128 MiB only
         * goes below it under 0.8%. */
        if (t->kill_bytes < MB_MIB) {
            t->kill_bytes = MB_MIB;
            t->kill_raised = true;
        }
    } else {
        t->kill_rule = MB_KILL_MODEL;
        t->kill_bytes = mb_model_kill_threshold(cfg->model, p->state, t->pages, t->word_bits, ram);
        t->kill_from_ram = t->kill_bytes == mb_ram_cap(ram);
    }
    t->explicit_limit = t->kill_rule != MB_KILL_MODEL;
    t->inactive_kill_bytes =
        t->explicit_limit
            ? t->kill_bytes
            : mb_model_kill_threshold(cfg->model, MB_STATE_INACTIVE, t->pages, t->word_bits, ram);
}

/* The conservative and strict thresholds: the overrides if they keep
 * conservative < strict <= kill, else the defaults. */
static void compute_policy(struct mb_thresholds *t, const struct mb_config *cfg) {
    const struct mb_amount def_cons = MB_DEFAULT_FRACTION(MB_CONSERVATIVE_DEFAULT);
    const struct mb_amount def_strict = MB_DEFAULT_FRACTION(MB_STRICT_DEFAULT);
    t->cons_set = mb_config_is_set(cfg, MB_OPT_CONSERVATIVE);
    t->strict_set = mb_config_is_set(cfg, MB_OPT_STRICT);
    uint64_t cons = amount_bytes(t->cons_set ? &cfg->conservative : &def_cons, t->base_bytes);
    uint64_t strict = amount_bytes(t->strict_set ? &cfg->strict : &def_strict, t->base_bytes);
    t->order_rejected = false;
    if (!(cons < strict && strict <= t->kill_bytes)) {
        t->order_rejected = t->cons_set || t->strict_set;
        t->rejected_cons = cons;
        t->rejected_strict = strict;
        t->cons_set = t->strict_set = false;
        cons = amount_bytes(&def_cons, t->base_bytes);
        strict = amount_bytes(&def_strict, t->base_bytes);
    }
    /* With the defaults the order holds by construction (base >= 1 MiB, and
     * 0.9 x base <= kill above); this only guards the invariant. */
    if (strict > t->kill_bytes) strict = t->kill_bytes;
    if (strict == 0) strict = 1; /* only for a membudget_set_limit() of bytes */
    if (cons >= strict) cons = strict - 1;
    t->conservative_bytes = cons;
    t->strict_bytes = strict;
    t->strict_sync_raised = strict > t->base_bytes;
    t->strict_sync_bytes = t->strict_sync_raised ? strict : t->base_bytes;
}

void mb_thresholds_compute(struct mb_thresholds *t, uint64_t ram_bytes, const struct mb_config *cfg,
                           const struct mb_limits_params *p) {
    memset(t, 0, sizeof *t);
    t->ram_bytes = ram_bytes != 0 ? ram_bytes : MB_RAM_GUESS_BYTES;
    t->pages = p->pages != 0 ? p->pages : 1;
    t->word_bits = p->word_bits == 32 ? 32 : 64;
    compute_kill(t, cfg, p);
    /* Base threshold: the explicit limit, else WebKit's min(3 GB, ramSize). */
    t->base_lowered = false;
    if (t->explicit_limit) {
        t->base_bytes = t->kill_bytes;
    } else {
        t->base_bytes =
            t->ram_bytes < MB_BASE_THRESHOLD_DEFAULT ? t->ram_bytes : MB_BASE_THRESHOLD_DEFAULT;
        /* The 2 GB inactive variants of the model kill below 0.9 x 3 GB: lower
         * the base to the kill threshold so the default Strict level is still
         * reached before the kill, keeping conservative < strict <= kill. */
        const struct mb_amount def_strict = MB_DEFAULT_FRACTION(MB_STRICT_DEFAULT);
        if (amount_bytes(&def_strict, t->base_bytes) > t->kill_bytes) {
            t->base_bytes = t->kill_bytes;
            t->base_lowered = true;
        }
    }
    compute_policy(t, cfg);
}

/* Appends who set the model's inputs from outside the process, if anyone:
 * " (state set by membudget state, pages by membudget pages)". */
static void set_by_source(char *out, size_t cap, unsigned set_by) {
    if (set_by == 0) return;
    struct mb_buf b = {.data = out, .cap = cap, .len = strnlen(out, cap - 1), .truncated = false};
    bool state = (set_by & MB_SET_BY_STATE_COMMAND) != 0;
    mb_buf_str(&b, state ? " (state set by membudget state" : " (pages set by membudget pages");
    if (state && (set_by & MB_SET_BY_PAGES_COMMAND) != 0) mb_buf_str(&b, ", pages by membudget pages");
    mb_buf_char(&b, ')');
}

/* Where the kill and inactive-kill thresholds came from. */
static void describe_kill(struct mb_limits *lim, const struct mb_config *cfg,
                          const struct mb_limits_params *p, const struct mb_thresholds *t) {
    struct mb_buf b;
    mb_buf_init(&b, lim->kill_source, sizeof lim->kill_source);
    switch (t->kill_rule) {
    case MB_KILL_API:
        mb_buf_str(&b, "membudget_set_limit(");
        mb_buf_u64(&b, p->api_limit_bytes);
        mb_buf_char(&b, ')');
        break;
    case MB_KILL_SIZE:
    case MB_KILL_PERCENT:
        mb_buf_str(&b, "MEMBUDGET_LIMIT=");
        mb_buf_str(&b, cfg->raw[MB_OPT_LIMIT]);
        if (t->kill_rule == MB_KILL_SIZE) break;
        mb_buf_str(&b, " of ramSize ");
        mb_buf_bytes(&b, t->ram_bytes);
        if (t->kill_raised) mb_buf_str(&b, ", raised to the 1 MiB minimum");
        break;
    case MB_KILL_MODEL:
        model_source(lim->kill_source, sizeof lim->kill_source, cfg->model, p->state, t->pages,
                     t->word_bits, t->ram_bytes);
        set_by_source(lim->kill_source, sizeof lim->kill_source, p->set_by);
        break;
    }
    mb_buf_init(&b, lim->inactive_kill_source, sizeof lim->inactive_kill_source);
    if (t->explicit_limit)
        mb_buf_str(&b, "the kill threshold (the limit is explicit)");
    else
        model_source(lim->inactive_kill_source, sizeof lim->inactive_kill_source, cfg->model,
                     MB_STATE_INACTIVE, t->pages, t->word_bits, t->ram_bytes);
}

/* Where the base and the policy thresholds came from. */
static void describe_policy(struct mb_limits *lim, const struct mb_config *cfg,
                            const struct mb_thresholds *t) {
    const struct mb_amount def_cons = MB_DEFAULT_FRACTION(MB_CONSERVATIVE_DEFAULT);
    const struct mb_amount def_strict = MB_DEFAULT_FRACTION(MB_STRICT_DEFAULT);
    struct mb_buf b;
    mb_buf_init(&b, lim->base_source, sizeof lim->base_source);
    if (t->explicit_limit) {
        mb_buf_str(&b, "the kill threshold (the limit is explicit)");
    } else {
        mb_buf_str(&b, "min(3 GiB, ramSize ");
        mb_buf_bytes(&b, t->ram_bytes);
        mb_buf_char(&b, ')');
        if (t->base_lowered)
            mb_buf_str(&b, ", lowered to the kill threshold so that strict <= kill");
    }
    threshold_source(lim->conservative_source, sizeof lim->conservative_source, cfg,
                     MB_OPT_CONSERVATIVE, t->cons_set ? &cfg->conservative : &def_cons,
                     !t->cons_set);
    threshold_source(lim->strict_source, sizeof lim->strict_source, cfg, MB_OPT_STRICT,
                     t->strict_set ? &cfg->strict : &def_strict, !t->strict_set);
    mb_buf_init(&b, lim->strict_sync_source, sizeof lim->strict_sync_source);
    mb_buf_str(&b, "1.0 x base threshold");
    if (t->strict_sync_raised) mb_buf_str(&b, ", raised to the strict threshold");
}

unsigned mb_limits_compute(struct mb_limits *lim, const struct mb_config *cfg,
                           const struct mb_limits_params *p, const struct mb_sink *sink) {
    struct mb_thresholds t;
    mb_thresholds_compute(&t, lim->ram_bytes, cfg, p);
    if (t.order_rejected) report_order(sink, cfg, t.rejected_cons, t.rejected_strict, t.kill_bytes);
    lim->model = cfg->model;
    lim->state = p->state;
    lim->pages = t.pages;
    lim->word_bits = t.word_bits;
    lim->kill_bytes = t.kill_bytes;
    lim->kill_from_ram = t.kill_from_ram;
    lim->inactive_kill_bytes = t.inactive_kill_bytes;
    lim->base_bytes = t.base_bytes;
    lim->conservative_bytes = t.conservative_bytes;
    lim->strict_bytes = t.strict_bytes;
    lim->strict_sync_bytes = t.strict_sync_bytes;
    describe_kill(lim, cfg, p, &t);
    describe_policy(lim, cfg, &t);
    note_cgroup_change(lim);
    return t.order_rejected ? 1 : 0;
}

unsigned mb_limits_init(struct mb_limits *lim, const char *root, const struct mb_config *cfg,
                        const struct mb_sink *sink) {
    struct mb_limits_params p;
    mb_limits_probe(lim, root, cfg);
    mb_limits_params_from_config(&p, cfg);
    return mb_limits_compute(lim, cfg, &p, sink);
}

/* ---- text for `membudget limits` ------------------------------------------ */

static void format_line(struct mb_buf *b, const char *name, uint64_t bytes, bool known,
                        const char *source) {
    mb_buf_str(b, name);
    mb_buf_str(b, ": ");
    if (known) {
        mb_buf_bytes(b, bytes);
        mb_buf_str(b, " (");
        mb_buf_u64(b, bytes);
        mb_buf_str(b, " bytes): ");
    }
    mb_buf_str(b, source);
    mb_buf_char(b, '\n');
}

size_t mb_limits_format(const struct mb_limits *lim, char *buf, size_t cap) {
    struct mb_buf b;
    mb_buf_init(&b, buf, cap);
    format_line(&b, "physical RAM", lim->phys_bytes, lim->phys_bytes != 0, lim->phys_source);
    format_line(&b, "cgroup limit", lim->cgroup_bytes, lim->cgroup_bytes != 0,
                lim->cgroup_source);
    format_line(&b, "ramSize", lim->ram_bytes, true, lim->ram_source);
    format_line(&b, "kill threshold", lim->kill_bytes, true, lim->kill_source);
    format_line(&b, "inactive kill threshold", lim->inactive_kill_bytes, true,
                lim->inactive_kill_source);
    format_line(&b, "base threshold", lim->base_bytes, true, lim->base_source);
    format_line(&b, "conservative", lim->conservative_bytes, true, lim->conservative_source);
    format_line(&b, "strict", lim->strict_bytes, true, lim->strict_source);
    format_line(&b, "strict synchronous", lim->strict_sync_bytes, true,
                lim->strict_sync_source);
    return b.len;
}
