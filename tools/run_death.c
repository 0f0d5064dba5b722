/* Why the command of `membudget run` ended (see run_death.h).  A budget
 * death is told from any other abort by the report the library writes
 * before it stops the process (docs/dump.md): a report of the command's own
 * pid, with reason "kill", written since the command started.  The report is
 * the command's word, read as hostile input: a regular file of ours with one
 * link, opened O_NOFOLLOW|O_NONBLOCK, at most RUN_REPORT_MAX bytes, parsed by
 * jansson, and every field used checked for its type and range; its strings
 * are escaped for the terminal when printed. */
#include "tools/proc.h"
#include "tools/run_death.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/group.h"
#include "tools/cli.h"
#include "tools/textout.h"

/* ---- where reports go -------------------------------------------------------- */

static bool make_absolute(const char *path, char *out, size_t cap) {
    if (path[0] == '/') return (size_t)snprintf(out, cap, "%s", path) < cap;
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) return false;
    return (size_t)snprintf(out, cap, "%s/%s", cwd, path) < cap;
}

/* The pattern with %p replaced by pid and %% by %. */
static void expand_pattern(const char *pattern, pid_t pid, char *out, size_t cap) {
    size_t len = 0;
    for (const char *p = pattern; *p != '\0' && len + 24 < cap; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            len += (size_t)snprintf(out + len, cap - len, "%ld", (long)pid);
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            out[len++] = '%';
            p++;
        } else {
            out[len++] = *p;
        }
    }
    out[len] = '\0';
}

bool run_reports_per_pid(const struct report_place *place) {
    for (const char *p = place->pattern; *p != '\0'; p++) {
        if (p[0] != '%') continue;
        if (p[1] == 'p') return true;
        if (p[1] == '%') p++;
    }
    return false;
}

int run_reports_setup(const char *given, struct report_place *place) {
    place->private_dir[0] = '\0';
    const char *env = getenv("MEMBUDGET_REPORT");
    const char *pattern = given != NULL ? given : (env != NULL && env[0] != '\0' ? env : NULL);
    if (pattern == NULL) {
        const char *tmp = getenv("TMPDIR");
        if (tmp == NULL || tmp[0] == '\0') tmp = "/tmp";
        snprintf(place->private_dir, sizeof place->private_dir, "%s/membudget-run.XXXXXX", tmp);
        if (mkdtemp(place->private_dir) == NULL) {
            cli_error("run", "cannot create a directory for reports in %s: %s", tmp,
                      strerror(errno));
            return -1;
        }
        snprintf(place->pattern, sizeof place->pattern, "%s/membudget.%%p.json",
                 place->private_dir);
        return 0;
    }
    if (!make_absolute(pattern, place->pattern, sizeof place->pattern)) {
        cli_error("run", "report path '%s' is too long", pattern);
        return -1;
    }
    return 0;
}

void run_reports_finish(const struct report_place *place) {
    if (place->private_dir[0] == '\0') return;
    rmdir(place->private_dir); /* fails, as wanted, when a report is inside */
}

/* ---- reading a report ---------------------------------------------------------- */

/* The document at path: a regular file of ours with one link, of at most
 * RUN_REPORT_MAX bytes, modified at or after since_s; NULL otherwise. */
static json_t *report_load(const char *path, time_t since_s) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    json_t *doc = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        st.st_nlink == 1 && st.st_size > 0 && (uint64_t)st.st_size <= RUN_REPORT_MAX &&
        st.st_mtime >= since_s) {
        size_t size = (size_t)st.st_size, got = 0;
        char *buf = malloc(size);
        while (buf != NULL && got < size) {
            ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            got += (size_t)n;
        }
        if (buf != NULL && got > 0) doc = json_loadb(buf, got, 0, NULL);
        free(buf);
    }
    close(fd);
    return doc;
}

