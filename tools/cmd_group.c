/* `membudget group NAME [--limit SIZE]`, `membudget top --group NAME` and
 * `membudget limits --group NAME` (issue 17, policy/group.h): a group's
 * members, bands, footprints, its total and thresholds, and how they were
 * derived; --limit sets or changes the limit (creating the group when it does
 * not exist yet).
 *
 * The group file is another process's: it is opened in this user's own
 * directory without following a link or blocking, owner-, mode- and
 * size-checked, mapped, and every field is checked (policy/group_view.c)
 * before it is shown; names are escaped for the terminal. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "policy/config.h"
#include "policy/group.h"
#include "policy/statspage.h"
#include "tools/cli.h"
#include "tools/textout.h"

static const char group_usage[] =
    "usage: membudget group NAME [--limit SIZE] [--json]\n"
    "       membudget top --group NAME [--once]\n"
    "       membudget limits --group NAME\n"
    "\n"
    "Shows the group NAME of this user (MEMBUDGET_GROUP): its members with their\n"
    "bands and footprints, the total, and the thresholds (Conservative 0.8 and\n"
    "Strict 0.9 of the limit; the limit kills one member: the lowest band, then\n"
    "the largest).  --limit sets or changes the limit, a size from 1M such as 2G,\n"
    "creating the group when it does not exist; members see it at their next\n"
    "tick.  top refreshes every second until interrupted (--once: one screen);\n"
    "limits says how the thresholds were derived.\n"
    "\n"
    "exit status: 0; 1 no such group, or its file is not a group of this user's;\n"
    "2 bad arguments.\n";

/* s as the terminal may show it (tools/textout.h), in a ring of buffers. */
static const char *T(const char *s) {
    static char ring[4][1024];
    static unsigned next;
    char *b = ring[next++ % 4];
    tx_term_buf(b, sizeof ring[0], s, SIZE_MAX);
    return b;
}

/* <root>/membudget-<euid>/group.NAME */
static void group_file_path(char *out, size_t cap, const char *name) {
    char dir[256];
    mb_statspage_path(dir, sizeof dir, MB_STATSPAGE_ROOT, geteuid(), -1);
    snprintf(out, cap, "%s/" MB_GROUP_FILE_PREFIX "%s", dir, name);
}

/* The per-user directory, made as the library makes it (0700) when missing,
 * opened without following a link and used only when it is a directory of
 * this user's that no one else may write (as the library checks it): another
 * user cannot have the command create or read a group file where they chose.
 * The fd, or -1 with one line said. */
static int open_dir(const char *sub, const char *name, bool create) {
    char dir[256];
    mb_statspage_path(dir, sizeof dir, MB_STATSPAGE_ROOT, geteuid(), -1);
    if (create) mkdir(dir, 0700);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    const char *why = fd < 0                      ? (errno == ENOENT ? "no such group" : strerror(errno))
                      : fstat(fd, &st) != 0       ? "cannot examine it"
                      : !S_ISDIR(st.st_mode)      ? "not a directory"
                      : st.st_uid != geteuid()    ? "owned by another user"
                      : (st.st_mode & 077) != 0   ? "open to other users"
                                                  : NULL;
    if (why == NULL) return fd;
    cli_error(sub, "group %s: %s: %s", T(name), T(dir), why);
    if (fd >= 0) close(fd);
    return -1;
}

