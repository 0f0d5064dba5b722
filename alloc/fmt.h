/* Formatting into fixed buffers, for code that may run inside malloc, a fork
 * handler or a dying process: no stdio, no allocation, no locale. */
#ifndef MEMBUDGET_ALLOC_FMT_H
#define MEMBUDGET_ALLOC_FMT_H

#include <stddef.h>
#include <stdint.h>

struct fmt {
    char *buf;
    size_t cap, len; /* len < cap; buf[len] is kept NUL */
};

#define FMT_ON(array) ((struct fmt){(array), sizeof(array), 0})

void fmt_str(struct fmt *f, const char *s);
void fmt_char(struct fmt *f, char c);
void fmt_u64(struct fmt *f, uint64_t v);
/* A byte count as "12.3 MiB" (KiB, MiB, GiB, TiB with one decimal; B below). */
void fmt_bytes(struct fmt *f, uint64_t bytes);
/* Writes the buffer to fd, whole. */
void fmt_write(const struct fmt *f, int fd);

#endif
