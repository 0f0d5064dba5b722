/* The fixed cost of a small program under the library (issue 19): a program
 * that allocates ~100 blocks of 16-808 bytes (24 size classes) and then looks at
 * itself.  Run preloaded with sampling made vanishingly rare (MEMBUDGET_SAMPLE=1T:
 * no sample is taken, so nothing needs the unwinder):
 *   - libm is not mapped: the jemalloc backend's log/exp/round are the library's;
 *   - libunwind's code is mapped but none of it resident: it is set up at the
 *     first sample, not at start;
 *   - the budget's counter stays near what is touched: size-class pages are
 *     charged 16 KiB at a time and metadata 64 KiB at a time (1.8 MiB before).
 * Resident sizes of file pages depend on the page cache (fault-around, large
 * folios), so they are measured by make bench (micro/tiny), not asserted here. */
#include <fcntl.h>
#include <unistd.h>

#include <stdbool.h>

#include "harness.h"
#include "membudget.h"

/* Resolved from the preloaded library; NULL when run without it. */
#pragma weak membudget_stats

#define BLOCKS 100
#define COUNTER_MAX ((uint64_t)768 << 10)

static char smaps[1 << 20];

/* /proc/self/smaps, read whole with plain system calls. */
static size_t read_smaps(void) {
    int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    size_t n = 0;
    for (ssize_t r; n < sizeof smaps - 1 && (r = read(fd, smaps + n, sizeof smaps - 1 - n)) > 0;)
        n += (size_t)r;
    close(fd);
    smaps[n] = '\0';
    return n;
}

/* Rss in kB of the first mapping whose header line holds `perm` and `name`;
 * -1 when there is none.  Header lines are "lo-hi perm offset dev inode path",
 * field lines "Name:   value". */
static long mapping_rss(const char *perm, const char *name) {
    bool in = false;
    for (char *line = smaps; *line != '\0';) {
        char *eol = strchr(line, '\n');
        if (eol != NULL) *eol = '\0';
        /* Addresses are lower-case hex; field names start with a capital. */
        if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f'))
            in = strstr(line, perm) != NULL && strstr(line, name) != NULL;
        long rss = -1;
        if (in && strncmp(line, "Rss:", 4) == 0) rss = strtol(line + 4, NULL, 10);
        if (eol != NULL) *eol = '\n';
        if (rss >= 0) return rss;
        if (eol == NULL) break;
        line = eol + 1;
    }
    return -1;
}

static void *block[BLOCKS];
static size_t block_size[BLOCKS];

static void allocate(void) {
    uint64_t state = 19;
    for (int i = 0; i < BLOCKS; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        block_size[i] = 16 + 8 * (size_t)((state >> 33) % 100);
        block[i] = malloc(block_size[i]);
        if (block[i]) memset(block[i], i, block_size[i]);
    }
}

static void test_no_libm(void) {
    expect_true(read_smaps() > 0, "/proc/self/smaps read");
    expect_true(strstr(smaps, "/libm.so") == NULL, "libm is mapped into a preloaded process");
}

static void test_unwinder_untouched(void) {
    long rss = mapping_rss("r-xp", "/libunwind");
    if (rss < 0) {
        expect_true(strstr(smaps, "/libunwind") == NULL, "libunwind mapped but its code not found");
        return; /* a build without libunwind (macOS): nothing to check */
    }
    expect_true(rss == 0, "libunwind's code has %ld kB resident before any sample", rss);
}

static void test_counter_near_touched(void) {
    struct membudget_stats st;
    memset(&st, 0, sizeof st);
    expect_true(&membudget_stats != NULL, "the library is preloaded");
    if (&membudget_stats == NULL) return;
    membudget_stats(&st, sizeof st);
    expect_true(st.pages_in_use >= 20, "%" PRIu64 " pages in use for 24 classes", st.pages_in_use);
    expect_true(st.counter_bytes <= COUNTER_MAX,
                "counter %" PRIu64 " bytes for ~40 KiB in %" PRIu64 " pages (at most %" PRIu64 ")",
                st.counter_bytes, st.pages_in_use, COUNTER_MAX);
}

int main(void) {
    allocate();
    for (int i = 0; i < BLOCKS; i++) expect_ptr_not_null(block[i], "block %d", i);
    RUN(test_no_libm);
    RUN(test_unwinder_untouched);
    RUN(test_counter_near_touched);
    for (int i = 0; i < BLOCKS; i++) free(block[i]);
    return harness_finish();
}
