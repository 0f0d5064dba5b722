/* Control of a running process from outside (DESIGN §11): `membudget state`,
 * `pages`, `release` and `dump` write a request into the control area of the
 * process's live page (policy/statspage.h, struct mb_statspage_control, which
 * also gives the protocol), and the process's control thread acts on it.
 *
 * The thread is the library's one thread (policy/monitor.c,
 * mb_monitor_start_thread): with MEMBUDGET_CONTROL=on (the default) it
 * republishes the page at least every MB_STATSPAGE_PUBLISH_NS, so an idle
 * process's figures stay fresh, and waits for requests on the page's futex
 * word in between; with MEMBUDGET_MONITOR=thread the same thread also runs the
 * monitor.  Everything a commander wrote is copied once and checked before
 * anything is done with it. */
#ifndef MEMBUDGET_POLICY_CONTROL_H
#define MEMBUDGET_POLICY_CONTROL_H

#include <stdint.h>

/* Waits at most timeout_ns for a request (returns at once when one is
 * pending), on the page's futex word; sleeps when the process has no page. */
void mb_control_wait(uint64_t timeout_ns);

/* Serves the pending request, if there is one: copies and checks it, acts,
 * republishes the page, answers and wakes the commander. */
void mb_control_serve(void);

#endif
