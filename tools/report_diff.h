/* membudget report --diff (tools/report_diff.c): two reports' sites by growth. */
#ifndef MEMBUDGET_TOOLS_REPORT_DIFF_H
#define MEMBUDGET_TOOLS_REPORT_DIFF_H

#include "tools/report_model.h"

enum rp_diff_form { RP_DIFF_TEXT, RP_DIFF_FOLDED, RP_DIFF_JSON };

/* The sites of old and new (both loaded and symbolized) matched by stack,
 * most grown first, to stdout; false when out of memory.  max_sites and
 * max_frames bound the text (0: all). */
bool rp_print_diff(const struct rp_report *old, const struct rp_report *new, enum rp_diff_form form,
                   size_t max_sites, size_t max_frames);

#endif
