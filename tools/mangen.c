/* Builds a man page from a template and the options table of policy/config.c,
 * so membudget(1) describes every MEMBUDGET_* variable with the accepted form
 * and the default the library itself uses.
 *
 *   mangen TEMPLATE > PAGE
 *
 * In the template, a line "@OPTION MEMBUDGET_NAME@" becomes the variable's
 * heading, accepted form and default; the prose that follows it in the
 * template describes it.  "@VERSION@" anywhere becomes MEMBUDGET_VERSION.
 * Fails (exit 1, one line) when a variable of the table has no @OPTION line,
 * when a line names a variable the table does not know, or names one twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membudget.h"
#include "policy/config.h"

/* roff text: a backslash is written \e, and a line must not start with a
 * control character. */
static void roff_text(const char *s) {
    if (*s == '.' || *s == '\'') fputs("\\&", stdout);
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            fputs("\\e", stdout);
        else
            putchar(*s);
    }
}

static void put_line_with_version(const char *line) {
    const char *at;
    while ((at = strstr(line, "@VERSION@")) != NULL) {
        fwrite(line, 1, (size_t)(at - line), stdout);
        fputs(MEMBUDGET_VERSION, stdout);
        line = at + strlen("@VERSION@");
    }
    fputs(line, stdout);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: mangen TEMPLATE\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "r");
    if (in == NULL) {
        perror(argv[1]);
        return 1;
    }
    bool seen[MB_OPT_COUNT] = {false};
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    int status = 0;
    while (getline(&line, &cap, in) > 0) {
        lineno++;
        if (strncmp(line, "@OPTION ", 8) != 0) {
            put_line_with_version(line);
            continue;
        }
        char name[128];
        if (sscanf(line + 8, "%127[A-Z_]@", name) != 1) {
            fprintf(stderr, "%s:%u: malformed @OPTION line\n", argv[1], lineno);
            status = 1;
            continue;
        }
        int id = mb_option_lookup(name);
        if (id < 0 || seen[id]) {
            fprintf(stderr, "%s:%u: %s %s\n", argv[1], lineno, name,
                    id < 0 ? "is not in the options table of policy/config.c" : "appears twice");
            status = 1;
            continue;
        }
        seen[id] = true;
        const struct mb_option_desc *d = mb_option_desc((enum mb_option_id)id);
        printf(".TP\n.B %s\nAccepted: ", d->name);
        roff_text(d->expected);
        printf(".\nDefault: ");
        roff_text(d->default_text);
        printf(".\n.br\n");
    }
    free(line);
    fclose(in);
    for (int id = 0; id < MB_OPT_COUNT; id++) {
        if (seen[id]) continue;
        fprintf(stderr,
                "%s: %s from the options table is not described (add an @OPTION %s@ line)\n",
                argv[1], mb_option_desc((enum mb_option_id)id)->name,
                mb_option_desc((enum mb_option_id)id)->name);
        status = 1;
    }
    return status;
}
