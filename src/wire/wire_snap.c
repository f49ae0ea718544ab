/* wire_snap.c - the snapshot messages of wire.h: SNAP_HEAD, SNAP_END and
 * the chunk encoder/decoder of SNAP_STRINGS/_FRAMES/_TRACEBACKS/_TRACES.
 *
 * libc only, compiled into the agent and the CLI.  The encoder writes into
 * the caller's buffer and never allocates; the decoder reads through a
 * cursor bounded by the payload length. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "trmtop/wire.h"
#include "wire_int.h"

#define CHUNK_FIXED 8u /* u32 first, u32 count */

/* ---- HEAD / END ---- */

int wire_enc_snap_head(uint8_t *buf, size_t cap, const struct wire_snap_head *m)
{
	size_t len = m->table ? WIRE_SNAP_HEAD_TABLE_LEN
		     : m->sample_size ? WIRE_SNAP_HEAD_SAMPLE_LEN
				      : WIRE_SNAP_HEAD_LEN;
	uint8_t *p = wi_begin_frame(buf, cap, WIRE_SNAP_HEAD, len);

	if (!p)
		return -ENOSPC;
	wi_put_u64(p, m->traced_current);
	wi_put_u64(p + 8, m->traced_peak);
	wi_put_u64(p + 16, m->tracemalloc_memory);
	wi_put_u64(p + 24, m->rss);
	wi_put_u64(p + 32, m->ntraces);
	wi_put_u32(p + 40, m->py_hexversion);
	wi_put_u32(p + 44, m->traceback_limit);
	wi_put_u32(p + 48, m->first_string);
	wi_put_u32(p + 52, m->first_frame);
	wi_put_u32(p + 56, m->first_traceback);
	wi_put_u32(p + 60, m->new_strings);
	wi_put_u32(p + 64, m->new_frames);
	wi_put_u32(p + 68, m->new_tracebacks);
	p[72] = m->tracing;
	p[73] = p[74] = p[75] = 0;
	if (len >= WIRE_SNAP_HEAD_SAMPLE_LEN)
		wi_put_u64(p + 76, m->sample_size);
	if (len >= WIRE_SNAP_HEAD_TABLE_LEN) {
		wi_put_u64(p + 84, m->table_rows);
		wi_put_u32(p + 92, m->table);
	}
	return (int)(WIRE_HDR_SIZE + len);
}

int wire_enc_snap_end(uint8_t *buf, size_t cap, const struct wire_snap_end *m)
{
	uint8_t *p = wi_begin_frame(buf, cap, WIRE_SNAP_END, WIRE_SNAP_END_LEN);

	if (!p)
		return -ENOSPC;
	wi_put_u64(p, m->ntraces);
	wi_put_u64(p + 8, m->total_size);
	wi_put_u32(p + 16, m->nstrings);
	wi_put_u32(p + 20, m->nframes);
	wi_put_u32(p + 24, m->ntracebacks);
	wi_put_u32(p + 28, 0);
	wi_put_u64(p + 32, m->gil_ns);
	wi_put_u64(p + 40, m->gil_max_ns);
	return (int)(WIRE_HDR_SIZE + WIRE_SNAP_END_LEN);
}

int wire_dec_snap_head(const struct wire_msg *msg, struct wire_snap_head *m)
{
	const uint8_t *p = wi_payload(msg, WIRE_SNAP_HEAD_LEN);

	if (!p)
		return -EPROTO;
	m->traced_current = wi_get_u64(p);
	m->traced_peak = wi_get_u64(p + 8);
	m->tracemalloc_memory = wi_get_u64(p + 16);
	m->rss = wi_get_u64(p + 24);
	m->ntraces = wi_get_u64(p + 32);
	m->py_hexversion = wi_get_u32(p + 40);
	m->traceback_limit = wi_get_u32(p + 44);
	m->first_string = wi_get_u32(p + 48);
	m->first_frame = wi_get_u32(p + 52);
	m->first_traceback = wi_get_u32(p + 56);
	m->new_strings = wi_get_u32(p + 60);
	m->new_frames = wi_get_u32(p + 64);
	m->new_tracebacks = wi_get_u32(p + 68);
	m->tracing = p[72];
	m->sample_size = msg->len >= WIRE_SNAP_HEAD_SAMPLE_LEN
				 ? wi_get_u64(p + 76) : 0;
	m->table_rows = 0;
	m->table = 0;
	if (msg->len >= WIRE_SNAP_HEAD_TABLE_LEN) {
		m->table_rows = wi_get_u64(p + 84);
		m->table = wi_get_u32(p + 92);
	}
	return 0;
}

