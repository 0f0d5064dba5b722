/* UTF-8 validation shared by every writer of text that leaves the process or
 * the command: the report's JSON (policy/dump.c), `stat --json`, and the
 * terminal, SVG and JSON escapers of tools/textout.c.  Header-only and
 * allocation-free, so the library may use it at a budget death. */
#ifndef MB_POLICY_UTF8_H
#define MB_POLICY_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The length of the well-formed UTF-8 sequence at s (n bytes readable: 1 to
 * 4), or 0 when s[0] does not start one: a stray continuation byte, an
 * overlong form, a surrogate (U+D800..U+DFFF), a code point past U+10FFFF or a
 * sequence cut short.  *cp receives the code point when cp is not NULL. */
static inline size_t mb_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    unsigned c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        if (cp != NULL) *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    if (cp != NULL) *cp = v;
    return len;
}

/* Whether the NUL-terminated s is well-formed UTF-8 throughout. */
static inline int mb_utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (p[n] != '\0') n++;
    for (size_t i = 0; i < n;) {
        size_t len = mb_utf8_seq(p + i, n - i, NULL);
        if (len == 0) return 0;
        i += len;
    }
    return 1;
}

#endif
