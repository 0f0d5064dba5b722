/* libFuzzer target for the report tool's dump reader (tools/report.c) and every
 * output: the text, --folded, --json, --svg, --html and --diff (of the dump
 * with itself).
 *
 * The input is the dump.  Its frames are then named as a symbolizer would,
 * from the input's own bytes (which need not be UTF-8 and may hold control
 * bytes, ';' or newlines, as a hostile module file's symbols may), and its
 * modules take every state, so that no module file is opened.  Besides "no
 * crash, no overflow, no undefined behaviour, no leak":
 *  - the text and the folded stacks carry no control byte but the newline and
 *    are well-formed UTF-8 (tools/textout.h's terminal form);
 *  - the JSON parses again, and the SVG has no control byte and is UTF-8;
 *  - the HTML page is UTF-8 without control bytes and holds exactly its own
 *    two scripts (the data and the code): nothing from the dump opens or
 *    closes a script or a comment;
 *  - each output's size is bounded by the input's (no loop driven by a value
 *    in the dump). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "policy/utf8.h"
#include "tools/report_diff.h"
#include "tools/report_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_fail(const char *what, const char *output) __attribute__((noreturn));
static void fuzz_fail(const char *what, const char *output) {
    fprintf(stderr, "fuzz_report: %s\n", what);
    if (output != NULL) fprintf(stderr, "fuzz_report: output begins: %.200s\n", output);
    abort();
}

/* The outputs go to memory, and the tool's messages nowhere (the sanitizers
 * write to descriptor 2 directly). */
static char *captured;
static size_t captured_len;

static FILE *sink(void) {
    return open_memstream(&captured, &captured_len);
}

/* No control byte but the newline (and the tab, which XML carries). */
static void check_controls(const char *what, const char *s, size_t n, bool tab) {
    if (strlen(s) != n) fuzz_fail("a NUL byte in the output", what);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\n' && !(tab && c == '\t')) || c == 0x7f) fuzz_fail(what, s);
    }
    if (!mb_utf8_valid(s)) fuzz_fail(what, s);
}

/* Generous: a frame of two input bytes becomes at most a few names of
 * RP_PATH_MAX bytes in the JSON. */
static void check_size(const char *what, size_t out, size_t in) {
    if (out > 65536 + (size_t)16 * RP_PATH_MAX * (in + 1)) fuzz_fail(what, NULL);
}

static char *name_from(const uint8_t *data, size_t size, size_t at) {
    size_t len = size == 0 ? 0 : (at * 7) % (size < 48 ? size : 48);
    char *s = malloc(len + 1);
    if (s == NULL) abort();
    for (size_t i = 0; i < len; i++) {
        char c = (char)data[(at + i) % size];
        s[i] = c == '\0' ? ';' : c;
    }
    s[len] = '\0';
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *quiet;
    if (quiet == NULL) {
        quiet = fopen("/dev/null", "w");
        if (quiet == NULL) abort();
    }
    FILE *real_stdout = stdout, *real_stderr = stderr;
    stderr = quiet;

    char *text = malloc(size + 1);
    if (text == NULL) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    struct rp_report r = {0};
    bool loaded = rp_load(&r, text, size, "fuzz.json");
    free(text);
    if (!loaded) {
        stderr = real_stderr;
        return 0;
    }
    for (size_t m = 0; m < r.module_count; m++)
        r.modules[m].state = (enum rp_module_state)(m % (RP_MODULE_TOO_LARGE + 1));
    for (size_t s = 0; s < r.site_count; s++) {
        for (size_t f = 0; f < r.sites[s].frame_count; f++) {
            struct rp_frame *frame = &r.sites[s].frames[f];
            if (frame->address & 1) frame->function = name_from(data, size, s + f);
            if (frame->address & 2) {
                frame->file = name_from(data, size, s * 3 + f);
                frame->line = (int)(frame->address >> 2 & 0xffff);
            }
        }
    }

    static const char *const what[] = {"text", "folded", "json"};
    for (int mode = 0; mode < 3; mode++) {
        stdout = sink();
        if (stdout == NULL) abort();
        if (mode == 0)
            rp_print_text(&r, (size_t)(size % 3), (size_t)(size % 5));
        else if (mode == 1)
            rp_print_folded(&r);
        else
            rp_print_json(&r);
        fclose(stdout);
        stdout = real_stdout;
        check_size(what[mode], captured_len, size);
        if (mode < 2) {
            check_controls(what[mode], captured, captured_len, false);
        } else {
            json_error_t error;
            json_t *again = json_loadb(captured, captured_len, JSON_ALLOW_NUL, &error);
            if (again == NULL) fuzz_fail("the JSON output does not parse", captured);
            json_decref(again);
        }
        free(captured);
        captured = NULL;
    }

    static const char *const diff_what[] = {"diff text", "diff folded", "diff json"};
    static const enum rp_diff_form forms[] = {RP_DIFF_TEXT, RP_DIFF_FOLDED, RP_DIFF_JSON};
    for (int mode = 0; mode < 3; mode++) {
        stdout = sink();
        if (stdout == NULL) abort();
        if (!rp_print_diff(&r, &r, forms[mode], (size_t)(size % 3), (size_t)(size % 5))) abort();
        fclose(stdout);
        stdout = real_stdout;
        check_size(diff_what[mode], captured_len, 2 * size);
        if (mode < 2) {
            check_controls(diff_what[mode], captured, captured_len, false);
        } else {
            json_error_t error;
            json_t *again = json_loadb(captured, captured_len, JSON_ALLOW_NUL, &error);
            if (again == NULL) fuzz_fail("the diff's JSON output does not parse", captured);
            json_decref(again);
        }
        free(captured);
        captured = NULL;
    }

    for (int page = 0; page < 2; page++) {
        char path[] = "/tmp/fuzz_report.XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0) abort();
        const char *name = page ? "html" : "svg";
        if (!(page ? rp_write_html(&r, path) : rp_write_svg(&r, path)))
            fuzz_fail(page ? "the page was not written" : "the SVG was not written", NULL);
        FILE *in = fdopen(fd, "r");
        if (in == NULL) abort();
        fseek(in, 0, SEEK_END);
        long len = ftell(in);
        rewind(in);
        char *body = malloc((size_t)len + 1);
        if (body == NULL || fread(body, 1, (size_t)len, in) != (size_t)len) abort();
        body[len] = '\0';
        fclose(in);
        unlink(path);
        check_size(name, (size_t)len, size);
        check_controls(name, body, (size_t)len, true);
        if (page) {
            size_t opened = 0, closed = 0;
            for (const char *p = body; (p = strstr(p, "<script")) != NULL; p++) opened++;
            for (const char *p = body; (p = strstr(p, "</script")) != NULL; p++) closed++;
            if (opened != 2 || closed != 2 || strstr(body, "<!--") != NULL)
                fuzz_fail("markup from the dump in the page", body);
        }
        free(body);
    }

    rp_free(&r);
    stderr = real_stderr;
    return 0;
}