int wire_dec_snap_end(const struct wire_msg *msg, struct wire_snap_end *m)
{
	const uint8_t *p = wi_payload(msg, WIRE_SNAP_END_LEN);

	if (!p)
		return -EPROTO;
	m->ntraces = wi_get_u64(p);
	m->total_size = wi_get_u64(p + 8);
	m->nstrings = wi_get_u32(p + 16);
	m->nframes = wi_get_u32(p + 20);
	m->ntracebacks = wi_get_u32(p + 24);
	m->gil_ns = wi_get_u64(p + 32);
	m->gil_max_ns = wi_get_u64(p + 40);
	return 0;
}

/* ---- chunk encoder ---- */

void wire_chunk_begin(struct wire_chunk *ck, uint8_t *buf, size_t cap,
		      uint16_t type, uint32_t first)
{
	ck->buf = buf;
	ck->cap = cap;
	ck->len = WIRE_HDR_SIZE + CHUNK_FIXED;
	ck->first = first;
	ck->count = 0;
	ck->type = type;
	ck->flags = 0;
}

/* Room for an entry of `need` bytes: a pointer to write it at, or NULL
 * with *rc set (-ENOSPC: flush and retry; -E2BIG: never fits). */
static uint8_t *reserve(struct wire_chunk *ck, size_t need, int *rc)
{
	size_t plen = ck->len - WIRE_HDR_SIZE;

	if (need > WIRE_SNAP_CHUNK_MAX - CHUNK_FIXED) {
		*rc = -E2BIG;
		return NULL;
	}
	if (ck->count == UINT32_MAX || !ck->buf || ck->len > ck->cap ||
	    need > ck->cap - ck->len ||
	    (ck->count > 0 && plen + need > WIRE_SNAP_CHUNK)) {
		*rc = -ENOSPC;
		return NULL;
	}
	return ck->buf + ck->len;
}

/* One more entry, ending at p. */
static int added(struct wire_chunk *ck, uint8_t *p)
{
	ck->len = (size_t)(p - ck->buf);
	ck->count++;
	return 0;
}

int wire_chunk_add_string(struct wire_chunk *ck, const void *s, size_t len)
{
	uint8_t *p;
	int rc = 0;

	if (ck->type != WIRE_SNAP_STRINGS)
		return -EINVAL;
	if (len > WIRE_SNAP_STR_MAX)
		return -E2BIG;
	p = reserve(ck, wi_varint_len(len) + len, &rc);
	if (!p)
		return rc;
	p = wi_put_varint(p, len);
	if (len)
		memcpy(p, s, len);
	return added(ck, p + len);
}

int wire_chunk_add_frame(struct wire_chunk *ck, uint32_t string_id,
			 uint32_t lineno)
{
	uint8_t *p;
	int rc = 0;

	if (ck->type != WIRE_SNAP_FRAMES)
		return -EINVAL;
	p = reserve(ck, wi_varint_len(string_id) + wi_varint_len(lineno), &rc);
	if (!p)
		return rc;
	p = wi_put_varint(p, string_id);
	p = wi_put_varint(p, lineno);
	return added(ck, p);
}

int wire_chunk_add_traceback(struct wire_chunk *ck, const uint32_t *frames,
			     uint32_t n, uint32_t total_nframe)
{
	size_t need;
	uint8_t *p;
	int rc = 0;

	if (ck->type != WIRE_SNAP_TRACEBACKS)
		return -EINVAL;
	if (n > WIRE_SNAP_NFRAME_MAX)
		return -E2BIG;
	need = wi_varint_len(total_nframe) + wi_varint_len(n);
	for (uint32_t i = 0; i < n; i++)
		need += wi_varint_len(frames[i]);
	p = reserve(ck, need, &rc);
	if (!p)
		return rc;
	p = wi_put_varint(p, total_nframe);
	p = wi_put_varint(p, n);
	for (uint32_t i = 0; i < n; i++)
		p = wi_put_varint(p, frames[i]);
	return added(ck, p);
}

