/* Escaping for the terminal, XML and JSON: see textout.h. */
#include "tools/textout.h"

#include <stdint.h>
#include <string.h>

#include "alloc/fmt.h" /* mb_hex_digits */
#include "policy/utf8.h"

/* Whether code point c must not reach a terminal as it is. */
static bool is_control(uint32_t c) {
    return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f);
}

/* Calls emit(piece, len, columns) for each piece of s's terminal form. */
static size_t term_each(const char *s, bool (*emit)(void *, const char *, size_t, size_t),
                        void *arg) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), cols = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c = 0;
        size_t len = mb_utf8_seq(p + i, n - i, &c);
        char esc[4 * 4];
        size_t elen = 0;
        if (len == 0 || is_control(c)) {
            if (len == 0) len = 1;
            for (size_t k = 0; k < len; k++) {
                esc[elen++] = '\\', esc[elen++] = 'x';
                esc[elen++] = mb_hex_digits[p[i + k] >> 4];
                esc[elen++] = mb_hex_digits[p[i + k] & 15];
            }
            if (!emit(arg, esc, elen, elen)) return cols;
            cols += elen;
        } else if (c == '\\') {
            if (!emit(arg, "\\\\", 2, 2)) return cols;
            cols += 2;
        } else {
            if (!emit(arg, (const char *)p + i, len, 1)) return cols;
            cols += 1;
        }
        i += len;
    }
    return cols;
}

static bool emit_file(void *arg, const char *piece, size_t len, size_t columns) {
    (void)columns;
    fwrite(piece, 1, len, (FILE *)arg);
    return true;
}

void tx_term(FILE *out, const char *s) {
    term_each(s, emit_file, out);
}

struct term_buf {
    char *dst;
    size_t cap, len, columns, max_columns;
};

static bool emit_buf(void *arg, const char *piece, size_t len, size_t columns) {
    struct term_buf *b = arg;
    if (b->len + len + 1 > b->cap || b->columns + columns > b->max_columns) return false;
    memcpy(b->dst + b->len, piece, len);
    b->len += len;
    b->columns += columns;
    return true;
}

size_t tx_term_buf(char *dst, size_t cap, const char *s, size_t columns) {
    struct term_buf b = {dst, cap, 0, 0, columns};
    if (cap == 0) return 0;
    term_each(s, emit_buf, &b);
    dst[b.len] = '\0';
    return b.columns;
}

void tx_xml(FILE *out, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t c = 0;
        size_t len = mb_utf8_seq(p + i, n - i, &c);
        if (len == 0 || (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f ||
            (c >= 0x80 && c <= 0x9f) || c == 0xfffe || c == 0xffff) {
            fputs("\xef\xbf\xbd", out); /* U+FFFD */
            i += len == 0 ? 1 : len;
            continue;
        }
        switch (c) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default: fwrite(p + i, 1, len, out);
        }
        i += len;
    }
}

void tx_json(FILE *out, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    fputc('"', out);
    for (size_t i = 0; i < n;) {
        uint32_t c = 0;
        size_t len = mb_utf8_seq(p + i, n - i, &c);
        if (len == 0) {
            fputs("\\ufffd", out);
            i++;
            continue;
        }
        if (c == '"' || c == '\\') {
            fputc('\\', out), fputc((int)c, out);
        } else if (c == '\n') {
            fputs("\\n", out);
        } else if (c == '\t') {
            fputs("\\t", out);
        } else if (is_control(c)) {
            fprintf(out, "\\u%04x", (unsigned)c);
        } else {
            fwrite(p + i, 1, len, out);
        }
        i += len;
    }
    fputc('"', out);
}

bool tx_is_utf8(const char *s) {
    return mb_utf8_valid(s) != 0;
}

void tx_hex(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        fputc(mb_hex_digits[*p >> 4], out);
        fputc(mb_hex_digits[*p & 15], out);
    }
    fputc('"', out);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool tx_unhex(const char *hex, char *out, size_t cap) {
    size_t n = strlen(hex);
    if (n % 2 != 0 || cap == 0 || n / 2 >= cap) return false;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
        out[i / 2] = (char)(hi << 4 | lo);
    }
    out[n / 2] = '\0';
    return true;
}
