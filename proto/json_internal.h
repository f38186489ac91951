/* Private to proto/json*.c: pieces the server-side parser and the client
 * message parser share. */
#ifndef RC_PROTO_JSON_INTERNAL_H
#define RC_PROTO_JSON_INTERNAL_H

#include <stdint.h>

/* Value of the four hex digits at p (a \uXXXX escape), or -1. */
int32_t rc__json_hex4(const uint8_t *p);

#endif
