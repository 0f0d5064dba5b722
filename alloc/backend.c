/* The backends of this build and the choice among them (alloc/backend.h).
 * A new backend is its own file, defining its struct alloc_backend, and one
 * entry in the table below. */
#include <string.h>

#include "alloc/internal.h"

extern const struct alloc_backend alloc_backend_native; /* alloc/native.c */
#ifdef MB_HAVE_JEMALLOC
extern const struct alloc_backend alloc_backend_jemalloc; /* alloc/jemalloc.c */
#endif

/* The first is the default, and serves until the constructor chooses. */
static const struct alloc_backend *const backends[] = {
    &alloc_backend_native,
#ifdef MB_HAVE_JEMALLOC
    &alloc_backend_jemalloc, /* libjemalloc-dev was there at build time */
#endif
};

/* A backend the configuration names but this build left out. */
static const char *absent(const char *name) {
    if (strcmp(name, "jemalloc") == 0)
        return "this build has no jemalloc (built without libjemalloc-dev)";
    return "this build has no such backend";
}

const char *alloc_backend_choose(const char *name) {
    const char *why = absent(name);
    for (size_t i = 0; i < sizeof backends / sizeof *backends; i++) {
        if (strcmp(backends[i]->name, name) != 0) continue;
        why = backends[i]->start();
        /* Before main, with no other thread: no call can see the table half
         * written. */
        if (why == NULL) alloc_backend = *backends[i];
        break;
    }
    /* Chosen once: from now on the table only changes if something writes
     * where it must not, and that faults here instead of redirecting every
     * call.  A failure leaves it writable, as it was. */
    os_protect_readonly(&alloc_backend_page, sizeof alloc_backend_page);
    return why;
}

bool alloc_backend_is_default(void) { return strcmp(alloc_backend.name, backends[0]->name) == 0; }
