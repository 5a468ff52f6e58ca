/*
 * wisp guest allocator core: a boundary-tag heap with segregated free lists.
 *
 * Plain C with no dependency on the guest environment, so the same file is linked
 * into guests (behind malloc/free) and into host unit tests.
 *
 * Design: every chunk carries a 16-byte header (the previous chunk's size when
 * that one is free, and its own size with IN_USE / PREV_IN_USE bits). Free chunks
 * sit in one of WISP_HEAP_BINS doubly linked lists: exact-size bins up to 1 KiB,
 * then four bins per power of two; a bitmap finds the next non-empty bin in O(1).
 * Freed chunks merge with free neighbours at once, so two free chunks are never
 * adjacent. Memory never handed out yet ("top") is carved from lazily, which keeps
 * the guest's touched memory (and so its snapshot) as small as its peak use.
 */
#ifndef WISP_HEAP_H
#define WISP_HEAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WISP_HEAP_BINS 256
#define WISP_HEAP_ALIGN 16

struct wisp_heap_chunk;

struct wisp_heap {
    uintptr_t base;       /* first chunk */
    uintptr_t end;        /* end of the managed region */
    uintptr_t top;        /* start of memory never handed out (or given back at the end) */
    uintptr_t high_water; /* highest address ever allocated: memory above is still zero */
    size_t in_use;        /* bytes in allocated chunks, headers included */
    size_t peak_in_use;
    size_t free_chunks;   /* chunks in bins */
    uint64_t bin_map[WISP_HEAP_BINS / 64];
    struct wisp_heap_chunk *bins[WISP_HEAP_BINS];
    /* Called on a corrupt or double free; must not return in a guest. NULL: ignore. */
    void (*on_corruption)(const char *what);
};

struct wisp_heap_stats {
    size_t capacity;    /* bytes the heap manages */
    size_t in_use;      /* bytes allocated now (headers included) */
    size_t peak_in_use; /* most bytes ever allocated at once */
    size_t touched;     /* bytes below the high-water mark: memory written at least once */
    size_t free_chunks; /* fragments waiting in free lists */
};

/* Manages [start, start + len). The memory must be zero (fresh guest memory is)
 * for wisp_heap_alloc_zeroed to skip clearing untouched pages. */
void wisp_heap_init(struct wisp_heap *h, void *start, size_t len);

/* malloc semantics: 16-byte aligned, NULL when the heap cannot satisfy `size`. */
void *wisp_heap_alloc(struct wisp_heap *h, size_t size);

/* calloc semantics (count * size checked for overflow). */
void *wisp_heap_alloc_zeroed(struct wisp_heap *h, size_t count, size_t size);

/* `align` must be a power of two; NULL if it is not or memory is short. */
void *wisp_heap_alloc_aligned(struct wisp_heap *h, size_t align, size_t size);

/* free semantics: NULL is ignored; an invalid pointer or a double free calls
 * on_corruption. */
void wisp_heap_free(struct wisp_heap *h, void *p);

/* realloc semantics: grows in place when the next chunk is free, shrinks in place.
 * realloc(p, 0) frees p and returns NULL. On failure p is left untouched. */
void *wisp_heap_realloc(struct wisp_heap *h, void *p, size_t size);

/* Bytes usable at p (at least what was requested). */
size_t wisp_heap_usable_size(const void *p);

struct wisp_heap_stats wisp_heap_stats(const struct wisp_heap *h);

/* Walks every chunk and checks the heap's invariants. Returns NULL when they
 * hold, otherwise a description of the first violation (for tests). */
const char *wisp_heap_check(const struct wisp_heap *h);

#ifdef __cplusplus
}
#endif

#endif /* WISP_HEAP_H */
