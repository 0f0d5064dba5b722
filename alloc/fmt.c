/* Text into fixed buffers (see fmt.h). */
#include "alloc/fmt.h"

#include <string.h>

const char mb_hex_digits[16] = "0123456789abcdef";

void mb_buf_init(struct mb_buf *b, char *data, size_t cap) {
    b->data = data;
    b->cap = cap;
    b->len = 0;
    b->truncated = false;
    if (cap > 0) data[0] = '\0';
}

void mb_buf_mem(struct mb_buf *b, const char *s, size_t n) {
    if (b->cap == 0) {
        b->truncated = b->truncated || n > 0;
        return;
    }
    size_t room = b->cap - 1 - b->len;
    if (n > room) {
        n = room;
        b->truncated = true;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void mb_buf_str(struct mb_buf *b, const char *s) { mb_buf_mem(b, s, strlen(s)); }

void mb_buf_char(struct mb_buf *b, char c) { mb_buf_mem(b, &c, 1); }

void mb_buf_u64(struct mb_buf *b, uint64_t v) {
    char digits[20];
    size_t n = 0;
    do {
        digits[sizeof digits - 1 - n] = (char)('0' + v % 10);
        v /= 10;
        n++;
    } while (v != 0);
    mb_buf_mem(b, digits + sizeof digits - n, n);
}

void mb_buf_hex(struct mb_buf *b, uint64_t v) {
    char digits[2 + 16];
    size_t n = 0;
    do {
        digits[sizeof digits - 1 - n] = mb_hex_digits[v & 15];
        v >>= 4;
        n++;
    } while (v != 0);
    digits[sizeof digits - 1 - n++] = 'x';
    digits[sizeof digits - 1 - n++] = '0';
    mb_buf_mem(b, digits + sizeof digits - n, n);
}

void mb_buf_hex_bytes(struct mb_buf *b, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        char pair[2] = {mb_hex_digits[s[i] >> 4], mb_hex_digits[s[i] & 15]};
        mb_buf_mem(b, pair, 2);
    }
}

/* bytes in its unit (B, KiB, ... EiB: *unit_index 0..6) to one decimal,
 * rounded to nearest: the number both byte forms print. */
static uint64_t bytes_in_unit(uint64_t bytes, unsigned *unit_index, unsigned *tenths) {
    unsigned u = 0;
    while (u + 1 < 7 && bytes >= ((uint64_t)1 << (10 * (u + 1)))) u++;
    uint64_t unit = (uint64_t)1 << (10 * u);
    uint64_t whole = bytes >> (10 * u);
    uint64_t rest = bytes & (unit - 1);
    /* rest < 2^60, so rest * 10 cannot overflow. */
    uint64_t t = (rest * 10 + unit / 2) >> (10 * u);
    if (t == 10) {
        whole++;
        t = 0;
    }
    *unit_index = u;
    *tenths = (unsigned)t;
    return whole;
}

void mb_buf_bytes(struct mb_buf *b, uint64_t bytes) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    unsigned u, tenths;
    uint64_t whole = bytes_in_unit(bytes, &u, &tenths);
    mb_buf_u64(b, whole);
    if (tenths != 0) {
        mb_buf_char(b, '.');
        mb_buf_char(b, (char)('0' + tenths));
    }
    mb_buf_char(b, ' ');
    mb_buf_str(b, units[u]);
}

void mb_buf_bytes_short(struct mb_buf *b, uint64_t bytes) {
    static const char units[] = "BKMGTPE";
    unsigned u, tenths;
    uint64_t whole = bytes_in_unit(bytes, &u, &tenths);
    if (whole >= 1000) { /* four digits fill the column */
        whole += tenths >= 5;
        tenths = 0;
    }
    mb_buf_u64(b, whole);
    if (tenths != 0) {
        mb_buf_char(b, '.');
        mb_buf_char(b, (char)('0' + tenths));
    }
    mb_buf_char(b, units[u]);
}

void mb_buf_value(struct mb_buf *b, const char *s, size_t max) {
    size_t i = 0;
    for (; s[i] != '\0' && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            mb_buf_char(b, (char)c);
        } else {
            char esc[4] = {'\\', 'x', mb_hex_digits[c >> 4], mb_hex_digits[c & 15]};
            mb_buf_mem(b, esc, sizeof esc);
        }
    }
    if (s[i] != '\0') mb_buf_str(b, "...");
}

const char *mb_bytes_text(char *buf, size_t cap, uint64_t bytes) {
    struct mb_buf b = mb_buf_on(buf, cap);
    mb_buf_bytes(&b, bytes);
    return buf;
}

const char *mb_bytes_short_text(char *buf, size_t cap, uint64_t bytes) {
    struct mb_buf b = mb_buf_on(buf, cap);
    mb_buf_bytes_short(&b, bytes);
    return buf;
}

bool mb_parse_u64_text(const char *s, uint64_t *out) {
    while (*s == ' ' || *s == '\t') s++;
    if (*s < '0' || *s > '9') return false;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned digit = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - digit) / 10) return false;
        v = v * 10 + digit;
    }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    if (*s != '\0') return false;
    *out = v;
    return true;
}
