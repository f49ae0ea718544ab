/* wire_intern.c - the interning tables of a connection (wire.h): content
 * -> dense id for strings, frames and tracebacks.
 *
 * Each kind keeps its entries in an array (the id is the index) and an
 * open-addressing index of ids keyed by a hash of the content, at most
 * half full.  Contents live in two growing arenas (string bytes, frame
 * ids of tracebacks).  libc and util's growable arrays and hashing only
 * (the agent links it). */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "trmtop/util.h"
#include "trmtop/wire.h"

#define EMPTY UINT32_MAX
#define MAX_ENTRIES (UINT32_MAX - 1u)
#define FIRST_CAP 64 /* elements of an array's first allocation */

struct str_ent {
	size_t off;
	uint32_t len, hash;
};

struct frame_ent {
	uint32_t str, lineno, hash;
};

struct tb_ent {
	size_t off;
	uint32_t n, total, hash;
};

struct index {
	uint32_t *slots; /* ids, EMPTY when free */
	size_t mask;     /* slots - 1 (a power of two), 0 when none */
};

struct wire_intern {
	struct str_ent *strs;
	struct frame_ent *frames;
	struct tb_ent *tbs;
	uint32_t nstr, nframe, ntb;
	size_t cap_str, cap_frame, cap_tb;
	uint8_t *bytes; /* string contents */
	size_t nbytes, cap_bytes;
	uint32_t *ids; /* traceback frame ids */
	size_t nids, cap_ids;
	struct index istr, iframe, itb;
};

static uint32_t hash_frame(uint32_t str, uint32_t lineno)
{
	return (uint32_t)util_mix64((uint64_t)str << 32 | lineno);
}

static uint32_t hash_tb(const uint32_t *f, uint32_t n, uint32_t total)
{
	uint64_t h = util_mix64((uint64_t)n << 32 | total);

	for (uint32_t i = 0; i < n; i++)
		h = util_mix64(h ^ f[i]) + i;
	return (uint32_t)h;
}

struct wire_intern *wire_intern_new(void)
{
	return calloc(1, sizeof(struct wire_intern));
}

void wire_intern_free(struct wire_intern *t)
{
	if (!t)
		return;
	free(t->strs);
	free(t->frames);
	free(t->tbs);
	free(t->bytes);
	free(t->ids);
	free(t->istr.slots);
	free(t->iframe.slots);
	free(t->itb.slots);
	free(t);
}

/* ---- index ---- */

static uint32_t ent_hash(const struct wire_intern *t, const struct index *ix,
			 uint32_t id)
{
	if (ix == &t->istr)
		return t->strs[id].hash;
	if (ix == &t->iframe)
		return t->frames[id].hash;
	return t->tbs[id].hash;
}

static void ix_put(const struct wire_intern *t, struct index *ix, uint32_t id)
{
	size_t i = ent_hash(t, ix, id) & ix->mask;

	while (ix->slots[i] != EMPTY)
		i = (i + 1) & ix->mask;
	ix->slots[i] = id;
}

/* Rebuild ix with `slots` slots from entries 0..n-1; 0 or -ENOMEM. */
static int ix_rebuild(const struct wire_intern *t, struct index *ix,
		      size_t slots, uint32_t n)
{
	uint32_t *s = malloc(slots * sizeof(*s));

	if (!s)
		return -ENOMEM;
	memset(s, 0xff, slots * sizeof(*s));
	free(ix->slots);
	ix->slots = s;
	ix->mask = slots - 1;
	for (uint32_t id = 0; id < n; id++)
		ix_put(t, ix, id);
	return 0;
}

/* Make room in ix for entry number n (0-based): load <= 1/2. */
static int ix_reserve(const struct wire_intern *t, struct index *ix, uint32_t n)
{
	size_t slots = ix->slots ? ix->mask + 1 : 0;

	if ((size_t)n + 1 <= slots / 2)
		return 0;
	slots = slots ? slots * 2 : 256;
	while ((size_t)n + 1 > slots / 2)
		slots *= 2;
	if (slots > SIZE_MAX / sizeof(uint32_t))
		return -ENOMEM;
	return ix_rebuild(t, ix, slots, n);
}

