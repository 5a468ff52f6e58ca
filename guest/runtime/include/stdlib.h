/* wisp guest libc subset: <stdlib.h>. */
#ifndef WISP_LIBC_STDLIB_H
#define WISP_LIBC_STDLIB_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

int atoi(const char *s);
__attribute__((noreturn)) void abort(void);

#ifdef __cplusplus
}
#endif

#endif
