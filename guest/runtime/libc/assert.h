/* wisp guest libc subset: <assert.h>. A failed assertion ends the VM through the
 * abort hypercall with the expression, file and line in the instance log. */
#ifndef WISP_LIBC_ASSERT_H
#define WISP_LIBC_ASSERT_H

#ifdef __cplusplus
extern "C" {
#endif

__attribute__((noreturn)) void __wisp_assert_fail(const char *expr, const char *file, int line,
                                                  const char *func);

#ifdef __cplusplus
}
#endif

#endif

#undef assert
#ifdef NDEBUG
#define assert(expr) ((void)0)
#else
#define assert(expr) ((expr) ? (void)0 : __wisp_assert_fail(#expr, __FILE__, __LINE__, __func__))
#endif
#if !defined(__cplusplus) && !defined(static_assert)
#define static_assert _Static_assert
#endif
