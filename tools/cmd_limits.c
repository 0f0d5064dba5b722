/* `membudget limits`: every number of DESIGN §4 for this machine and cgroup,
 * each with where it came from, computed by the library's own code
 * (policy/limits.c, policy/config.c) from the same MEMBUDGET_* variables, so
 * what this prints is what a process started here would use. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "policy/config.h"
#include "policy/limits.h"
#include "policy/stats_list.h"
#include "tools/cli.h"

static const char limits_usage[] =
    "usage: membudget limits [--state active|inactive] [--pages N] [--model M]\n"
    "                        [--limit L] [--json] [--root DIR]\n"
    "\n"
    "Prints ramSize, the kill threshold, the inactive kill threshold, the base\n"
    "threshold and the conservative, strict and strict-synchronous thresholds\n"
    "that a process started here would get, each with where it came from (the\n"
    "file read and its value, the variable, or the formula).  MEMBUDGET_*\n"
    "variables in the environment count; the options override them.\n"
    "\n"
    "  --state S    active or inactive                          [MEMBUDGET_STATE]\n"
    "  --pages N    the jetsam model's page count, 1 or more    [MEMBUDGET_PAGES]\n"
    "  --model M    webkit or webkit-legacy                     [MEMBUDGET_MODEL]\n"
    "  --limit L    a size such as 512M, or a percentage of RAM such as 80%\n"
    "                                                           [MEMBUDGET_LIMIT]\n"
    "  --json       one JSON object, with the field names of the report's \"limit\"\n"
    "  --root DIR   read /proc and the cgroup files under DIR instead of /\n"
    "  -h, --help   this text\n";

enum { OPT_JSON = 256, OPT_ROOT, OPT_STATE, OPT_PAGES, OPT_MODEL, OPT_LIMIT };

struct row {
    const char *name, *key;
    uint64_t bytes;
    const char *zero; /* what 0 means ("unknown", "none"); NULL: 0 is a number */
    const char *source;
};

