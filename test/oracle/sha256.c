/*
 * sha256.c: SHA-256 as specified in FIPS 180-4, written for o2tool.
 * Checked against sha256sum(1) by the oracle self-test.
 */
#include <string.h>
#include <stdio.h>

#include "sha256.h"

/* First 32 bits of the fractional parts of the cube roots of the first 64 primes. */
static const uint32_t roundConstants[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static void compress(struct sha256 *h, const uint8_t block[64])
{
	uint32_t w[64];
	uint32_t a, b, c, d, e, f, g, k;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
		       (uint32_t)block[4 * i + 2] << 8 | (uint32_t)block[4 * i + 3];
	for (i = 16; i < 64; i++) {
		uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = h->state[0]; b = h->state[1]; c = h->state[2]; d = h->state[3];
	e = h->state[4]; f = h->state[5]; g = h->state[6]; k = h->state[7];
	for (i = 0; i < 64; i++) {
		uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
		uint32_t ch = (e & f) ^ (~e & g);
		uint32_t t1 = k + s1 + ch + roundConstants[i] + w[i];
		uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
		uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
		uint32_t t2 = s0 + maj;
		k = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	h->state[0] += a; h->state[1] += b; h->state[2] += c; h->state[3] += d;
	h->state[4] += e; h->state[5] += f; h->state[6] += g; h->state[7] += k;
}

void sha256_init(struct sha256 *h)
{
	/* First 32 bits of the fractional parts of the square roots of the first 8 primes. */
	static const uint32_t initial[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};
	memcpy(h->state, initial, sizeof(initial));
	h->totalBytes = 0;
	h->pendingBytes = 0;
}

void sha256_update(struct sha256 *h, const void *data, size_t len)
{
	const uint8_t *p = data;

	h->totalBytes += len;
	if (h->pendingBytes) {
		size_t take = 64 - h->pendingBytes;
		if (take > len)
			take = len;
		memcpy(h->pending + h->pendingBytes, p, take);
		h->pendingBytes += take;
		p += take;
		len -= take;
		if (h->pendingBytes < 64)
			return;
		compress(h, h->pending);
		h->pendingBytes = 0;
	}
	while (len >= 64) {
		compress(h, p);
		p += 64;
		len -= 64;
	}
	memcpy(h->pending, p, len);
	h->pendingBytes = len;
}

void sha256_final(struct sha256 *h, uint8_t out[32])
{
	uint64_t bits = h->totalBytes * 8;
	uint8_t pad[72];
	size_t padBytes = (h->pendingBytes < 56 ? 56 : 120) - h->pendingBytes;
	int i;

	memset(pad, 0, sizeof(pad));
	pad[0] = 0x80;
	for (i = 0; i < 8; i++)
		pad[padBytes + i] = (uint8_t)(bits >> (56 - 8 * i));
	/* bits was taken before the padding: the length field counts message bytes only */
	sha256_update(h, pad, padBytes + 8);
	for (i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(h->state[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h->state[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h->state[i] >> 8);
		out[4 * i + 3] = (uint8_t)h->state[i];
	}
}

void sha256_hex(struct sha256 *h, char out[65])
{
	uint8_t digest[32];
	int i;

	sha256_final(h, digest);
	for (i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", digest[i]);
	out[64] = '\0';
}
