/* hash.c - the hash of a byte string for the open-addressing tables
 * (util.h, "Hashing"; util_mix64, its finaliser, is inline there).  Not
 * cryptographic, not stable across versions: never stored, never sent.
 * libc only: the agent compiles it too. */
#include "config.h"

#include <string.h>

#include "trmtop/util.h"

uint32_t util_hash_bytes(const void *p, size_t len)
{
	const unsigned char *c = p;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
	uint64_t w;

	while (len >= 8) {
		memcpy(&w, c, 8);
		h = (h ^ util_mix64(w)) * 0x100000001b3ULL;
		c += 8;
		len -= 8;
	}
	w = 0;
	if (len)
		memcpy(&w, c, len);
	h = util_mix64(h ^ util_mix64(w + len));
	return (uint32_t)h;
}