/* ---- strings ---- */

int wire_intern_str(struct wire_intern *t, const void *s, size_t len,
		    uint32_t *id)
{
	uint32_t h;
	size_t i;
	int rc;

	if (len > WIRE_SNAP_STR_MAX)
		return -E2BIG;
	h = util_hash_bytes(s, len);
	if (t->istr.slots) {
		for (i = h & t->istr.mask; t->istr.slots[i] != EMPTY;
		     i = (i + 1) & t->istr.mask) {
			const struct str_ent *e = &t->strs[t->istr.slots[i]];
			if (e->hash == h && e->len == len &&
			    (!len || !memcmp(t->bytes + e->off, s, len))) {
				*id = t->istr.slots[i];
				return 0;
			}
		}
	}
	if (t->nstr >= MAX_ENTRIES)
		return -E2BIG;
	rc = UTIL_GROW(t->strs, t->cap_str, (size_t)t->nstr + 1, FIRST_CAP);
	if (!rc)
		rc = UTIL_GROW(t->bytes, t->cap_bytes, t->nbytes + len + 1,
			       FIRST_CAP);
	if (!rc)
		rc = ix_reserve(t, &t->istr, t->nstr);
	if (rc)
		return rc;
	if (len)
		memcpy(t->bytes + t->nbytes, s, len);
	t->strs[t->nstr] = (struct str_ent){ .off = t->nbytes, .len = (uint32_t)len,
					     .hash = h };
	t->nbytes += len;
	ix_put(t, &t->istr, t->nstr);
	*id = t->nstr++;
	return 1;
}

/* ---- frames ---- */

int wire_intern_frame(struct wire_intern *t, uint32_t string_id,
		      uint32_t lineno, uint32_t *id)
{
	uint32_t h = hash_frame(string_id, lineno);
	size_t i;
	int rc;

	if (string_id >= t->nstr)
		return -EINVAL;
	if (t->iframe.slots) {
		for (i = h & t->iframe.mask; t->iframe.slots[i] != EMPTY;
		     i = (i + 1) & t->iframe.mask) {
			const struct frame_ent *e = &t->frames[t->iframe.slots[i]];
			if (e->hash == h && e->str == string_id &&
			    e->lineno == lineno) {
				*id = t->iframe.slots[i];
				return 0;
			}
		}
	}
	if (t->nframe >= MAX_ENTRIES)
		return -E2BIG;
	rc = UTIL_GROW(t->frames, t->cap_frame, (size_t)t->nframe + 1,
		       FIRST_CAP);
	if (!rc)
		rc = ix_reserve(t, &t->iframe, t->nframe);
	if (rc)
		return rc;
	t->frames[t->nframe] = (struct frame_ent){ .str = string_id,
						   .lineno = lineno, .hash = h };
	ix_put(t, &t->iframe, t->nframe);
	*id = t->nframe++;
	return 1;
}

/* ---- tracebacks ---- */

int wire_intern_traceback(struct wire_intern *t, const uint32_t *frames,
			  uint32_t n, uint32_t total_nframe, uint32_t *id)
{
	uint32_t h;
	size_t i;
	int rc;

	if (n > WIRE_SNAP_NFRAME_MAX)
		return -E2BIG;
	for (uint32_t k = 0; k < n; k++)
		if (frames[k] >= t->nframe)
			return -EINVAL;
	h = hash_tb(frames, n, total_nframe);
	if (t->itb.slots) {
		for (i = h & t->itb.mask; t->itb.slots[i] != EMPTY;
		     i = (i + 1) & t->itb.mask) {
			const struct tb_ent *e = &t->tbs[t->itb.slots[i]];
			if (e->hash == h && e->n == n && e->total == total_nframe &&
			    (!n || !memcmp(t->ids + e->off, frames,
					   n * sizeof(*frames)))) {
				*id = t->itb.slots[i];
				return 0;
			}
		}
	}
	if (t->ntb >= MAX_ENTRIES)
		return -E2BIG;
	rc = UTIL_GROW(t->tbs, t->cap_tb, (size_t)t->ntb + 1, FIRST_CAP);
	if (!rc)
		rc = UTIL_GROW(t->ids, t->cap_ids, t->nids + n + 1, FIRST_CAP);
	if (!rc)
		rc = ix_reserve(t, &t->itb, t->ntb);
	if (rc)
		return rc;
	if (n)
		memcpy(t->ids + t->nids, frames, n * sizeof(*frames));
	t->tbs[t->ntb] = (struct tb_ent){ .off = t->nids, .n = n,
					  .total = total_nframe, .hash = h };
	t->nids += n;
	ix_put(t, &t->itb, t->ntb);
	*id = t->ntb++;
	return 1;
}

