/*
 * sha256.h: a small SHA-256 (FIPS 180-4) so o2tool needs no libcrypto.
 * Streaming: init, update any number of times, final into 32 bytes.
 */
#ifndef O2TOOL_SHA256_H
#define O2TOOL_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t state[8];
	uint64_t totalBytes;
	uint8_t pending[64];
	size_t pendingBytes;
};

void sha256_init(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
void sha256_final(struct sha256 *h, uint8_t out[32]);
/* out must hold 65 chars: 64 lowercase hex digits and a NUL. */
void sha256_hex(struct sha256 *h, char out[65]);

#endif