static bool member_u64(json_t *obj, const char *key, uint64_t *out) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static const char *member_str(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void copy_text(char *out, size_t cap, const char *s) {
    snprintf(out, cap, "%s", s != NULL ? s : "");
}

/* The report's group section (policy/group.h) names pid as the victim: the
 * group's footprint and limit are what stopped it. */
static void group_victim(json_t *doc, pid_t pid, struct run_end *end) {
    json_t *g = json_object_get(doc, "group");
    uint64_t victim = 0, sum = 0, limit = 0;
    end->group[0] = '\0';
    if (!json_is_object(g) || !member_u64(g, "victim_pid", &victim) || victim != (uint64_t)pid ||
        !member_u64(g, "footprint_bytes", &sum) || !member_u64(g, "limit_bytes", &limit))
        return;
    const char *name = member_str(g, "name");
    /* Printed as it is: only a name the library would accept. */
    copy_text(end->group, sizeof end->group, name != NULL && mb_group_name_valid(name) ? name : "?");
    end->footprint_bytes = sum;
    end->limit_bytes = limit;
}

/* Whether the report at path is the kill report of pid written since
 * started_ns; fills the budget fields of *end when it is. */
static bool kill_report(const char *path, pid_t pid, uint64_t started_ns, struct run_end *end) {
    json_t *doc = report_load(path, (time_t)(started_ns / 1000000000u));
    if (doc == NULL) return false;
    uint64_t version = 0, who = 0, when = 0, footprint = 0, limit = 0;
    json_t *lim = json_object_get(doc, "limit"), *fp = json_object_get(doc, "footprint");
    const char *reason = member_str(doc, "reason"), *state = member_str(lim, "state");
    bool ok = member_u64(doc, "membudget_dump", &version) && version >= 1 &&
              member_u64(doc, "pid", &who) && who == (uint64_t)pid &&
              member_u64(doc, "time_unix_ns", &when) && when >= started_ns && reason != NULL &&
              strcmp(reason, "kill") == 0 && json_is_object(lim) && json_is_object(fp) &&
              member_u64(lim, "kill_bytes", &limit) && member_u64(fp, "bytes", &footprint) &&
              state != NULL && (strcmp(state, "active") == 0 || strcmp(state, "inactive") == 0);
    if (ok) {
        end->kind = strcmp(state, "inactive") == 0 ? RUN_END_INACTIVE_LIMIT : RUN_END_ACTIVE_LIMIT;
        end->footprint_bytes = footprint;
        end->limit_bytes = limit;
        copy_text(end->comm, sizeof end->comm, member_str(doc, "comm"));
        copy_text(end->source, sizeof end->source, member_str(lim, "kill_source"));
        copy_text(end->report, sizeof end->report, path);
        group_victim(doc, pid, end);
    }
    json_decref(doc);
    return ok;
}

/* A name the library tries when the configured one is taken: the stem,
 * '.', eight of [0-9a-z], then the rest (".json") (policy/dump.c). */
static bool beside_name(const char *name, const char *base, size_t stem) {
    size_t blen = strlen(base);
    if (strlen(name) != blen + 9 || strncmp(name, base, stem) != 0 || name[stem] != '.' ||
        strcmp(name + stem + 9, base + stem) != 0)
        return false;
    for (size_t i = stem + 1; i < stem + 9; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'z')))
            return false;
    return true;
}

