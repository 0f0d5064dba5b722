/* Formatting into fixed buffers (see fmt.h). */
#include "alloc/fmt.h"

#include "alloc/os.h"

void fmt_char(struct fmt *f, char c) {
    if (f->len + 1 < f->cap) {
        f->buf[f->len++] = c;
        f->buf[f->len] = '\0';
    }
}

void fmt_str(struct fmt *f, const char *s) {
    while (*s) fmt_char(f, *s++);
}

void fmt_u64(struct fmt *f, uint64_t v) {
    char digits[24];
    int n = 0;
    do digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    while (n > 0) fmt_char(f, digits[--n]);
}

void fmt_bytes(struct fmt *f, uint64_t bytes) {
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) {
        fmt_u64(f, bytes);
        fmt_str(f, " B");
        return;
    }
    unsigned unit = 0;
    uint64_t scale = 1024;
    while (unit + 1 < sizeof units / sizeof *units && bytes >= scale * 1024) {
        scale *= 1024;
        unit++;
    }
    /* One decimal, rounded to nearest. */
    uint64_t whole = bytes / scale, tenth = ((bytes % scale) * 10 + scale / 2) / scale;
    if (tenth == 10) {
        whole++;
        tenth = 0;
    }
    fmt_u64(f, whole);
    fmt_char(f, '.');
    fmt_char(f, (char)('0' + tenth));
    fmt_char(f, ' ');
    fmt_str(f, units[unit]);
}

void fmt_write(const struct fmt *f, int fd) { os_write_all(fd, f->buf, f->len); }
