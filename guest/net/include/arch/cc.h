/* lwIP architecture port for wisp guests (x86-64, freestanding). */
#ifndef WISP_LWIP_ARCH_CC_H
#define WISP_LWIP_ARCH_CC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define LWIP_NO_INTTYPES_H 1
#define LWIP_NO_CTYPE_H 1
#define BYTE_ORDER LITTLE_ENDIAN

#define X8_F "02x"
#define U16_F "u"
#define S16_F "d"
#define X16_F "x"
#define U32_F "u"
#define S32_F "d"
#define X32_F "x"
#define SZT_F "zu"

void wisp_lwip_assert(const char *msg, const char *file, int line);
uint32_t wisp_lwip_rand(void);

#define LWIP_PLATFORM_DIAG(x) \
    do {                      \
    } while (0)
#define LWIP_PLATFORM_ASSERT(x) wisp_lwip_assert((x), __FILE__, __LINE__)
#define LWIP_RAND() wisp_lwip_rand()

#endif
