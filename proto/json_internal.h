/* Private to proto/json*.c: pieces the server-side parser and the client
 * message parser share. */
#ifndef RC_PROTO_JSON_INTERNAL_H
#define RC_PROTO_JSON_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Value of the four hex digits at p (a \uXXXX escape), or -1. */
int32_t rc__json_hex4(const uint8_t *p);

/* Unescapes the body s[0..len) of a string that passed strict validation
 * into out (cap bytes).  Returns the length or -ENOSPC; *lone tells whether
 * an unpaired surrogate escape was met (encoded as its 3-byte form). */
ssize_t rc__json_unescape(const uint8_t *s, size_t len, char *out, size_t cap,
			  bool *lone);

#ifdef JSMN_H
/* Index of the token after the subtree rooted at t[i] (the files that use
 * it include jsmn with the same JSMN_* options). */
int rc__json_tok_skip(const jsmntok_t *t, int i);
#endif

#endif