/* The thresholds of the list (policy/stats_list.h), in its order. */
#define ROW(stem, label, zero, page, help)                                                         \
    {label, #stem, lim->stem##_bytes, zero, lim->stem##_source},

static size_t rows_of(const struct mb_limits *lim, struct row *rows) {
    const struct row all[] = {MB_STATS(MB_STATS_NONE, ROW, MB_STATS_NONE)};
    memcpy(rows, all, sizeof all);
    return sizeof all / sizeof all[0];
}

static bool known(const struct row *row) { return row->zero == NULL || row->bytes != 0; }

static void print_table(const struct mb_limits *lim, const struct mb_config *cfg) {
    struct row rows[16];
    size_t n = rows_of(lim, rows);
    printf("inputs: model %s, state %s, %u %s, %u-bit, action %s\n",
           mb_option_value_name(MB_OPT_MODEL, lim->model),
           mb_option_value_name(MB_OPT_STATE, lim->state), lim->pages,
           lim->pages == 1 ? "page" : "pages", lim->word_bits,
           mb_option_value_name(MB_OPT_ACTION, cfg->action));
    printf("%-24s %-11s %-20s %s\n", "NAME", "VALUE", "BYTES", "SOURCE");
    for (size_t i = 0; i < n; i++) {
        char human[32], bytes[24];
        if (known(&rows[i])) {
            mb_bytes_text(human, sizeof human, rows[i].bytes);
            snprintf(bytes, sizeof bytes, "%" PRIu64, rows[i].bytes);
        } else {
            snprintf(human, sizeof human, "%s", rows[i].zero);
            snprintf(bytes, sizeof bytes, "-");
        }
        printf("%-24s %-11s %-20s %s\n", rows[i].name, human, bytes, rows[i].source);
    }
    char version[8];
    snprintf(version, sizeof version, "v%d", lim->cgroup_version);
    printf("%-24s %-11s %-20s %s\n", "memory cgroup", lim->cgroup_version ? version : "none", "-",
           lim->cgroup_dir[0] != '\0' ? lim->cgroup_dir
                                      : "no memory controller found (MEMBUDGET_FOOTPRINT=cgroup "
                                        "falls back to rss)");
}

static void print_json(const struct mb_limits *lim, const struct mb_config *cfg) {
    struct row rows[16];
    size_t n = rows_of(lim, rows);
    printf("{\n  \"membudget_limits\": 1,\n"); /* the format's version: docs/json.md */
    for (size_t i = 0; i < n; i++) {
        printf("  \"%s_bytes\": %" PRIu64 ",\n  \"%s_source\": ", rows[i].key, rows[i].bytes,
               rows[i].key);
        cli_json_string(rows[i].source);
        printf(",\n");
    }
    printf("  \"cgroup_version\": %d,\n  \"cgroup_dir\": ", lim->cgroup_version);
    cli_json_string(lim->cgroup_dir);
    printf(",\n  \"model\": \"%s\",\n  \"state\": \"%s\",\n  \"pages\": %u,\n"
           "  \"word_bits\": %u,\n  \"action\": \"%s\"\n}\n",
           mb_option_value_name(MB_OPT_MODEL, lim->model),
           mb_option_value_name(MB_OPT_STATE, lim->state), lim->pages, lim->word_bits,
           mb_option_value_name(MB_OPT_ACTION, cfg->action));
}

static void discard_line(void *ctx, const char *line, size_t len) {
    (void)ctx, (void)line, (void)len;
}

static void override(struct mb_config *cfg, enum mb_option_id id, const char *flag,
                     const char *value) {
    const struct mb_sink quiet = {discard_line, NULL};
    if (!mb_config_set(cfg, id, value, &quiet))
        cli_usage_error("limits", "%s '%s' is not valid (expected %s)", flag, value,
                        mb_option_desc(id)->expected);
}

int cmd_limits(int argc, char **argv) {
    if (cmd_group_wanted(argc, argv)) return cmd_group_of("limits", argc, argv);
    static const struct option longopts[] = {
        {"state", required_argument, NULL, OPT_STATE},
        {"pages", required_argument, NULL, OPT_PAGES},
        {"model", required_argument, NULL, OPT_MODEL},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"json", no_argument, NULL, OPT_JSON},
        {"root", required_argument, NULL, OPT_ROOT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char accepted[] = "--state active|inactive, --pages N, --model "
                                   "webkit|webkit-legacy, --limit L, --json, --root DIR, --help";
    /* The environment first, as the library reads it; bad values cost one
     * line each, as they would in a process. */
    struct mb_config cfg;
    mb_config_read_env(&cfg, NULL);
    const char *root = "/";
    bool json = false;
    cli_getopt_reset();
    int c;
    while ((c = cli_getopt("limits", argc, argv, ":h", longopts, accepted)) != -1) {
        switch (c) {
        case 'h':
            fputs(limits_usage, stdout);
            return CLI_EXIT_OK;
        case OPT_STATE:
            override(&cfg, MB_OPT_STATE, "--state", optarg);
            break;
        case OPT_PAGES:
            override(&cfg, MB_OPT_PAGES, "--pages", optarg);
            break;
        case OPT_MODEL:
            override(&cfg, MB_OPT_MODEL, "--model", optarg);
            break;
        case OPT_LIMIT:
            override(&cfg, MB_OPT_LIMIT, "--limit", optarg);
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_ROOT:
            root = optarg;
            break;
        }
    }
    if (optind < argc)
        cli_usage_error("limits", "unexpected argument '%s' (accepted: %s)", argv[optind],
                        accepted);
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
        cli_usage_error("limits",
                        "--root '%s' is not a directory (expected a tree with proc/ "
                        "and sys/ inside, or /)",
                        root);
    static struct mb_limits lim;
    mb_limits_init(&lim, root, &cfg, NULL); /* an order problem: one line on stderr */
    if (json)
        print_json(&lim, &cfg);
    else
        print_table(&lim, &cfg);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}
