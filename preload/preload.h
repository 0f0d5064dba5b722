/* The ABI layer (DESIGN §7): what the exported symbols share. */
#ifndef MEMBUDGET_PRELOAD_H
#define MEMBUDGET_PRELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MB_EXPORT __attribute__((visibility("default")))

/* preload/mmap.c: the application's charged anonymous mappings. */
/* wait false: bounded locking, for the death dump (alloc_stats). */
uint64_t mmap_charged_bytes(bool wait);
void mmap_atfork_prepare(void);
void mmap_atfork_parent(void);
void mmap_atfork_child(void);

/* preload/public.c: every figure of struct membudget_stats. */
struct membudget_stats;
void mb_fill_stats(struct membudget_stats *st, bool wait);

/* preload/init.c */
extern int mb_verbose;

#endif
