// Freestanding C++ support for wisp guests: operator new/delete over malloc, and
// the few ABI symbols clang emits references to. No exceptions: a plain `new`
// that cannot allocate ends the VM with a message instead of throwing.
#include <new>
#include <stdlib.h>

#include "wisp/guest.h"

namespace std {
const nothrow_t nothrow{};
}

namespace {
void *must_allocate(size_t size) {
    void *p = malloc(size ? size : 1);
    if (!p) wisp_abort("out of memory: operator new");
    return p;
}
void *must_allocate_aligned(size_t size, std::align_val_t align) {
    void *p = aligned_alloc(static_cast<size_t>(align), size ? size : 1);
    if (!p) wisp_abort("out of memory: aligned operator new");
    return p;
}
}  // namespace

void *operator new(size_t size) { return must_allocate(size); }
void *operator new[](size_t size) { return must_allocate(size); }
void *operator new(size_t size, const std::nothrow_t &) noexcept { return malloc(size ? size : 1); }
void *operator new[](size_t size, const std::nothrow_t &) noexcept { return malloc(size ? size : 1); }
void *operator new(size_t size, std::align_val_t align) { return must_allocate_aligned(size, align); }
void *operator new[](size_t size, std::align_val_t align) { return must_allocate_aligned(size, align); }
void *operator new(size_t size, std::align_val_t align, const std::nothrow_t &) noexcept {
    return aligned_alloc(static_cast<size_t>(align), size ? size : 1);
}
void *operator new[](size_t size, std::align_val_t align, const std::nothrow_t &) noexcept {
    return aligned_alloc(static_cast<size_t>(align), size ? size : 1);
}
void operator delete(void *p) noexcept { free(p); }
void operator delete[](void *p) noexcept { free(p); }
void operator delete(void *p, size_t) noexcept { free(p); }
void operator delete[](void *p, size_t) noexcept { free(p); }
void operator delete(void *p, std::align_val_t) noexcept { free(p); }
void operator delete[](void *p, std::align_val_t) noexcept { free(p); }
void operator delete(void *p, size_t, std::align_val_t) noexcept { free(p); }
void operator delete[](void *p, size_t, std::align_val_t) noexcept { free(p); }
void operator delete(void *p, const std::nothrow_t &) noexcept { free(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { free(p); }

extern "C" {
// A pure virtual call means a broken object: end the VM with a name for it.
void __cxa_pure_virtual() { wisp_abort("pure virtual function called"); }
// Static destructors never run: a guest ends by halting, not by returning.
int __cxa_atexit(void (*)(void *), void *, void *) { return 0; }
void *__dso_handle = nullptr;
}
