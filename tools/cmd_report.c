/* `membudget report`: the report tool is its own program (membudget-report,
 * beside this one in the build tree, in libexec/membudget when installed);
 * this subcommand runs it with the arguments given. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"

static const char report_usage[] =
    "usage: membudget report DUMP [--svg FILE] [--html FILE] [--folded] [--json]\n"
    "       membudget report --diff OLD NEW [--folded | --json]\n"
    "\n"
    "Summarizes a report (the JSON file a process writes when it exceeds its\n"
    "budget): how the limit was derived, the footprint breakdown, the policy\n"
    "history and the top allocation sites; --svg writes the footprint timeline,\n"
    "--folded prints folded stacks for flame graphs, --html writes one\n"
    "self-contained page with a flame graph; --diff orders two reports' sites by\n"
    "growth.  The work is done by the\n"
    "report tool, membudget-report; `membudget report --help` shows its own help\n"
    "when it is installed.\n";

int cmd_report(int argc, char **argv) {
    char tool[PATH_MAX], looked[4 * PATH_MAX];
    if (!cli_find_report_tool(tool, sizeof tool, looked, sizeof looked)) {
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                fputs(report_usage, stdout);
                printf("\nThe report tool is not installed here (looked for %s).\n", looked);
                return CLI_EXIT_OK;
            }
        }
        cli_error("report", "the report tool membudget-report is not installed (looked for %s)",
                  looked);
        return 127;
    }
    /* argv is NULL-terminated: the tool gets the same arguments. */
    argv[0] = tool;
    fflush(NULL);
    execv(tool, argv);
    cli_error("report", "cannot run %s: %s", tool, strerror(errno));
    return 126;
}
