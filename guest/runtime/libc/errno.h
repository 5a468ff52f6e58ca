/* wisp guest libc subset: <errno.h> (one vCPU, one thread: a plain global). */
#ifndef WISP_LIBC_ERRNO_H
#define WISP_LIBC_ERRNO_H

#ifdef __cplusplus
extern "C" {
#endif

extern int errno;

#ifdef __cplusplus
}
#endif

#define EPERM 1
#define ENOENT 2
#define EIO 5
#define EBADF 9
#define EAGAIN 11
#define ENOMEM 12
#define EACCES 13
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define EINVAL 22
#define ENOSPC 28
#define ERANGE 34
#define ENOSYS 38
#define EMSGSIZE 90
#define ETIMEDOUT 110

#endif
