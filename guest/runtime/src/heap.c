/* wisp guest allocator core (see wisp/heap.h for the design). */
#include "wisp/heap.h"

#include <string.h>

#define IN_USE ((size_t)1)
#define PREV_IN_USE ((size_t)2)
#define FLAGS (IN_USE | PREV_IN_USE)
#define HEADER_SIZE ((size_t)16)
#define MIN_CHUNK ((size_t)32)
#define SMALL_MAX ((size_t)1024) /* chunks up to this size have exact-size bins */
#define SMALL_BINS (SMALL_MAX / WISP_HEAP_ALIGN - 1)

struct wisp_heap_chunk {
    size_t prev_size; /* valid only while the previous chunk is free */
    size_t head;      /* size | IN_USE | PREV_IN_USE */
    /* free chunks only: */
    struct wisp_heap_chunk *next;
    struct wisp_heap_chunk *prev;
};
typedef struct wisp_heap_chunk chunk_t;

static size_t chunk_size(const chunk_t *c) { return c->head & ~FLAGS; }
static chunk_t *chunk_at(uintptr_t addr) { return (chunk_t *)addr; }
static chunk_t *next_chunk(const chunk_t *c) { return chunk_at((uintptr_t)c + chunk_size(c)); }
static void *payload(chunk_t *c) { return (char *)c + HEADER_SIZE; }
static chunk_t *chunk_of(const void *p) { return chunk_at((uintptr_t)p - HEADER_SIZE); }

static void corrupt(struct wisp_heap *h, const char *what) {
    if (h->on_corruption) h->on_corruption(what);
}

/* Chunk size for a request, or 0 when the request cannot be represented. */
static size_t request_to_chunk(size_t size) {
    if (size > SIZE_MAX / 2) return 0;
    size_t need = (size + HEADER_SIZE + WISP_HEAP_ALIGN - 1) & ~(size_t)(WISP_HEAP_ALIGN - 1);
    return need < MIN_CHUNK ? MIN_CHUNK : need;
}

static unsigned bin_index(size_t size) {
    if (size <= SMALL_MAX) return (unsigned)(size / WISP_HEAP_ALIGN - 2);
    unsigned log2 = 63u - (unsigned)__builtin_clzll((unsigned long long)size);
    unsigned sub = (unsigned)(size >> (log2 - 2)) & 3u;
    unsigned idx = SMALL_BINS + (log2 - 10) * 4 + sub;
    return idx < WISP_HEAP_BINS ? idx : WISP_HEAP_BINS - 1;
}

static void bin_insert(struct wisp_heap *h, chunk_t *c) {
    unsigned idx = bin_index(chunk_size(c));
    c->prev = NULL;
    c->next = h->bins[idx];
    if (c->next) c->next->prev = c;
    h->bins[idx] = c;
    h->bin_map[idx / 64] |= 1ull << (idx % 64);
    h->free_chunks++;
}

static void bin_remove(struct wisp_heap *h, chunk_t *c) {
    unsigned idx = bin_index(chunk_size(c));
    if (c->prev)
        c->prev->next = c->next;
    else
        h->bins[idx] = c->next;
    if (c->next) c->next->prev = c->prev;
    if (!h->bins[idx]) h->bin_map[idx / 64] &= ~(1ull << (idx % 64));
    h->free_chunks--;
}

/* First non-empty bin at or after `idx`, or WISP_HEAP_BINS. */
static unsigned next_nonempty_bin(const struct wisp_heap *h, unsigned idx) {
    while (idx < WISP_HEAP_BINS) {
        uint64_t word = h->bin_map[idx / 64] & (~0ull << (idx % 64));
        if (word) return (idx & ~63u) + (unsigned)__builtin_ctzll(word);
        idx = (idx & ~63u) + 64;
    }
    return WISP_HEAP_BINS;
}

/* Marks a free chunk of `size` at c: header, footer (in the next chunk's
 * prev_size) and the next chunk's PREV_IN_USE bit. The previous chunk is always
 * in use (free neighbours are merged), and the next one is never top. */
static void make_free(struct wisp_heap *h, chunk_t *c, size_t size) {
    c->head = size | PREV_IN_USE;
    chunk_t *n = chunk_at((uintptr_t)c + size);
    n->prev_size = size;
    n->head &= ~PREV_IN_USE;
    bin_insert(h, c);
}

/* c is in use (and counted in in_use) with chunk size >= need: gives the tail
 * back if it is big enough to be a chunk of its own. */
static void trim_tail(struct wisp_heap *h, chunk_t *c, size_t need);

static void account_alloc(struct wisp_heap *h, size_t size) {
    h->in_use += size;
    if (h->in_use > h->peak_in_use) h->peak_in_use = h->in_use;
}