/* Maps the group file, checked; NULL with one line said. */
static struct mb_group_file *group_map(const char *sub, const char *name, bool create,
                                       uint64_t limit) {
    char path[512], file[128];
    group_file_path(path, sizeof path, name);
    snprintf(file, sizeof file, MB_GROUP_FILE_PREFIX "%s", name);
    int dir = open_dir(sub, name, create);
    if (dir < 0) return NULL;
    const int flags = O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    bool created = false;
    int fd = openat(dir, file, flags);
    if (fd < 0 && errno == ENOENT && create) {
        /* Made whole before it has its name (policy/group.h). */
        long err = 0;
        struct mb_group_file *made =
            mb_group_file_create(dir, file, name, limit, MB_GROUP_LIMIT_COMMAND, &err);
        if (made != NULL) {
            close(dir);
            return made;
        }
        if (err != -EEXIST && err != -EOPNOTSUPP) {
            cli_error(sub, "group %s: cannot create %s: %s", T(name), T(path), strerror((int)-err));
            close(dir);
            return NULL;
        }
        fd = err == -EEXIST ? openat(dir, file, flags) : -1;
        create = err == -EOPNOTSUPP;
    } else {
        create = false;
    }
    if (create) { /* in place: the filesystem cannot make a file without a name */
        fd = openat(dir, file, flags | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) {
            /* Its storage now, so that no write into the mapping can fault
             * on a full filesystem; a failure leaves no empty file behind. */
            long rc = os_file_allocate(fd, MB_GROUP_FILE_BYTES);
            if (rc < 0) {
                cli_error(sub, "group %s: cannot size %s: %s", T(name), T(path), strerror((int)-rc));
                close(fd);
                unlinkat(dir, file, 0);
                close(dir);
                return NULL;
            }
            created = true;
        }
    }
    if (fd < 0) fd = openat(dir, file, flags);
    close(dir);
    if (fd < 0) {
        cli_error(sub, "group %s: cannot open %s: %s", T(name), T(path),
                  errno == ENOENT ? "no such group" : strerror(errno));
        return NULL;
    }
    struct stat st;
    const char *why = fstat(fd, &st) != 0 ? "cannot examine it"
                      : !S_ISREG(st.st_mode) ? "not a regular file"
                      : st.st_uid != geteuid() ? "owned by another user"
                      : (st.st_mode & 077) != 0 ? "open to other users"
                      : st.st_nlink != 1 ? "linked elsewhere too"
                      : st.st_size != MB_GROUP_FILE_BYTES ? "not of a group's size"
                                                          : NULL;
    void *addr = why != NULL ? MAP_FAILED
                             : mmap(NULL, MB_GROUP_FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
                                    fd, 0);
    close(fd);
    if (why == NULL && addr == MAP_FAILED) why = "cannot map it";
    struct mb_group_file *g = addr;
    if (why == NULL && created)
        mb_group_file_init(g, name, limit, MB_GROUP_LIMIT_COMMAND, (uint32_t)getpid());
    if (why == NULL && (atomic_load(&g->magic) != MB_GROUP_MAGIC ||
                        g->version != MB_GROUP_VERSION || g->slots != MB_GROUP_SLOTS ||
                        g->size != sizeof *g))
        why = "not a membudget group of this version";
    if (why == NULL) return g;
    cli_error(sub, "group %s: %s: %s", T(name), T(path), why);
    if (addr != MAP_FAILED) munmap(addr, MB_GROUP_FILE_BYTES);
    return NULL;
}

