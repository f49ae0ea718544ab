/* wire_int.h - private to wire: little-endian and LEB128 helpers. */
#ifndef TRMTOP_WIRE_INT_H
#define TRMTOP_WIRE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "trmtop/wire.h"

static inline void wi_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void wi_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void wi_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t wi_get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t wi_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t wi_get_u64(const uint8_t *p)
{
	return (uint64_t)wi_get_u32(p) | (uint64_t)wi_get_u32(p + 4) << 32;
}

/* The frame header at buf: payload length, type, reserved. */
static inline void wi_put_header(uint8_t *buf, uint32_t plen, uint16_t type)
{
	wi_put_u32(buf, plen);
	wi_put_u16(buf + 4, type);
	wi_put_u16(buf + 6, 0);
}

/* Write the header of a frame with a `plen`-byte payload; returns the
 * payload pointer, or NULL when the frame does not fit in cap or plen
 * exceeds WIRE_MAX_PAYLOAD. */
static inline uint8_t *wi_begin_frame(uint8_t *buf, size_t cap, uint16_t type,
				      size_t plen)
{
	if (!buf || plen > WIRE_MAX_PAYLOAD || cap < WIRE_HDR_SIZE + plen)
		return NULL;
	wi_put_header(buf, (uint32_t)plen, type);
	return buf + WIRE_HDR_SIZE;
}

/* The payload of msg when it holds at least `need` bytes, else NULL. */
static inline const uint8_t *wi_payload(const struct wire_msg *msg, size_t need)
{
	if (!msg || msg->len < need || (need && !msg->payload))
		return NULL;
	return msg->payload;
}

/* Bytes of the LEB128 encoding of v (1..10). */
static inline size_t wi_varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Encode v at p (room for wi_varint_len(v) bytes); returns the end. */
static inline uint8_t *wi_put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Decode a varint of at most maxbytes (5 for u32, 10 for u64) from
 * [*pp, end) whose value is <= max.  Advances *pp; 0 or -1 (truncated,
 * too long, out of range: *pp unchanged). */
static inline int wi_get_varint(const uint8_t **pp, const uint8_t *end,
				uint64_t max, uint64_t *out)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;
	unsigned shift = 0;

	for (int i = 0; i < 10; i++, shift += 7) {
		uint8_t b;

		if (p >= end)
			return -1;
		b = *p++;
		if (shift == 63 && b > 1)
			return -1; /* bits beyond 64 */
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			if (v > max)
				return -1;
			*pp = p;
			*out = v;
			return 0;
		}
	}
	return -1;
}

#endif