void wisp_heap_init(struct wisp_heap *h, void *start, size_t len) {
    memset(h, 0, sizeof *h);
    uintptr_t base = ((uintptr_t)start + WISP_HEAP_ALIGN - 1) & ~(uintptr_t)(WISP_HEAP_ALIGN - 1);
    uintptr_t end = ((uintptr_t)start + len) & ~(uintptr_t)(WISP_HEAP_ALIGN - 1);
    if (end < base) end = base;
    h->base = h->top = h->high_water = base;
    h->end = end;
}

/* Takes `need` bytes from top; returns NULL if top is too small. */
static chunk_t *carve_top(struct wisp_heap *h, size_t need) {
    if (h->end - h->top < need) return NULL;
    chunk_t *c = chunk_at(h->top);
    /* The chunk before top is always in use (a free one merges into top). */
    c->head = need | IN_USE | PREV_IN_USE;
    h->top += need;
    if (h->top > h->high_water) h->high_water = h->top;
    return c;
}

static chunk_t *take_from_bins(struct wisp_heap *h, size_t need) {
    unsigned idx = bin_index(need);
    chunk_t *found = NULL;
    if (need > SMALL_MAX) {
        /* Large bins hold a range of sizes: best fit within the request's own bin. */
        for (chunk_t *c = h->bins[idx]; c; c = c->next) {
            if (chunk_size(c) >= need && (!found || chunk_size(c) < chunk_size(found))) found = c;
        }
        idx++;
    }
    if (!found) {
        /* Every chunk in a later bin is larger than anything in this one. */
        unsigned next = next_nonempty_bin(h, idx);
        if (next == WISP_HEAP_BINS) return NULL;
        found = h->bins[next];
    }
    bin_remove(h, found);
    found->head |= IN_USE;
    next_chunk(found)->head |= PREV_IN_USE;
    h->in_use += chunk_size(found);
    trim_tail(h, found, need);
    return found;
}

void *wisp_heap_alloc(struct wisp_heap *h, size_t size) {
    size_t need = request_to_chunk(size);
    if (!need) return NULL;
    chunk_t *c = take_from_bins(h, need);
    if (!c) {
        c = carve_top(h, need);
        if (!c) return NULL;
        h->in_use += need;
    }
    if (h->in_use > h->peak_in_use) h->peak_in_use = h->in_use;
    return payload(c);
}

void *wisp_heap_alloc_zeroed(struct wisp_heap *h, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    size_t bytes = count * size;
    uintptr_t zero_from = h->high_water; /* memory at and above this was never written */
    void *p = wisp_heap_alloc(h, bytes);
    if (!p) return NULL;
    uintptr_t start = (uintptr_t)p, stop = start + bytes;
    if (stop > zero_from) stop = zero_from > start ? zero_from : start;
    memset(p, 0, stop - start);
    return p;
}

static void free_chunk(struct wisp_heap *h, chunk_t *c) {
    size_t size = chunk_size(c);
    h->in_use -= size;
    if (!(c->head & PREV_IN_USE)) {
        chunk_t *prev = chunk_at((uintptr_t)c - c->prev_size);
        bin_remove(h, prev);
        size += chunk_size(prev);
        c = prev;
    }
    uintptr_t next = (uintptr_t)c + size;
    if (next == h->top) {
        h->top = (uintptr_t)c;
        return;
    }
    chunk_t *n = chunk_at(next);
    if (!(n->head & IN_USE)) {
        bin_remove(h, n);
        size += chunk_size(n);
        if ((uintptr_t)c + size == h->top) {
            h->top = (uintptr_t)c;
            return;
        }
    }
    make_free(h, c, size);
}

/* A pointer is ours if it is aligned, inside the allocated part of the heap, and
 * its chunk is marked in use with a size that stays inside that part. */
static int valid_in_use(const struct wisp_heap *h, const void *p) {
    uintptr_t addr = (uintptr_t)p;
    if (addr % WISP_HEAP_ALIGN || addr < h->base + HEADER_SIZE || addr >= h->top) return 0;
    const chunk_t *c = chunk_of(p);
    size_t size = chunk_size(c);
    return (c->head & IN_USE) && size >= MIN_CHUNK && size <= h->top - (uintptr_t)c;
}

void wisp_heap_free(struct wisp_heap *h, void *p) {
    if (!p) return;
    if (!valid_in_use(h, p)) {
        corrupt(h, "free(): invalid pointer or double free");
        return;
    }
    free_chunk(h, chunk_of(p));
}

static void trim_tail(struct wisp_heap *h, chunk_t *c, size_t need) {
    size_t size = chunk_size(c);
    if (size - need < MIN_CHUNK) return;
    c->head = need | (c->head & FLAGS);
    chunk_t *rest = chunk_at((uintptr_t)c + need);
    rest->head = (size - need) | IN_USE | PREV_IN_USE;
    free_chunk(h, rest);
}

