/* The footprint counter (DESIGN §3): every byte the allocator commits and every
 * charged application mapping, kept with one atomic add per page or span.
 * Layer 0: it calls nothing of ours; the pressure code above registers a
 * handler that runs when a charge crosses the next threshold.  The breakdown by
 * kind (pages, spans, mappings, metadata) is kept by each owner under its own
 * lock, so a charge costs one atomic add and a compare.
 *
 * Rule for callers: never charge while holding an allocator lock; the pressure
 * handler a charge may run releases memory and takes those locks. */
#ifndef MEMBUDGET_POLICY_BUDGET_H
#define MEMBUDGET_POLICY_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Adds `bytes` to the counter.  Returns false when the charge is refused (the
 * pressure handler decided the allocation must fail); the counter is then
 * unchanged and the caller must undo its commit. */
bool budget_charge(size_t bytes);
void budget_uncharge(size_t bytes);
/* Adds `bytes` unless that reaches the next threshold while a handler is set;
 * never runs the handler.  For charges made under another allocator's locks
 * (the jemalloc backend's extent hooks): a false return asks the caller to
 * fail, leave those locks, and settle with budget_charge. */
bool budget_try_charge(size_t bytes);
/* Adds bytes that are already committed and cannot be refused (settling a
 * charge whose exact size was only known after the fact). */
void budget_charge_committed(size_t bytes);

uint64_t budget_counter(void);
/* The highest counter a charge that stood left (budget_charge granted it,
 * budget_try_charge took it, or it was committed); a refused charge never
 * moves it, so it stays within what the process held. */
uint64_t budget_peak(void);

/* Called with the counter after an add that reached the threshold; returns
 * whether the charge may stand.  Set by the pressure code; none means no limit. */
typedef bool (*budget_threshold_fn)(uint64_t counter, size_t charge);
void budget_set_threshold(uint64_t threshold, budget_threshold_fn fn);

#endif
