/* libFuzzer target for the live-page reader of tools/livestats.c: the input
 * is the content of a page file, as another user may write it.
 *
 *   - live_check on the bytes; a page it accepts has every string
 *     NUL-terminated within its field, the top site's counts within their
 *     arrays and the frames within the depth, every frame's module index
 *     within the count, every module path absolute;
 *   - live_read_fd on the same bytes in a file (memfd), read with pread: the
 *     same verdict and the same copy;
 *   - live_top_site on an accepted page (its module paths looked up in the
 *     maps of the process it names before anything opens them): the frames
 *     and the label within their arrays, NUL-terminated;
 *   - the terminal form of every string of an accepted page and of the top
 *     site's names: no control byte left.
 * The pid the page is checked against is the one it names (from offset 12),
 * so that inputs get past the pid check. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tools/livestats.h"
#include "tools/textout.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_livepage: " __VA_ARGS__);                                            \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

static bool terminated(const char *s, size_t size) { return memchr(s, '\0', size) != NULL; }

/* The terminal form of s: cut to fit, never a control byte. */
static void check_term(const char *s, const char *what) {
    char out[2048];
    tx_term_buf(out, sizeof out, s, sizeof out);
    for (const unsigned char *p = (const unsigned char *)out; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) FAIL("%s: control byte 0x%02x in the terminal form", what, *p);
        if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            FAIL("%s: C1 control U+%04X in the terminal form", what, p[1]);
    }
}

static void check_accepted(const struct mb_statspage *p) {
    if (p->size > sizeof *p) FAIL("size %u past the layout", p->size);
    if (!terminated(p->comm, sizeof p->comm) || !terminated(p->policy_name, sizeof p->policy_name) ||
        !terminated(p->action, sizeof p->action) || !terminated(p->state, sizeof p->state) ||
        !terminated(p->footprint_source, sizeof p->footprint_source) ||
        !terminated(p->limit_source, sizeof p->limit_source))
        FAIL("accepted a name without its NUL");
    if (p->top_frame_count > MB_STATSPAGE_TOP_FRAMES || p->top_module_count > MB_STATSPAGE_TOP_MODULES)
        FAIL("accepted %u frames, %u modules", p->top_frame_count, p->top_module_count);
    if (p->top_frame_count > p->top_depth) FAIL("accepted frames past the depth");
    for (uint32_t f = 0; f < p->top_frame_count; f++) {
        uint32_t m = p->top_frames[f].module;
        if (m != MB_STATSPAGE_NO_MODULE && m >= p->top_module_count)
            FAIL("accepted frame %u in module %u of %u", f, m, p->top_module_count);
    }
    for (uint32_t m = 0; m < p->top_module_count; m++)
        if (!terminated(p->top_modules[m], MB_STATSPAGE_MODULE_PATH) || p->top_modules[m][0] != '/')
            FAIL("accepted module %u that is not an absolute path", m);
    check_term(p->comm, "comm");
    check_term(p->policy_name, "policy");
    check_term(p->action, "action");
    check_term(p->state, "state");
    check_term(p->footprint_source, "footprint source");
    check_term(p->limit_source, "limit source");
}

static void check_top_site(const struct live_process *lp) {
    struct live_top_site t;
    live_top_site(lp, &t);
    if (t.frame_count > MB_STATSPAGE_TOP_FRAMES) FAIL("top site: %zu frames", t.frame_count);
    if (!terminated(t.label, sizeof t.label)) FAIL("top site: label without its NUL");
    check_term(t.label, "top site label");
    for (size_t f = 0; f < t.frame_count; f++) {
        const struct live_top_frame *fr = &t.frames[f];
        if (!terminated(fr->name, sizeof fr->name) || !terminated(fr->file, sizeof fr->file))
            FAIL("top site: frame %zu without its NUL", f);
        if (fr->module == NULL) FAIL("top site: frame %zu without a module string", f);
        check_term(fr->name, "frame name");
        check_term(fr->module, "frame module");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("fuzz_livepage", MFD_CLOEXEC);
        if (fd < 0) FAIL("memfd_create: %s", strerror(errno));
    }
    if (size > MB_STATSPAGE_FILE_BYTES) size = MB_STATSPAGE_FILE_BYTES;
    uint32_t named = 1;
    if (size >= 16) memcpy(&named, data + 12, sizeof named);
    pid_t pid = (pid_t)named;

    struct mb_statspage page, again;
    struct live_error e, e2;
    enum live_status s = live_check(data, size, pid, &page, &e);
    if (s != LIVE_OK && s != LIVE_NONE && s != LIVE_BAD) FAIL("live_check returned %d", (int)s);
    if (!terminated(e.why, sizeof e.why)) FAIL("a reason without its NUL");
    if (s == LIVE_OK) check_accepted(&page);

    /* The same bytes as a file.  A sequence counter left odd is read again
     * and again until live_read_fd gives up: that costs time, not a finding. */
    uint64_t seq = 0;
    size_t seq_at = offsetof(struct mb_statspage, seq);
    if (size >= seq_at + sizeof seq) memcpy(&seq, data + seq_at, sizeof seq);
    if ((seq & 1) == 0) {
        if (ftruncate(fd, 0) != 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
            FAIL("writing the memfd: %s", strerror(errno));
        enum live_status s2 = live_read_fd(fd, pid, &again, &e2);
        if (s2 != s) FAIL("live_read_fd says %d, live_check %d", (int)s2, (int)s);
        if (s == LIVE_OK && memcmp(&page, &again, sizeof page) != 0)
            FAIL("live_read_fd copied another page than live_check");
    }

    if (s == LIVE_OK) {
        /* The process is the one the page names: a module path is handed to
         * the symbolizer only when that process maps it (mostly there is no
         * such process, and nothing is opened). */
        struct live_process lp = {.pid = pid, .uid = getuid(), .page = page};
        check_top_site(&lp);
    }
    return 0;
}
