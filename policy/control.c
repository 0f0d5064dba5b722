/* Control of a running process from outside (see control.h).  Runs only on
 * the library's own thread, outside any allocation. */
#include "policy/control.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "alloc/fmt.h"
#include "alloc/os.h"
#include "membudget.h"
#include "policy/dump.h"
#include "policy/monitor.h"
#include "policy/pressure.h"
#include "policy/statspage.h"

/* What the process answers. */
struct answer {
    int32_t result; /* 0 or an errno value */
    uint64_t bytes;
    char text[MB_CONTROL_TEXT];
};

static void answer_text(struct answer *a, const char *s) {
    struct mb_buf b;
    mb_buf_init(&b, a->text, sizeof a->text);
    mb_buf_str(&b, s);
}

/* One line saying why a request is refused, naming the accepted form. */
static void refuse(struct answer *a, const char *what, uint64_t value, const char *accepted) {
    struct mb_buf b;
    mb_buf_init(&b, a->text, sizeof a->text);
    mb_buf_str(&b, what);
    mb_buf_str(&b, " ");
    mb_buf_u64(&b, value);
    mb_buf_str(&b, " is not valid (expected ");
    mb_buf_str(&b, accepted);
    mb_buf_char(&b, ')');
    a->result = EINVAL;
}

/* The new thresholds are in force: republish, so that `stat` shows them. */
static void publish(void) {
    mb_monitor_refresh();
    mb_statspage_publish();
}

static void act_state(uint64_t arg, struct answer *a) {
    if (arg != MB_STATE_ACTIVE && arg != MB_STATE_INACTIVE) {
        refuse(a, "state", arg, "0 for active or 1 for inactive");
        return;
    }
    mb_pressure_set_state_by((enum mb_state)arg, true);
    publish();
    a->bytes = mb_pressure_kill_bytes();
    answer_text(a, mb_pressure_limits()->kill_source);
}

static void act_pages(uint64_t arg, struct answer *a) {
    if (arg < 1 || arg > MB_CONTROL_PAGES_MAX) {
        refuse(a, "page count", arg, "a whole number from 1 to 1000000");
        return;
    }
    mb_pressure_set_pages_by((unsigned)arg, true);
    publish();
    a->bytes = mb_pressure_kill_bytes();
    answer_text(a, mb_pressure_limits()->kill_source);
}

static void act_release(uint64_t arg, struct answer *a) {
    if (arg < MEMBUDGET_LEVEL_CONSERVATIVE || arg > MEMBUDGET_LEVEL_INACTIVE_LIMIT) {
        refuse(a, "level", arg, "1 conservative, 2 strict, 3 critical or 4 inactive-limit");
        return;
    }
    a->bytes = mb_pressure_notify((int)arg);
    publish();
}

static void act_dump(struct answer *a) {
    int rc = mb_dump_request(a->text, sizeof a->text);
    if (rc < 0) a->result = -rc;
}

static void act(uint32_t op, uint64_t arg, struct answer *a) {
    switch (op) {
    case MB_CONTROL_STATE: act_state(arg, a); return;
    case MB_CONTROL_PAGES: act_pages(arg, a); return;
    case MB_CONTROL_RELEASE: act_release(arg, a); return;
    case MB_CONTROL_DUMP: act_dump(a); return;
    default: refuse(a, "command", op, "1 state, 2 pages, 3 release or 4 dump"); return;
    }
}

/* A request that is posted (even) and not yet answered. */
static bool pending(struct mb_statspage_control *c, uint32_t *r) {
    *r = atomic_load_explicit(&c->request, memory_order_acquire);
    return (*r & 1u) == 0 && *r != atomic_load_explicit(&c->done, memory_order_relaxed);
}

void mb_control_wait(uint64_t timeout_ns) {
    struct mb_statspage_control *c = mb_statspage_control_area();
    uint32_t r;
    if (c == NULL) {
        os_sleep_ns(timeout_ns);
        return;
    }
    if (pending(c, &r)) return;
    long rc = os_futex_wait_shared(&c->request, r, timeout_ns);
    if (rc == -EFAULT || rc == -ENOSYS) os_sleep_ns(timeout_ns); /* never spin */
}

void mb_control_serve(void) {
    struct mb_statspage_control *c = mb_statspage_control_area();
    uint32_t r;
    if (c == NULL || !pending(c, &r)) return;
    /* Copied once: the commander's fields are read here and nowhere else. */
    uint32_t op = __atomic_load_n(&c->op, __ATOMIC_RELAXED);
    uint64_t arg = __atomic_load_n(&c->arg, __ATOMIC_RELAXED);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&c->request, memory_order_relaxed) != r) return; /* rewritten meanwhile */
    static struct answer a; /* only this thread serves */
    memset(&a, 0, sizeof a);
    act(op, arg, &a);
    c->result = a.result;
    c->result_bytes = a.bytes;
    c->result_footprint = mb_monitor_footprint();
    memcpy(c->result_text, a.text, sizeof c->result_text);
    c->result_text[sizeof c->result_text - 1] = '\0';
    atomic_store_explicit(&c->done, r, memory_order_release);
    os_futex_wake_shared(&c->done, 1 << 30);
    /* A new state or page count over which the footprint already stands: the
     * policies start now, not at the next allocation (after the answer, as
     * the process may not survive it). */
    if (a.result == 0 && (op == MB_CONTROL_STATE || op == MB_CONTROL_PAGES)) {
        mb_pressure_tick(true);
        mb_statspage_publish();
    }
}
