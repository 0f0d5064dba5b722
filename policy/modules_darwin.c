/* The loaded modules on Darwin (policy/modules.h): dyld's image list
 * (_dyld_image_count, _dyld_get_image_header, _dyld_get_image_name and the
 * slide) and each image's Mach-O load commands: its segments give the address
 * ranges, LC_UUID the identity (the build-id field; atos and dsymutil match
 * dSYMs by it).  The images' headers are mapped read-only by dyld for as long
 * as they are loaded.  No malloc and no lock of ours: callers serialize. */
#include <mach-o/dyld.h>
#include <mach-o/loader.h>
#include <string.h>

#include "policy/modules.h"

/* Calls fn for each 64-bit segment of an image that maps memory. */
static void segments_each(const struct mach_header_64 *mh,
                          void (*fn)(void *ctx, const struct segment_command_64 *seg),
                          void *ctx) {
    const char *lc = (const char *)(mh + 1);
    for (uint32_t i = 0; i < mh->ncmds; i++) {
        const struct load_command *cmd = (const void *)lc;
        if (cmd->cmdsize < sizeof *cmd) return;
        if (cmd->cmd == LC_SEGMENT_64) {
            const struct segment_command_64 *seg = (const void *)lc;
            if (seg->vmsize != 0 && strcmp(seg->segname, SEG_PAGEZERO) != 0) fn(ctx, seg);
        }
        lc += cmd->cmdsize;
    }
}

static const struct mach_header_64 *image_header(uint32_t i) {
    const struct mach_header *h = _dyld_get_image_header(i);
    if (h == NULL || h->magic != MH_MAGIC_64) return NULL;
    return (const struct mach_header_64 *)(const void *)h;
}

struct maps_ctx {
    void (*fn)(void *ctx, const struct mb_maps_line *line);
    void *ctx;
    const char *path;
    intptr_t slide;
};

static void maps_segment(void *arg, const struct segment_command_64 *seg) {
    struct maps_ctx *m = arg;
    struct mb_maps_line line = {
        .start = seg->vmaddr + (uint64_t)m->slide,
        .end = seg->vmaddr + (uint64_t)m->slide + seg->vmsize,
        .offset = seg->fileoff,
        .inode = 0,
        .path = m->path,
    };
    m->fn(m->ctx, &line);
}

/* One line per segment of each loaded image: the file-backed mappings that
 * /proc/self/maps gives on Linux (anonymous memory is not listed). */
bool mb_maps_each(char *buf, size_t cap, void (*fn)(void *ctx, const struct mb_maps_line *line),
                  void *ctx) {
    (void)buf, (void)cap;
    uint32_t count = _dyld_image_count();
    for (uint32_t i = 0; i < count; i++) {
        const struct mach_header_64 *mh = image_header(i);
        const char *path = _dyld_get_image_name(i);
        if (mh == NULL || path == NULL) continue;
        struct maps_ctx m = {fn, ctx, path, _dyld_get_image_vmaddr_slide(i)};
        segments_each(mh, maps_segment, &m);
    }
    return true;
}

struct range_ctx {
    uint64_t low, high;
};

static void range_segment(void *arg, const struct segment_command_64 *seg) {
    struct range_ctx *r = arg;
    if (seg->vmaddr < r->low) r->low = seg->vmaddr;
    if (seg->vmaddr + seg->vmsize > r->high) r->high = seg->vmaddr + seg->vmsize;
}

static void image_uuid(const struct mach_header_64 *mh, struct mb_module *m) {
    const char *lc = (const char *)(mh + 1);
    m->build_id_len = 0;
    for (uint32_t i = 0; i < mh->ncmds; i++) {
        const struct load_command *cmd = (const void *)lc;
        if (cmd->cmdsize < sizeof *cmd) return;
        if (cmd->cmd == LC_UUID && cmd->cmdsize >= sizeof(struct uuid_command)) {
            const struct uuid_command *u = (const void *)lc;
            memcpy(m->build_id, u->uuid, sizeof u->uuid);
            m->build_id_len = sizeof u->uuid;
            return;
        }
        lc += cmd->cmdsize;
    }
}

/* dyld's order is load order, not address order: the images are emitted
 * lowest address first by selecting, each round, the lowest not yet given. */
unsigned mb_modules_each(void (*fn)(void *ctx, const struct mb_module *m), void *ctx) {
    uint32_t count = _dyld_image_count();
    uintptr_t last = 0;
    unsigned given = 0;
    for (;;) {
        struct mb_module best = {0};
        const struct mach_header_64 *best_mh = NULL;
        for (uint32_t i = 0; i < count; i++) {
            const struct mach_header_64 *mh = image_header(i);
            const char *path = _dyld_get_image_name(i);
            if (mh == NULL || path == NULL) continue;
            intptr_t slide = _dyld_get_image_vmaddr_slide(i);
            struct range_ctx r = {UINT64_MAX, 0};
            segments_each(mh, range_segment, &r);
            if (r.high <= r.low) continue;
            uintptr_t start = (uintptr_t)(r.low + (uint64_t)slide);
            if ((given > 0 && start <= last) || (best_mh != NULL && start >= best.start)) continue;
            best = (struct mb_module){.path = path, .bias = (uintptr_t)slide, .start = start,
                                      .end = (uintptr_t)(r.high + (uint64_t)slide)};
            best_mh = mh;
        }
        if (best_mh == NULL) return given;
        image_uuid(best_mh, &best);
        fn(ctx, &best);
        last = best.start;
        given++;
    }
}