/* The kill report written for pid, at the configured name or beside it. */
static bool find_kill_report(const struct report_place *place, pid_t pid, uint64_t started_ns,
                             struct run_end *end) {
    char path[PATH_MAX + 64];
    expand_pattern(place->pattern, pid, path, sizeof path);
    if (kill_report(path, pid, started_ns, end)) return true;
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) return false;
    *slash = '\0';
    const char *base = slash + 1;
    size_t blen = strlen(base), stem = blen;
    if (blen >= 5 && strcmp(base + blen - 5, ".json") == 0) stem = blen - 5;
    DIR *d = opendir(dir[0] != '\0' ? dir : "/");
    if (d == NULL) return false;
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d)) != NULL;) {
        if (!beside_name(e->d_name, base, stem) ||
            (size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
            continue;
        found = kill_report(path, pid, started_ns, end);
    }
    closedir(d);
    return found;
}

/* ---- the ending ------------------------------------------------------------------ */

/* Signals whose default action dumps core: the program crashed. */
static bool core_signal(int sig) {
    static const int core[] = {SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS,
                               SIGFPE,  SIGSEGV, SIGSYS, SIGXCPU, SIGXFSZ};
    for (size_t i = 0; i < sizeof core / sizeof core[0]; i++)
        if (core[i] == sig) return true;
    return false;
}

void run_end_classify(int wait_status, pid_t pid, uint64_t started_ns,
                      const struct report_place *place, struct run_end *out) {
    memset(out, 0, sizeof *out);
    if (WIFSIGNALED(wait_status)) {
        out->kind = RUN_END_SIGNAL;
        out->sig = WTERMSIG(wait_status);
        out->core = core_signal(out->sig);
        out->status = 128 + out->sig;
    } else {
        out->kind = RUN_END_EXIT;
        out->code = WEXITSTATUS(wait_status);
        out->status = out->code;
    }
    if (out->status != 0 && find_kill_report(place, pid, started_ns, out))
        out->status = RUN_EXIT_BUDGET;
}

const char *run_signal_name(int sig, char *buf, size_t cap) {
    proc_signal_name(sig, buf, cap);
    return buf;
}

void run_end_words(const struct run_end *end, char *out, size_t cap) {
    char a[32], b[32], name[32];
    switch (end->kind) {
    case RUN_END_ACTIVE_LIMIT:
    case RUN_END_INACTIVE_LIMIT:
        if (end->group[0] != '\0') {
            snprintf(out, cap, "was chosen by its group's limit (group %.64s: %s of %s)",
                     end->group, mb_bytes_text(a, sizeof a, end->footprint_bytes),
                     mb_bytes_text(b, sizeof b, end->limit_bytes));
            break;
        }
        snprintf(out, cap, "exceeded its %s limit (%s of %s)",
                 end->kind == RUN_END_ACTIVE_LIMIT ? "active" : "inactive",
                 mb_bytes_text(a, sizeof a, end->footprint_bytes),
                 mb_bytes_text(b, sizeof b, end->limit_bytes));
        break;
    case RUN_END_SIGNAL:
        snprintf(out, cap, "%s signal %d (%s)", end->core ? "crashed with" : "was killed by",
                 end->sig, run_signal_name(end->sig, name, sizeof name));
        break;
    case RUN_END_EXIT:
        snprintf(out, cap, "exited %d", end->code);
        break;
    }
}

const char *run_end_reason(const struct run_end *end) {
    if ((end->kind == RUN_END_ACTIVE_LIMIT || end->kind == RUN_END_INACTIVE_LIMIT) &&
        end->group[0] != '\0')
        return "group-limit";
    switch (end->kind) {
    case RUN_END_ACTIVE_LIMIT:
        return "active-limit";
    case RUN_END_INACTIVE_LIMIT:
        return "inactive-limit";
    case RUN_END_SIGNAL:
        return "signal";
    case RUN_END_EXIT:
        break;
    }
    return "exit";
}

void run_print_end(const char *cmd, pid_t pid, const struct run_end *end) {
    char words[160];
    run_end_words(end, words, sizeof words);
    fflush(stdout);
    fputs("membudget run: ", stderr);
    tx_term(stderr, cmd);
    fprintf(stderr, " (pid %ld) %s", (long)pid, words);
    if (end->report[0] != '\0') {
        fputs("; report: ", stderr);
        tx_term(stderr, end->report);
    }
    fputc('\n', stderr);
    fflush(stderr);
}

/* ---- the summary after a budget death ------------------------------------------ */

/* Without the report tool: the death line rebuilt from the report. */
static void print_death_line(const struct run_end *end, pid_t pid, const char *looked) {
    char footprint[32], limit[32];
    fprintf(stderr, "membudget: pid %ld (", (long)pid);
    tx_term(stderr, end->comm);
    fprintf(stderr, ") exceeded its memory budget: footprint %s >= limit %s (",
            mb_bytes_text(footprint, sizeof footprint, end->footprint_bytes),
            mb_bytes_text(limit, sizeof limit, end->limit_bytes));
    tx_term(stderr, end->source);
    fputs("); report: ", stderr);
    tx_term(stderr, end->report);
    fputc('\n', stderr);
    fputs("membudget run: no summary: the report tool membudget-report is not installed "
          "(looked for ",
          stderr);
    tx_term(stderr, looked);
    fputs(")\n", stderr);
}

void run_print_summary(const struct run_end *end, pid_t pid) {
    char tool[PATH_MAX], looked[4 * PATH_MAX];
    fflush(stdout);
    if (!cli_find_report_tool(tool, sizeof tool, looked, sizeof looked)) {
        print_death_line(end, pid, looked);
        return;
    }
    fflush(stderr);
    pid_t child = fork();
    if (child == 0) {
        dup2(2, 1); /* the summary goes where the death line went */
        execl(tool, tool, end->report, (char *)NULL);
        _exit(127);
    }
    int status;
    while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (child < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fputs("membudget run: the report tool could not summarize ", stderr);
        tx_term(stderr, end->report);
        fputc('\n', stderr);
    }
}