int wire_chunk_add_trace(struct wire_chunk *ck, uint64_t size,
			 uint32_t traceback_id, uint32_t domain)
{
	uint8_t *p;
	int rc = 0;

	if (ck->type != WIRE_SNAP_TRACES || (ck->flags & WIRE_TRACES_ESTIMATES))
		return -EINVAL;
	p = reserve(ck, wi_varint_len(size) + wi_varint_len(traceback_id) +
				wi_varint_len(domain), &rc);
	if (!p)
		return rc;
	p = wi_put_varint(p, size);
	p = wi_put_varint(p, traceback_id);
	p = wi_put_varint(p, domain);
	return added(ck, p);
}

int wire_chunk_add_trace_est(struct wire_chunk *ck, uint64_t size,
			     uint32_t traceback_id, uint32_t domain,
			     const struct wire_trace_est *e)
{
	uint8_t *p;
	int rc = 0;

	if (ck->type != WIRE_SNAP_TRACES ||
	    (ck->count && !(ck->flags & WIRE_TRACES_ESTIMATES)))
		return -EINVAL;
	p = reserve(ck, wi_varint_len(size) + wi_varint_len(traceback_id) +
				wi_varint_len(domain) + wi_varint_len(e->count) +
				wi_varint_len(e->alloc_size) +
				wi_varint_len(e->alloc_count), &rc);
	if (!p)
		return rc;
	ck->flags |= WIRE_TRACES_ESTIMATES;
	p = wi_put_varint(p, size);
	p = wi_put_varint(p, traceback_id);
	p = wi_put_varint(p, domain);
	p = wi_put_varint(p, e->count);
	p = wi_put_varint(p, e->alloc_size);
	p = wi_put_varint(p, e->alloc_count);
	return added(ck, p);
}

size_t wire_chunk_finish(struct wire_chunk *ck)
{
	if (!ck->count || !ck->buf || ck->len > ck->cap)
		return 0;
	wi_put_header(ck->buf, (uint32_t)(ck->len - WIRE_HDR_SIZE), ck->type);
	wi_put_u16(ck->buf + 6, ck->flags);
	wi_put_u32(ck->buf + WIRE_HDR_SIZE, ck->first);
	wi_put_u32(ck->buf + WIRE_HDR_SIZE + 4, ck->count);
	return ck->len;
}

/* ---- chunk decoder ---- */

static size_t min_entry(uint16_t type)
{
	switch (type) {
	case WIRE_SNAP_STRINGS:
		return 1;
	case WIRE_SNAP_FRAMES:
	case WIRE_SNAP_TRACEBACKS:
		return 2;
	case WIRE_SNAP_TRACES:
		return 3;
	default:
		return 0;
	}
}

int wire_chunk_open(const struct wire_msg *msg, struct wire_chunk_rd *rd)
{
	size_t min;

	memset(rd, 0, sizeof(*rd));
	if (!msg || !msg->payload)
		return -EPROTO;
	rd->base = rd->p = msg->payload;
	rd->end = msg->payload + msg->len;
	rd->type = msg->type;
	rd->flags = msg->flags;
	min = min_entry(msg->type);
	if (msg->type == WIRE_SNAP_TRACES && (msg->flags & WIRE_TRACES_ESTIMATES))
		min = 6;
	if (!min || msg->len < CHUNK_FIXED)
		return -EPROTO;
	rd->first = wi_get_u32(rd->p);
	rd->count = wi_get_u32(rd->p + 4);
	rd->p += CHUNK_FIXED;
	if ((uint64_t)rd->count * min > (uint64_t)(rd->end - rd->p))
		return -EPROTO;
	return 0;
}

/* Common prologue of next_*: 0 when done, -EPROTO on a type mismatch,
 * 1 to read an entry. */
