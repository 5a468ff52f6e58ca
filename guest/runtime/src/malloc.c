/* malloc and friends over the runtime's one heap (wisp/heap.h). */
#include <errno.h>
#include <stdlib.h>

#include "wisp/guest.h"
#include "wisp/heap.h"
#include "runtime_internal.h"

static struct wisp_heap g_heap;

static void heap_corrupted(const char *what) { wisp_abort(what); }

void wisp_malloc_init(void *start, size_t len) {
    wisp_heap_init(&g_heap, start, len);
    g_heap.on_corruption = heap_corrupted;
}

struct wisp_heap_stats wisp_malloc_stats(void) { return wisp_heap_stats(&g_heap); }

void *malloc(size_t size) {
    void *p = wisp_heap_alloc(&g_heap, size);
    if (!p) errno = ENOMEM;
    return p;
}

void *calloc(size_t count, size_t size) {
    void *p = wisp_heap_alloc_zeroed(&g_heap, count, size);
    if (!p) errno = ENOMEM;
    return p;
}

void *realloc(void *p, size_t size) {
    void *q = wisp_heap_realloc(&g_heap, p, size);
    if (!q && size) errno = ENOMEM;
    return q;
}

void *aligned_alloc(size_t align, size_t size) {
    void *p = wisp_heap_alloc_aligned(&g_heap, align, size);
    if (!p) errno = ENOMEM;
    return p;
}

int posix_memalign(void **out, size_t align, size_t size) {
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = wisp_heap_alloc_aligned(&g_heap, align, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void free(void *p) { wisp_heap_free(&g_heap, p); }

size_t malloc_usable_size(void *p) { return wisp_heap_usable_size(p); }