static int by_band_then_size(const void *a, const void *b) {
    const struct mb_group_member *x = a, *y = b;
    if (x->band != y->band) return x->band < y->band ? -1 : 1;
    if (x->footprint_bytes != y->footprint_bytes) return x->footprint_bytes > y->footprint_bytes ? -1 : 1;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static const char *bytes(uint64_t v) {
    static char ring[8][32];
    static unsigned next;
    char *b = ring[next++ % 8];
    return v == 0 ? "none" : mb_bytes_text(b, sizeof ring[0], v);
}

static const char *source_text(const struct mb_group_file *g) {
    switch (atomic_load(&g->limit_source)) {
    case MB_GROUP_LIMIT_CREATOR: return "MEMBUDGET_GROUP_LIMIT of the process that made the group";
    case MB_GROUP_LIMIT_COMMAND: return "membudget group --limit";
    default: return "none set (the group only adds its members' footprints)";
    }
}

static void print_view(const char *name, const struct mb_group_file *g, struct mb_group_view *v) {
    struct mb_group_thresholds t;
    mb_group_thresholds(v->limit_bytes, &t);
    printf("group %s: %" PRIu32 " member%s, footprint %s, limit %s\n", T(name),
           v->count, v->count == 1 ? "" : "s", mb_bytes_text((char[32]){0}, 32, v->sum_bytes),
           bytes(v->limit_bytes));
    printf("thresholds: conservative %s, strict %s, kill %s; victims so far %" PRIu64 "\n",
           bytes(t.conservative_bytes), bytes(t.strict_bytes), bytes(t.kill_bytes),
           (uint64_t)atomic_load(&g->victims_total));
    qsort(v->member, v->count, sizeof v->member[0], by_band_then_size);
    printf("%8s %4s %12s %12s %6s\n", "PID", "BAND", "FOOTPRINT", "RELEASED", "ASKED");
    for (uint32_t i = 0; i < v->count; i++) {
        const struct mb_group_member *m = &v->member[i];
        static const char *const levels[] = {"-", "cons", "strict"};
        printf("%8" PRIu32 " %4" PRIu32 " %12s %12s %6s%s\n", m->pid, m->band,
               mb_bytes_text((char[32]){0}, 32, m->footprint_bytes),
               mb_bytes_text((char[32]){0}, 32, m->released_bytes),
               levels[m->requested < 3 ? m->requested : 0],
               m->pid == v->victim_pid ? "  victim" : "");
    }
}

static void print_json(const char *name, const struct mb_group_file *g, const struct mb_group_view *v) {
    struct mb_group_thresholds t;
    mb_group_thresholds(v->limit_bytes, &t);
    printf("{\"membudget_group\": 1, \"name\": ");
    cli_json_string(name);
    printf(", \"limit_bytes\": %" PRIu64 ", \"limit_source\": ", v->limit_bytes);
    cli_json_string(source_text(g));
    printf(", \"conservative_bytes\": %" PRIu64 ", \"strict_bytes\": %" PRIu64
           ", \"footprint_bytes\": %" PRIu64 ", \"victim_pid\": %" PRIu32 ", \"members\": [",
           t.conservative_bytes, t.strict_bytes, v->sum_bytes, v->victim_pid);
    for (uint32_t i = 0; i < v->count; i++)
        printf("%s{\"pid\": %" PRIu32 ", \"band\": %" PRIu32 ", \"footprint_bytes\": %" PRIu64
               ", \"released_bytes\": %" PRIu64 "}", i ? ", " : "", v->member[i].pid,
               v->member[i].band, v->member[i].footprint_bytes, v->member[i].released_bytes);
    printf("]}\n");
}

static void print_limits(const char *name, const struct mb_group_file *g,
                         const struct mb_group_view *v) {
    struct mb_group_thresholds t;
    mb_group_thresholds(v->limit_bytes, &t);
    printf("group %s (file made by pid %" PRIu32 ")\n", T(name), g->creator_pid);
    printf("limit        %s: %s\n", bytes(v->limit_bytes), source_text(g));
    printf("conservative %s: 0.8 x limit (a process's MEMBUDGET_CONSERVATIVE default)\n",
           bytes(t.conservative_bytes));
    printf("strict       %s: 0.9 x limit (a process's MEMBUDGET_STRICT default)\n",
           bytes(t.strict_bytes));
    printf("kill         %s: the limit; one member, the lowest band then the largest\n",
           bytes(t.kill_bytes));
}

enum group_mode { MODE_SHOW, MODE_TOP, MODE_LIMITS };

static int group_run(const char *sub, const char *name, enum group_mode mode, bool once,
                     bool json, const char *limit_text) {
    if (!mb_group_name_valid(name))
        cli_usage_error(sub, "group name '%s' is not valid (expected 1 to 64 characters from "
                             "A-Z a-z 0-9 . _ -)", T(name));
    uint64_t limit = 0;
    if (limit_text != NULL &&
        (!mb_parse_size(limit_text, &limit) || limit < MB_MIB || limit > MB_SIZE_SETTING_MAX))
        cli_usage_error(sub, "--limit '%s' is not valid (expected a size from 1M up to "
                             MB_SIZE_SETTING_MAX_TEXT " such as 2G)", T(limit_text));
    struct mb_group_file *g = group_map(sub, name, limit_text != NULL, limit);
    if (g == NULL) return CLI_EXIT_FAILURE;
    if (limit_text != NULL) {
        atomic_store(&g->limit_bytes, limit);
        atomic_store(&g->limit_source, MB_GROUP_LIMIT_COMMAND);
    }
    static struct mb_group_view v;
    for (;;) {
        mb_group_read(g, &v);
        if (mode == MODE_TOP && !once) printf("\033[H\033[2J");
        if (mode == MODE_LIMITS)
            print_limits(name, g, &v);
        else if (json)
            print_json(name, g, &v);
        else
            print_view(name, g, &v);
        fflush(stdout);
        if (mode != MODE_TOP || once) break;
        nanosleep(&(struct timespec){1, 0}, NULL);
    }
    munmap(g, MB_GROUP_FILE_BYTES);
    return CLI_EXIT_OK;
}

int cmd_group(int argc, char **argv) {
    static const struct option longopts[] = {
        {"limit", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char accepted[] = "NAME, --limit SIZE, --json, --help";
    const char *limit = NULL;
    bool json = false;
    cli_getopt_reset();
    int c;
    while ((c = cli_getopt("group", argc, argv, ":h", longopts, accepted)) != -1) {
        if (c == 'h') {
            fputs(group_usage, stdout);
            return CLI_EXIT_OK;
        }
        if (c == 'l') limit = optarg;
        if (c == 'j') json = true;
    }
    if (optind + 1 != argc)
        cli_usage_error("group", "%s (accepted: %s)",
                        optind >= argc ? "no group NAME given" : "one group NAME only", accepted);
    return group_run("group", argv[optind], MODE_SHOW, true, json, limit);
}

/* `top --group NAME [--once]` and `limits --group NAME`, from those commands
 * when they see --group. */
int cmd_group_of(const char *sub, int argc, char **argv) {
    const char *name = NULL;
    bool once = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--group") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strncmp(argv[i], "--group=", 8) == 0)
            name = argv[i] + 8;
        else if (strcmp(argv[i], "--once") == 0 && strcmp(sub, "top") == 0)
            once = true;
        else
            cli_usage_error(sub, "'%s' is not accepted with --group (accepted: --group NAME%s)",
                            T(argv[i]), strcmp(sub, "top") == 0 ? ", --once" : "");
    }
    if (name == NULL) cli_usage_error(sub, "--group needs a NAME");
    return group_run(sub, name, strcmp(sub, "top") == 0 ? MODE_TOP : MODE_LIMITS, once, false,
                     NULL);
}

/* Whether argv asks for a group (--group NAME or --group=NAME). */
bool cmd_group_wanted(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--group") == 0 || strncmp(argv[i], "--group=", 8) == 0) return true;
    return false;
}
