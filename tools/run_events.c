/* The events file of `membudget run` (see run_events.h, docs/run-events.md).
 * Every string written is escaped by tx_json: the command's arguments, the
 * report's path and the names read from the command's live page (another
 * process's word, read through tools/livestats.h's checked reader). */
#include "tools/run_events.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/livestats.h"
#include "tools/textout.h"

bool run_events_open(struct run_events *ev, const char *path) {
    memset(ev, 0, sizeof *ev);
    if (path == NULL) return true;
    if (strcmp(path, "-") == 0) {
        ev->out = stderr;
        return true;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        cli_error("run", "--events '%s': %s", path, strerror(errno));
        return false;
    }
    ev->out = fdopen(fd, "a");
    if (ev->out == NULL) {
        cli_error("run", "--events '%s': %s", path, strerror(errno));
        close(fd);
        return false;
    }
    ev->own = true;
    return true;
}

void run_events_close(struct run_events *ev) {
    if (ev->out != NULL && ev->own) fclose(ev->out);
    ev->out = NULL;
}

static uint64_t now_unix_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* {"event":NAME,"time_unix_ns":T,"run":R,"pid":P — the rest follows. */
static void head(struct run_events *ev, const char *name) {
    fprintf(ev->out, "{\"event\":\"%s\",\"time_unix_ns\":%llu,\"run\":%u,\"pid\":%ld", name,
            (unsigned long long)now_unix_ns(), ev->run, (long)ev->pid);
}

static void member_str(FILE *out, const char *key, const char *value) {
    fprintf(out, ",\"%s\":", key);
    if (value == NULL)
        fputs("null", out);
    else
        tx_json(out, value);
}

static void tail(struct run_events *ev) {
    fputs("}\n", ev->out);
    fflush(ev->out);
}

void run_events_start(struct run_events *ev, unsigned run, pid_t pid, char *const *cmd,
                      const char *limit, const char *state) {
    ev->run = run;
    ev->pid = pid;
    ev->page_seen = false;
    snprintf(ev->policy, sizeof ev->policy, "unrestricted");
    snprintf(ev->state, sizeof ev->state, "%s", state);
    if (ev->out == NULL) return;
    head(ev, "start");
    fputs(",\"command\":[", ev->out);
    for (size_t i = 0; cmd[i] != NULL; i++) {
        if (i > 0) fputc(',', ev->out);
        tx_json(ev->out, cmd[i]);
    }
    fputc(']', ev->out);
    member_str(ev->out, "limit", limit);
    member_str(ev->out, "state", state);
    tail(ev);
}

static void change(struct run_events *ev, const char *name, char *last, size_t cap,
                   const char *now, const struct mb_statspage *page) {
    if (strcmp(last, now) == 0) return;
    head(ev, name);
    member_str(ev->out, "from", last);
    member_str(ev->out, "to", now);
    fprintf(ev->out, ",\"footprint_bytes\":%llu,\"limit_bytes\":%llu",
            (unsigned long long)page->footprint_bytes, (unsigned long long)page->limit_bytes);
    tail(ev);
    snprintf(last, cap, "%s", now);
}

void run_events_poll(struct run_events *ev) {
    if (ev->out == NULL || ev->pid <= 0) return;
    struct live_process lp;
    struct live_error e;
    if (live_read(ev->pid, &lp, &e) != LIVE_OK) return;
    /* live_check made both NUL-terminated within their fields. */
    change(ev, "policy", ev->policy, sizeof ev->policy, lp.page.policy_name, &lp.page);
    change(ev, "state", ev->state, sizeof ev->state, lp.page.state, &lp.page);
    ev->page_seen = true;
}

void run_events_death(struct run_events *ev, const struct run_end *end) {
    if (ev->out == NULL) return;
    char words[160];
    run_end_words(end, words, sizeof words);
    head(ev, "death");
    member_str(ev->out, "reason", run_end_reason(end));
    fprintf(ev->out, ",\"status\":%d", end->status);
    if (end->sig != 0) {
        char name[32];
        fprintf(ev->out, ",\"signal\":%d", end->sig);
        member_str(ev->out, "signal_name", run_signal_name(end->sig, name, sizeof name));
    } else {
        fputs(",\"signal\":null,\"signal_name\":null", ev->out);
    }
    if (end->kind == RUN_END_EXIT)
        fprintf(ev->out, ",\"exit_code\":%d", end->code);
    else
        fputs(",\"exit_code\":null", ev->out);
    bool budget = end->kind == RUN_END_ACTIVE_LIMIT || end->kind == RUN_END_INACTIVE_LIMIT;
    if (budget)
        fprintf(ev->out, ",\"footprint_bytes\":%llu,\"limit_bytes\":%llu",
                (unsigned long long)end->footprint_bytes, (unsigned long long)end->limit_bytes);
    member_str(ev->out, "report", budget ? end->report : NULL);
    member_str(ev->out, "message", words);
    tail(ev);
}

void run_events_not_started(struct run_events *ev, int status, const char *why) {
    if (ev->out == NULL) return;
    head(ev, "not-started");
    fprintf(ev->out, ",\"status\":%d", status);
    member_str(ev->out, "message", why);
    tail(ev);
}

void run_events_restart(struct run_events *ev, unsigned count, unsigned recent, double delay_s) {
    if (ev->out == NULL) return;
    head(ev, "restart");
    fprintf(ev->out, ",\"count\":%u,\"recent\":%u,\"delay_ms\":%llu", count, recent,
            (unsigned long long)(delay_s * 1000.0 + 0.5));
    tail(ev);
}

void run_events_stop(struct run_events *ev, const char *reason, unsigned count) {
    if (ev->out == NULL) return;
    head(ev, "stop-restarting");
    member_str(ev->out, "reason", reason);
    fprintf(ev->out, ",\"count\":%u", count);
    tail(ev);
}
