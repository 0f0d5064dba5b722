/* tools/textout.c: what each escaper makes of hostile strings (control bytes,
 * terminal escape sequences, markup, bytes that are not UTF-8), and that
 * well-formed UTF-8 passes through unchanged.  Built with ASan and UBSan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/textout.h"

static int passed, failed;

static void expect(const char *name, const char *got, const char *want) {
    if (strcmp(got, want) == 0) {
        passed++;
        printf("ok %s\n", name);
    } else {
        failed++;
        printf("FAIL %s: got [%s], want [%s]\n", name, got, want);
    }
}

/* What fn writes for s, in a buffer. */
static const char *run(void (*fn)(FILE *, const char *), const char *s) {
    static char *buf;
    static size_t len;
    free(buf);
    buf = NULL;
    FILE *f = open_memstream(&buf, &len);
    fn(f, s);
    fclose(f);
    return buf;
}

int main(void) {
    expect("terminal: ESC and OSC bytes become \\xNN", run(tx_term, "a\x1b]0;pwned\x07z"),
           "a\\x1b]0;pwned\\x07z");
    expect("terminal: newline, tab and DEL", run(tx_term, "x\ny\tz\x7f"), "x\\x0ay\\x09z\\x7f");
    expect("terminal: C1 control U+009B (CSI) as its two bytes", run(tx_term, "\xc2\x9b" "31m"),
           "\\xc2\\x9b31m");
    expect("terminal: UTF-8 kept", run(tx_term, "/tmp/d\xc3\xa9/\xe2\x82\xac"),
           "/tmp/d\xc3\xa9/\xe2\x82\xac");
    expect("terminal: invalid bytes", run(tx_term, "a\xff\xc3(b\xed\xa0\x80"),
           "a\\xff\\xc3(b\\xed\\xa0\\x80");
    expect("terminal: backslash doubled", run(tx_term, "a\\x41"), "a\\\\x41");
    expect("xml: markup", run(tx_xml, "<script>alert('1')</script>&\""),
           "&lt;script&gt;alert(&#39;1&#39;)&lt;/script&gt;&amp;&quot;");
    expect("xml: control and invalid bytes as U+FFFD", run(tx_xml, "a\x1b" "b\xff"),
           "a\xef\xbf\xbd" "b\xef\xbf\xbd");
    expect("json: quotes, controls", run(tx_json, "\"\\\n\x01"), "\"\\\"\\\\\\n\\u0001\"");
    expect("json: C1 control U+009B escaped", run(tx_json, "a\xc2\x9b" "b"), "\"a\\u009bb\"");
    expect("json: UTF-8 kept, not \\u00c3\\u00a9", run(tx_json, "/tmp/d\xc3\xa9/x"),
           "\"/tmp/d\xc3\xa9/x\"");
    expect("json: invalid byte as U+FFFD", run(tx_json, "a\xe9z"), "\"a\\ufffdz\"");
    expect("json: overlong '/' refused", run(tx_json, "\xc0\xaf"), "\"\\ufffd\\ufffd\"");
    expect("hex", run(tx_hex, "a\xe9"), "\"61e9\"");

    char out[16];
    expect("unhex round trip", tx_unhex("61e97a", out, sizeof out) ? out : "(false)",
           "a\xe9z");
    expect("unhex: odd length refused", tx_unhex("61e", out, sizeof out) ? "true" : "false",
           "false");
    expect("unhex: NUL byte refused", tx_unhex("6100", out, sizeof out) ? "true" : "false",
           "false");
    expect("unhex: too long for the buffer", tx_unhex("6161616161", out, 5) ? "true" : "false",
           "false");
    expect("utf8 check", tx_is_utf8("d\xc3\xa9") && !tx_is_utf8("d\xe9") ? "yes" : "no", "yes");

    char small[8];
    size_t cols = tx_term_buf(small, 6, "abc\x1b" "def", 100);
    expect("term_buf: cut on an escape boundary, within the buffer", small, "abc");
    expect("term_buf: columns", cols == 3 ? "3" : "wrong", "3");
    cols = tx_term_buf(small, sizeof small, "ab\x1b", 5);
    expect("term_buf: an escape cut by the column limit is left out", small, "ab");
    cols = tx_term_buf(small, sizeof small, "\xc3\xa9\xc3\xa9\xc3\xa9", 2);
    expect("term_buf: two columns of UTF-8", small, "\xc3\xa9\xc3\xa9");

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