/* ---- access ---- */

void wire_intern_counts(const struct wire_intern *t,
			struct wire_intern_counts *c)
{
	c->strings = t->nstr;
	c->frames = t->nframe;
	c->tracebacks = t->ntb;
}

/* Re-index after truncation; on allocation failure drop the index (the
 * next add rebuilds it from scratch: ix_reserve sees no slots). */
static void reindex(struct wire_intern *t, struct index *ix, uint32_t n)
{
	if (!ix->slots)
		return;
	memset(ix->slots, 0xff, (ix->mask + 1) * sizeof(*ix->slots));
	for (uint32_t id = 0; id < n; id++)
		ix_put(t, ix, id);
}

void wire_intern_rollback(struct wire_intern *t,
			  const struct wire_intern_counts *c)
{
	if (c->strings < t->nstr) {
		t->nstr = c->strings;
		t->nbytes = t->nstr ? t->strs[t->nstr - 1].off +
					      t->strs[t->nstr - 1].len
				    : 0;
		reindex(t, &t->istr, t->nstr);
	}
	if (c->frames < t->nframe) {
		t->nframe = c->frames;
		reindex(t, &t->iframe, t->nframe);
	}
	if (c->tracebacks < t->ntb) {
		t->ntb = c->tracebacks;
		t->nids = t->ntb ? t->tbs[t->ntb - 1].off + t->tbs[t->ntb - 1].n
				 : 0;
		reindex(t, &t->itb, t->ntb);
	}
}

const uint8_t *wire_intern_get_str(const struct wire_intern *t, uint32_t id,
				   uint32_t *len)
{
	if (id >= t->nstr) {
		*len = 0;
		return NULL;
	}
	*len = t->strs[id].len;
	return t->bytes + t->strs[id].off;
}

void wire_intern_get_frame(const struct wire_intern *t, uint32_t id,
			   uint32_t *string_id, uint32_t *lineno)
{
	if (id >= t->nframe) {
		*string_id = *lineno = 0;
		return;
	}
	*string_id = t->frames[id].str;
	*lineno = t->frames[id].lineno;
}

const uint32_t *wire_intern_get_traceback(const struct wire_intern *t,
					  uint32_t id, uint32_t *n,
					  uint32_t *total_nframe)
{
	if (id >= t->ntb) {
		*n = *total_nframe = 0;
		return NULL;
	}
	*n = t->tbs[id].n;
	*total_nframe = t->tbs[id].total;
	return t->ids + t->tbs[id].off;
}

size_t wire_intern_memory(const struct wire_intern *t)
{
	size_t m = sizeof(*t);

	m += t->cap_str * sizeof(*t->strs) + t->cap_frame * sizeof(*t->frames) +
	     t->cap_tb * sizeof(*t->tbs) + t->cap_bytes +
	     t->cap_ids * sizeof(*t->ids);
	m += (t->istr.slots ? t->istr.mask + 1 : 0) * sizeof(uint32_t);
	m += (t->iframe.slots ? t->iframe.mask + 1 : 0) * sizeof(uint32_t);
	m += (t->itb.slots ? t->itb.mask + 1 : 0) * sizeof(uint32_t);
	return m;
}
