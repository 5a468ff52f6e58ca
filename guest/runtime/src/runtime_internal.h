/* Runtime-private hooks between the runtime's own files. */
#ifndef WISP_RUNTIME_INTERNAL_H
#define WISP_RUNTIME_INTERNAL_H

#include <stddef.h>

/* Hands [start, start + len) to malloc. Called once before constructors run. */
void wisp_malloc_init(void *start, size_t len);

#endif
