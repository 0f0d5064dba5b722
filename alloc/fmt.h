/* Text into fixed buffers, for every layer: the allocator's error lines, the
 * policy's messages and the dump, the command's tables.  Usable inside malloc,
 * a fork handler or a dying process: no stdio, no allocation, no locale, no
 * system call (the caller writes the bytes out: os_write_all, fwrite). */
#ifndef MEMBUDGET_ALLOC_FMT_H
#define MEMBUDGET_ALLOC_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A bounded string under construction.  `data` is always NUL-terminated; text
 * that does not fit is dropped and `truncated` set, never written past `cap`. */
struct mb_buf {
    char *data;
    size_t cap; /* bytes of data, including the NUL */
    size_t len;
    bool truncated;
};

void mb_buf_init(struct mb_buf *b, char *data, size_t cap);
/* mb_buf_init as a value: `struct mb_buf b = mb_buf_on(line, sizeof line);`. */
static inline struct mb_buf mb_buf_on(char *data, size_t cap) {
    struct mb_buf b;
    mb_buf_init(&b, data, cap);
    return b;
}

void mb_buf_mem(struct mb_buf *b, const char *s, size_t n);
void mb_buf_str(struct mb_buf *b, const char *s);
void mb_buf_char(struct mb_buf *b, char c);
void mb_buf_u64(struct mb_buf *b, uint64_t v);
/* "0x7f3a5c820000": lowercase, no leading zeros. */
void mb_buf_hex(struct mb_buf *b, uint64_t v);
/* Each of the n bytes as two lowercase hex digits: "2f746d70". */
void mb_buf_hex_bytes(struct mb_buf *b, const void *p, size_t n);
/* A byte count as people read it, the one form of every layer: one decimal,
 * rounded to nearest, ".0" dropped, binary units ("921.6 MiB", "24 GiB",
 * "512 B"; B, KiB, MiB, GiB, TiB, PiB, EiB). */
void mb_buf_bytes(struct mb_buf *b, uint64_t bytes);
/* The same number for a column of six: the unit's letter without a space
 * ("921.6M", "24G", "512B"); from 1000 of a unit on, no decimal ("1023M"). */
void mb_buf_bytes_short(struct mb_buf *b, uint64_t bytes);
/* A value quoted for a message: at most `max` bytes, bytes outside printable
 * ASCII (and the backslash) as \xHH, "..." when cut, so a line stays one line. */
void mb_buf_value(struct mb_buf *b, const char *s, size_t max);

/* The byte forms above into buf (cap bytes, cut to fit), returning buf, for
 * printf's %s. */
const char *mb_bytes_text(char *buf, size_t cap, uint64_t bytes);
const char *mb_bytes_short_text(char *buf, size_t cap, uint64_t bytes);

/* The one reader of the number files the platform reads (/proc, cgroups):
 * blanks, decimal digits, then only blanks or a line end; false on anything
 * else or on overflow. */
bool mb_parse_u64_text(const char *s, uint64_t *out);

/* "0123456789abcdef": the one table of hex digits. */
extern const char mb_hex_digits[16];

#endif
