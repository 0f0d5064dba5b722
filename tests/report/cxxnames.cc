// C++ names in the report (tests/report/run.py): writes DIR/cxx.json with
// membudget_dump() (found with dlsym) after three sites leaked, every
// allocation sampled (MEMBUDGET_SAMPLE=1):
//   shapes::Grid<int>::grow(unsigned long)  through an always-inlined helper,
//       make_cells, that calls operator new[]: a mangled name, an inlined frame
//   shapes::deep(int, unsigned long)  recursing 40 deep before operator new:
//       a stack longer than the 32 frames the writer keeps
//   leak_plain  a C-linkage function calling malloc: stays as it is
// Built with -O1 -g -fno-omit-frame-pointer; grow, deep and leak_plain are
// never inlined themselves.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

static void *volatile sink;

namespace shapes {

__attribute__((always_inline)) static inline char *make_cells(unsigned long n) {
    char *p = new char[n];
    std::memset(p, 1, n);
    return p;
}

template <typename T> struct Grid { __attribute__((noinline)) void grow(unsigned long n); };

template <typename T> __attribute__((noinline)) void Grid<T>::grow(unsigned long n) {
    sink = make_cells(n);
}

template struct Grid<int>;

__attribute__((noinline)) void deep(int depth, unsigned long n) {
    if (depth > 0) {
        deep(depth - 1, n);
        sink = nullptr; // not a tail call
        return;
    }
    char *p = new char[n];
    std::memset(p, 2, n);
    sink = p;
}

} // namespace shapes

extern "C" __attribute__((noinline)) void leak_plain(unsigned long n) {
    void *p = std::malloc(n);
    std::memset(p, 3, n);
    sink = p;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: cxxnames DIR\n");
        return 2;
    }
    auto dump = reinterpret_cast<int (*)(const char *)>(dlsym(RTLD_DEFAULT, "membudget_dump"));
    if (dump == nullptr) {
        std::fprintf(stderr, "cxxnames: run it with the library preloaded\n");
        return 2;
    }
    shapes::Grid<int> grid;
    for (int i = 0; i < 64; i++) grid.grow(64 << 10);        // 4 MiB
    for (int i = 0; i < 16; i++) shapes::deep(40, 64 << 10); // 1 MiB
    for (int i = 0; i < 8; i++) leak_plain(64 << 10);        // 512 KiB
    char path[4096];
    std::snprintf(path, sizeof path, "%s/cxx.json", argv[1]);
    if (dump(path) != 0) {
        std::perror(path);
        return 1;
    }
    return 0;
}