static int next_check(struct wire_chunk_rd *rd, uint16_t type)
{
	if (!rd->base || rd->type != type)
		return -EPROTO;
	return rd->done < rd->count ? 1 : 0;
}

/* One more entry read, the next one at p: 1. */
static int consumed(struct wire_chunk_rd *rd, const uint8_t *p)
{
	rd->p = p;
	rd->done++;
	return 1;
}

static int get32(const uint8_t **pp, const uint8_t *end, uint32_t *out)
{
	uint64_t v;

	if (wi_get_varint(pp, end, UINT32_MAX, &v) < 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int wire_chunk_next_string(struct wire_chunk_rd *rd, const uint8_t **s,
			   uint32_t *len)
{
	const uint8_t *p = rd->p;
	uint32_t n;
	int rc = next_check(rd, WIRE_SNAP_STRINGS);

	if (rc <= 0)
		return rc;
	if (get32(&p, rd->end, &n) < 0 || n > WIRE_SNAP_STR_MAX ||
	    n > (size_t)(rd->end - p))
		return -EPROTO;
	*s = p;
	*len = n;
	return consumed(rd, p + n);
}

int wire_chunk_next_frame(struct wire_chunk_rd *rd, uint32_t *string_id,
			  uint32_t *lineno)
{
	const uint8_t *p = rd->p;
	uint32_t a, b;
	int rc = next_check(rd, WIRE_SNAP_FRAMES);

	if (rc <= 0)
		return rc;
	if (get32(&p, rd->end, &a) < 0 || get32(&p, rd->end, &b) < 0)
		return -EPROTO;
	*string_id = a;
	*lineno = b;
	return consumed(rd, p);
}

int wire_chunk_next_traceback(struct wire_chunk_rd *rd, uint32_t *frames,
			      uint32_t cap, uint32_t *n,
			      uint32_t *total_nframe)
{
	const uint8_t *p = rd->p;
	uint32_t total, cnt;
	int rc = next_check(rd, WIRE_SNAP_TRACEBACKS);

	if (rc <= 0)
		return rc;
	if (get32(&p, rd->end, &total) < 0 || get32(&p, rd->end, &cnt) < 0 ||
	    cnt > cap || cnt > WIRE_SNAP_NFRAME_MAX ||
	    cnt > (size_t)(rd->end - p))
		return -EPROTO;
	for (uint32_t i = 0; i < cnt; i++)
		if (get32(&p, rd->end, &frames[i]) < 0)
			return -EPROTO;
	*n = cnt;
	*total_nframe = total;
	return consumed(rd, p);
}

int wire_chunk_next_trace_est(struct wire_chunk_rd *rd, uint64_t *size,
			      uint32_t *traceback_id, uint32_t *domain,
			      struct wire_trace_est *e)
{
	const uint8_t *p = rd->p;
	struct wire_trace_est est = { 0, 0, 0 };
	uint64_t sz;
	uint32_t tb, dom;
	int rc = next_check(rd, WIRE_SNAP_TRACES);

	if (rc <= 0)
		return rc;
	if (wi_get_varint(&p, rd->end, UINT64_MAX, &sz) < 0 ||
	    get32(&p, rd->end, &tb) < 0 || get32(&p, rd->end, &dom) < 0)
		return -EPROTO;
	if ((rd->flags & WIRE_TRACES_ESTIMATES) &&
	    (wi_get_varint(&p, rd->end, UINT64_MAX, &est.count) < 0 ||
	     wi_get_varint(&p, rd->end, UINT64_MAX, &est.alloc_size) < 0 ||
	     wi_get_varint(&p, rd->end, UINT64_MAX, &est.alloc_count) < 0))
		return -EPROTO;
	*size = sz;
	*traceback_id = tb;
	*domain = dom;
	if (e)
		*e = est;
	return consumed(rd, p);
}

int wire_chunk_next_trace(struct wire_chunk_rd *rd, uint64_t *size,
			  uint32_t *traceback_id, uint32_t *domain)
{
	return wire_chunk_next_trace_est(rd, size, traceback_id, domain, NULL);
}

size_t wire_chunk_offset(const struct wire_chunk_rd *rd)
{
	return rd->base ? (size_t)(rd->p - rd->base) : 0;
}
