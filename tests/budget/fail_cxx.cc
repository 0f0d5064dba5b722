// MEMBUDGET_ACTION=fail in C++: `new` grows 1 MiB blocks until it throws
// std::bad_alloc; the handler allocates (a std::string: the emergency reserve
// lets the error path allocate), half of the blocks are deleted, and `new`
// succeeds again: the process lives on and exits 0.  Prints
//   caught bad_alloc after N MiB (what: ...)
//   recovered yes
// and exits 1 if `new` never failed, 2 if it failed again after freeing.
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

static const size_t kBlock = 1 << 20;
static const size_t kMaxBlocks = 4096;

int main() {
    std::vector<char *> blocks;
    blocks.reserve(kMaxBlocks);
    std::string message;
    bool caught = false;
    try {
        while (blocks.size() < kMaxBlocks) {
            char *p = new char[kBlock];
            std::memset(p, 7, kBlock);
            blocks.push_back(p);
        }
    } catch (const std::bad_alloc &e) {
        caught = true;
        message = "caught bad_alloc after " + std::to_string(blocks.size()) + " MiB (what: " +
                  e.what() + ")";
    }
    if (!caught) {
        std::printf("never refused\n");
        return 1;
    }
    std::printf("%s\n", message.c_str());
    size_t n = blocks.size();
    for (size_t i = 0; i < n / 2; i++) delete[] blocks[i];
    size_t again = 0;
    try {
        for (; again < n / 4; again++) {
            char *p = new char[kBlock];
            std::memset(p, 9, kBlock);
            blocks[again] = p;
        }
    } catch (const std::bad_alloc &) {
        std::printf("refused again after %zu MiB\n", again);
    }
    std::printf("recovered %s\n", again == n / 4 ? "yes" : "no");
    return again == n / 4 ? 0 : 2;
}
