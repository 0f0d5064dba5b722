// A C++ process whose largest allocation site is a member of a class template
// in a namespace (tests/livepage/run.py, case cxx_names): `membudget stat` and
// `membudget top` must name it by its demangled name.
//
//   cxxsite STEP_KIB MAX_MIB
//
// Allocates STEP_KIB at a time, keeping everything, until MAX_MIB: of every
// four steps, three through store::Arena<store::Block>::grow(unsigned long)
// (with ::operator new, so that the innermost frame is libstdc++'s
// operator new(unsigned long)) and one through store::spare(unsigned long)
// (with malloc).  Prints "done PID" then, and exits normally on SIGTERM or
// SIGINT.  Built with -O1 -g -fno-omit-frame-pointer; grow and spare are never
// inlined.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <unistd.h>

namespace store {

struct Block {
    char bytes[64];
};

template <typename T> struct Arena {
    __attribute__((noinline)) void *grow(unsigned long n);
};

template <typename T> __attribute__((noinline)) void *Arena<T>::grow(unsigned long n) {
    void *p = ::operator new(n); // the largest site
    std::memset(p, 1, n);
    __asm__ volatile("" ::: "memory"); // not a tail call
    return p;
}

template struct Arena<Block>;

__attribute__((noinline)) void *spare(unsigned long n) {
    void *p = std::malloc(n);
    if (p != nullptr) std::memset(p, 2, n);
    __asm__ volatile("" ::: "memory");
    return p;
}

} // namespace store

static volatile std::sig_atomic_t stop;
static void *volatile kept[4096];

static void on_signal(int) { stop = 1; }

int main(int argc, char **argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: cxxsite STEP_KIB MAX_MIB\n");
        return 2;
    }
    unsigned long step = std::strtoul(argv[1], nullptr, 10) << 10;
    unsigned long max = std::strtoul(argv[2], nullptr, 10) << 20;
    if (step == 0 || max / step > sizeof kept / sizeof kept[0]) {
        std::fprintf(stderr, "cxxsite: at most %zu steps\n", sizeof kept / sizeof kept[0]);
        return 2;
    }
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    store::Arena<store::Block> arena;
    unsigned long total = 0;
    for (unsigned long i = 0; !stop && total + step <= max; i++) {
        void *p = i % 4 == 3 ? store::spare(step) : arena.grow(step);
        if (p == nullptr) {
            std::fprintf(stderr, "cxxsite: no memory at %lu bytes\n", total);
            return 1;
        }
        kept[i] = p;
        total += step;
    }
    std::printf("done %d\n", static_cast<int>(getpid()));
    std::fflush(stdout);
    while (!stop) usleep(20000);
    return 0;
}