void *wisp_heap_alloc_aligned(struct wisp_heap *h, size_t align, size_t size) {
    if (align == 0 || (align & (align - 1))) return NULL;
    if (align <= WISP_HEAP_ALIGN) return wisp_heap_alloc(h, size);
    if (size > SIZE_MAX / 2 - align) return NULL;
    /* Over-allocate, then free the misaligned lead (at least MIN_CHUNK long). */
    char *raw = wisp_heap_alloc(h, size + align + MIN_CHUNK);
    if (!raw) return NULL;
    if ((uintptr_t)raw % align == 0) {
        trim_tail(h, chunk_of(raw), request_to_chunk(size));
        return raw;
    }
    uintptr_t aligned = ((uintptr_t)raw + MIN_CHUNK + align - 1) & ~(uintptr_t)(align - 1);
    chunk_t *lead = chunk_of(raw);
    chunk_t *c = chunk_of((void *)aligned);
    size_t lead_size = (uintptr_t)c - (uintptr_t)lead;
    size_t total = chunk_size(lead);
    c->head = (total - lead_size) | IN_USE | PREV_IN_USE;
    lead->head = lead_size | (lead->head & FLAGS);
    free_chunk(h, lead);
    trim_tail(h, c, request_to_chunk(size));
    return (void *)aligned;
}

void *wisp_heap_realloc(struct wisp_heap *h, void *p, size_t size) {
    if (!p) return wisp_heap_alloc(h, size);
    if (size == 0) {
        wisp_heap_free(h, p);
        return NULL;
    }
    if (!valid_in_use(h, p)) {
        corrupt(h, "realloc(): invalid pointer");
        return NULL;
    }
    size_t need = request_to_chunk(size);
    if (!need) return NULL;
    chunk_t *c = chunk_of(p);
    size_t size_now = chunk_size(c);
    if (need <= size_now) {
        trim_tail(h, c, need);
        return p;
    }
    uintptr_t next = (uintptr_t)c + size_now;
    if (next == h->top && h->end - (uintptr_t)c >= need) {
        c->head = need | (c->head & FLAGS);
        h->top = (uintptr_t)c + need;
        if (h->top > h->high_water) h->high_water = h->top;
        account_alloc(h, need - size_now);
        return p;
    }
    if (next != h->top) {
        chunk_t *n = chunk_at(next);
        if (!(n->head & IN_USE) && size_now + chunk_size(n) >= need) {
            bin_remove(h, n);
            size_t merged = size_now + chunk_size(n);
            c->head = merged | (c->head & FLAGS);
            next_chunk(c)->head |= PREV_IN_USE;
            account_alloc(h, merged - size_now);
            trim_tail(h, c, need);
            return p;
        }
    }
    void *q = wisp_heap_alloc(h, size);
    if (!q) return NULL;
    memcpy(q, p, size_now - HEADER_SIZE);
    free_chunk(h, c);
    return q;
}

size_t wisp_heap_usable_size(const void *p) { return p ? chunk_size(chunk_of(p)) - HEADER_SIZE : 0; }

struct wisp_heap_stats wisp_heap_stats(const struct wisp_heap *h) {
    struct wisp_heap_stats s = {
        .capacity = h->end - h->base,
        .in_use = h->in_use,
        .peak_in_use = h->peak_in_use,
        .touched = h->high_water - h->base,
        .free_chunks = h->free_chunks,
    };
    return s;
}

static int in_bin(const struct wisp_heap *h, const chunk_t *c) {
    for (const chunk_t *x = h->bins[bin_index(chunk_size(c))]; x; x = x->next)
        if (x == c) return 1;
    return 0;
}

const char *wisp_heap_check(const struct wisp_heap *h) {
    size_t in_use = 0, free_seen = 0;
    int prev_in_use = 1;
    for (uintptr_t addr = h->base; addr < h->top;) {
        const chunk_t *c = chunk_at(addr);
        size_t size = chunk_size(c);
        if (size < MIN_CHUNK || size % WISP_HEAP_ALIGN) return "chunk size invalid";
        if (size > h->top - addr) return "chunk runs past top";
        if (!!(c->head & PREV_IN_USE) != prev_in_use) return "PREV_IN_USE bit wrong";
        int used = (c->head & IN_USE) != 0;
        if (used) {
            in_use += size;
        } else {
            if (!prev_in_use) return "two adjacent free chunks";
            if (addr + size == h->top) return "free chunk next to top";
            if (chunk_at(addr + size)->prev_size != size) return "free chunk footer wrong";
            if (!in_bin(h, c)) return "free chunk missing from its bin";
            free_seen++;
        }
        prev_in_use = used;
        addr += size;
    }
    if (in_use != h->in_use) return "in_use accounting wrong";
    if (free_seen != h->free_chunks) return "bins hold chunks that are not in the heap";
    for (unsigned i = 0; i < WISP_HEAP_BINS; i++)
        if (!!h->bins[i] != !!(h->bin_map[i / 64] & (1ull << (i % 64)))) return "bin map wrong";
    if (h->top > h->end || h->high_water < h->top) return "top out of range";
    return NULL;
}
