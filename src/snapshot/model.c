/* model.c - the snapshot model: arena, interned strings, frames,
 * tracebacks, the trace array (and, for a sampled snapshot, the
 * estimates beside it and which of them the statistics read), metadata
 * and source lines. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot_int.h"
#include "trmtop/util.h"

#define FIRST_CAP 64 /* elements of an array's first allocation */

/* ---- arena ------------------------------------------------------------ */

#define ARENA_BLOCK (64u * 1024)

struct snap_arena_block {
	struct snap_arena_block *next;
	size_t used, cap;
	_Alignas(8) unsigned char data[];
};

void *snap_arena_alloc(struct snap_arena *a, size_t n)
{
	struct snap_arena_block *b = a->head;
	size_t need = (n + 7) & ~(size_t)7;
	void *p;

	if (need < n)
		return NULL;
	if (!b || b->cap - b->used < need) {
		size_t cap = need > ARENA_BLOCK / 4 ? need : ARENA_BLOCK;

		if (cap > SIZE_MAX - sizeof(*b))
			return NULL;
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->used = 0;
		b->cap = cap;
		if (need > ARENA_BLOCK / 4 && a->head) {
			/* a big object: keep filling the current block */
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
		}
	}
	p = b->data + b->used;
	b->used += need;
	return p;
}

void snap_arena_fini(struct snap_arena *a)
{
	struct snap_arena_block *b = a->head, *next;

	while (b) {
		next = b->next;
		free(b);
		b = next;
	}
	a->head = NULL;
}

/* ---- hashing ---------------------------------------------------------- */

static uint32_t hash_frame(uint32_t filename, uint32_t lineno)
{
	return (uint32_t)util_mix64(((uint64_t)filename << 32) | lineno);
}

static uint32_t hash_frames(const uint32_t *f, uint32_t n)
{
	return util_hash_bytes(f, (size_t)n * sizeof(*f));
}

/* Grow tab (load <= 1/2) and rehash with hashof(ctx, id). */
static int htab_grow(struct snap_htab *t, const struct snapshot *s,
		     uint32_t (*hashof)(const struct snapshot *, uint32_t))
{
	size_t cap = t->cap ? t->cap * 2 : 64, i, j;
	uint32_t *slot;

	if (cap > SIZE_MAX / sizeof(*slot))
		return -ENOMEM;
	slot = malloc(cap * sizeof(*slot));
	if (!slot)
		return -ENOMEM;
	memset(slot, 0xff, cap * sizeof(*slot));
	for (i = 0; i < t->cap; i++) {
		uint32_t id = t->slot[i];

		if (id == SNAP_NONE)
			continue;
		j = hashof(s, id) & (cap - 1);
		while (slot[j] != SNAP_NONE)
			j = (j + 1) & (cap - 1);
		slot[j] = id;
	}
	free(t->slot);
	t->slot = slot;
	t->cap = cap;
	return 0;
}

static int htab_need(struct snap_htab *t, const struct snapshot *s,
		     uint32_t (*hashof)(const struct snapshot *, uint32_t))
{
	if ((t->n + 1) * 2 <= t->cap)
		return 0;
	return htab_grow(t, s, hashof);
}

/* Look the entry hashed h up in tab (is: whether entry id is the one
 * sought, key what is sought): its id, or SNAP_NONE with *slotp the free
 * slot ending the probe, where it would go. */
static uint32_t htab_find(const struct snap_htab *tab, uint32_t h,
			  int (*is)(const struct snapshot *, uint32_t, void *),
			  const struct snapshot *s, void *key, size_t *slotp)
{
	size_t mask = tab->cap - 1, j;

	if (!tab->cap) {
		*slotp = 0;
		return SNAP_NONE;
	}
	for (j = h & mask;; j = (j + 1) & mask) {
		uint32_t id = tab->slot[j];

		if (id == SNAP_NONE) {
			*slotp = j;
			return SNAP_NONE;
		}
		if (is(s, id, key))
			return id;
	}
}

static uint32_t str_hashof(const struct snapshot *s, uint32_t id)
{
	return s->strs[id].hash;
}

static uint32_t frame_hashof(const struct snapshot *s, uint32_t id)
{
	return hash_frame(s->frames[id].filename, s->frames[id].lineno);
}

static uint32_t tb_hashof(const struct snapshot *s, uint32_t id)
{
	return s->tbs[id].hash;
}

static uint32_t src_hashof(const struct snapshot *s, uint32_t id)
{
	return hash_frame(s->srcs[id].filename, s->srcs[id].lineno);
}

/* ---- lifecycle --------------------------------------------------------- */

struct snapshot *snapshot_new(void)
{
	struct snapshot *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->meta.pid = -1;
	return s;
}

void snapshot_free(struct snapshot *s)
{
	if (!s)
		return;
	snap_arena_fini(&s->arena);
	free(s->strs);
	free(s->strtab.slot);
	free(s->frames);
	free(s->frametab.slot);
	free(s->tbs);
	free(s->tbtab.slot);
	free(s->traces);
	free(s->samples);
	free(s->srcs);
	free(s->srctab.slot);
	free(s);
}

struct snapshot_meta *snapshot_meta(struct snapshot *s)
{
	return &s->meta;
}

const struct snapshot_meta *snapshot_cmeta(const struct snapshot *s)
{
	return &s->meta;
}

/* ---- interning --------------------------------------------------------- */

struct str_key {
	const char *p;
	size_t len;
	uint32_t h;
};

static int str_is(const struct snapshot *s, uint32_t id, void *key)
{
	const struct str_key *k = key;
	const struct snap_str *e = &s->strs[id];

	return e->hash == k->h && e->len == k->len && memcmp(e->p, k->p, k->len) == 0;
}

static uint32_t find_str(const struct snapshot *s, const char *p, size_t len,
			 uint32_t h, size_t *slotp)
{
	struct str_key k = { p, len, h };

	return htab_find(&s->strtab, h, str_is, s, &k, slotp);
}

uint32_t snap_lookup_str(const struct snapshot *s, const char *p, size_t len)
{
	size_t slot;

	if (len > SNAP_STR_MAX)
		return SNAP_NONE;
	return find_str(s, p, len, util_hash_bytes(p, len), &slot);
}

uint32_t snapshot_intern_str(struct snapshot *s, const char *str, size_t len)
{
	uint32_t h, id;
	size_t slot;
	char *copy;

	if (!s || (!str && len) || len > SNAP_STR_MAX)
		return SNAP_NONE;
	if (!str)
		str = "";
	h = util_hash_bytes(str, len);
	id = find_str(s, str, len, h, &slot);
	if (id != SNAP_NONE)
		return id;
	if (s->nstrs >= SNAP_ID_MAX ||
	    UTIL_GROW(s->strs, s->capstrs, s->nstrs + 1, FIRST_CAP))
		return SNAP_NONE;
	if (htab_need(&s->strtab, s, str_hashof) < 0)
		return SNAP_NONE;
	copy = snap_arena_alloc(&s->arena, len + 1);
	if (!copy)
		return SNAP_NONE;
	memcpy(copy, str, len);
	copy[len] = '\0';
	id = (uint32_t)s->nstrs;
	s->strs[id] = (struct snap_str){ copy, (uint32_t)len, h };
	/* the table may have been rehashed: find the slot again */
	find_str(s, str, len, h, &slot);
	s->strtab.slot[slot] = id;
	s->strtab.n++;
	s->nstrs++;
	return id;
}

static int frame_is(const struct snapshot *s, uint32_t id, void *key)
{
	const struct snap_frame *k = key;

	return s->frames[id].filename == k->filename &&
	       s->frames[id].lineno == k->lineno;
}

static uint32_t find_frame(const struct snapshot *s, uint32_t filename,
			   uint32_t lineno, size_t *slotp)
{
	struct snap_frame k = { filename, lineno };

	return htab_find(&s->frametab, hash_frame(filename, lineno), frame_is, s,
			 &k, slotp);
}

uint32_t snap_lookup_frame(const struct snapshot *s, uint32_t filename,
			   uint32_t lineno)
{
	size_t slot;

	return find_frame(s, filename, lineno, &slot);
}

uint32_t snapshot_intern_frame(struct snapshot *s, uint32_t filename_id,
			       uint32_t lineno)
{
	size_t slot;
	uint32_t id;

	if (!s || filename_id >= s->nstrs)
		return SNAP_NONE;
	id = find_frame(s, filename_id, lineno, &slot);
	if (id != SNAP_NONE)
		return id;
	if (s->nframes >= SNAP_ID_MAX ||
	    UTIL_GROW(s->frames, s->capframes, s->nframes + 1, FIRST_CAP))
		return SNAP_NONE;
	if (htab_need(&s->frametab, s, frame_hashof) < 0)
		return SNAP_NONE;
	id = (uint32_t)s->nframes;
	s->frames[id] = (struct snap_frame){ filename_id, lineno };
	find_frame(s, filename_id, lineno, &slot);
	s->frametab.slot[slot] = id;
	s->frametab.n++;
	s->nframes++;
	return id;
}

struct tb_key {
	const uint32_t *frames;
	uint32_t n, total, h;
	uint32_t canon;          /* out: the first with these frames */
	const uint32_t *shared;  /* out: its frames */
};

static int tb_is(const struct snapshot *s, uint32_t id, void *key)
{
	struct tb_key *k = key;
	const struct snap_tb *e = &s->tbs[id];

	if (e->hash != k->h || e->n != k->n ||
	    (k->n && memcmp(e->frames, k->frames, k->n * sizeof(*k->frames))))
		return 0;
	if (k->canon == SNAP_NONE) {
		k->canon = e->canon;
		k->shared = e->frames;
	}
	return k->total != SNAP_NONE && e->total_nframe == k->total;
}

/* Find a traceback with these frames and total (exact, or SNAP_NONE);
 * *canon gets the canonical id of any traceback with the same frames
 * (SNAP_NONE if none), *shared its frames array, *slotp the empty slot
 * ending the probe. */
static uint32_t find_tb(const struct snapshot *s, const uint32_t *frames,
			uint32_t n, uint32_t total, uint32_t h, uint32_t *canon,
			const uint32_t **shared, size_t *slotp)
{
	struct tb_key k = { frames, n, total, h, SNAP_NONE, NULL };
	uint32_t id = htab_find(&s->tbtab, h, tb_is, s, &k, slotp);

	*canon = k.canon;
	*shared = k.shared;
	return id;
}

uint32_t snap_lookup_tb(const struct snapshot *s, const uint32_t *frames,
			uint32_t n)
{
	const uint32_t *shared;
	uint32_t canon;
	size_t slot;

	if (n > SNAP_NFRAME_MAX)
		return SNAP_NONE;
	find_tb(s, frames, n, SNAP_NONE, hash_frames(frames, n), &canon,
		&shared, &slot);
	return canon;
}

uint32_t snapshot_intern_traceback(struct snapshot *s, const uint32_t *frames,
				   uint32_t n, uint32_t total_nframe)
{
	const uint32_t *shared;
	uint32_t h, id, canon, i;
	size_t slot;

	if (!s || n > SNAP_NFRAME_MAX || (n && !frames))
		return SNAP_NONE;
	for (i = 0; i < n; i++)
		if (frames[i] >= s->nframes)
			return SNAP_NONE;
	if (total_nframe < n)
		total_nframe = n;
	h = hash_frames(frames, n);
	id = find_tb(s, frames, n, total_nframe, h, &canon, &shared, &slot);
	if (id != SNAP_NONE)
		return id;
	if (s->ntbs >= SNAP_ID_MAX ||
	    UTIL_GROW(s->tbs, s->captbs, s->ntbs + 1, FIRST_CAP))
		return SNAP_NONE;
	if (htab_need(&s->tbtab, s, tb_hashof) < 0)
		return SNAP_NONE;
	if (!shared) {
		uint32_t *copy = snap_arena_alloc(&s->arena,
						  (size_t)(n ? n : 1) * sizeof(*copy));

		if (!copy)
			return SNAP_NONE;
		if (n)
			memcpy(copy, frames, n * sizeof(*frames));
		shared = copy;
	}
	id = (uint32_t)s->ntbs;
	s->tbs[id] = (struct snap_tb){ shared, n, total_nframe, h,
				       canon == SNAP_NONE ? id : canon };
	find_tb(s, frames, n, total_nframe, h, &canon, &shared, &slot);
	s->tbtab.slot[slot] = id;
	s->tbtab.n++;
	s->ntbs++;
	return id;
}

/* ---- traces ------------------------------------------------------------ */

int snap_reserve_traces(struct snapshot *s, size_t n)
{
	size_t need = s->ntraces + n;
	void *v;

	if (need < n || need > SIZE_MAX / sizeof(*s->traces))
		return -ENOMEM;
	if (need <= s->captraces)
		return 0;
	v = realloc(s->traces, need * sizeof(*s->traces));
	if (!v)
		return -ENOMEM;
	s->traces = v;
	s->captraces = need;
	return 0;
}

int snapshot_add_trace(struct snapshot *s, uint32_t domain, uint64_t size,
		       uint32_t traceback)
{
	if (!s || traceback >= s->ntbs || s->meta.sample_size)
		return -EINVAL;
	if (size > SNAP_SIZE_MAX - s->total_size)
		return -EOVERFLOW;
	if (s->ntraces == s->captraces &&
	    UTIL_GROW(s->traces, s->captraces, s->ntraces + 1, FIRST_CAP))
		return -ENOMEM;
	s->traces[s->ntraces++] = (struct snap_trace){ size, traceback, domain };
	s->total_size += size;
	return 0;
}

/* ---- sampled snapshots -------------------------------------------------- */

const char *snap_what_name(enum snap_what what)
{
	return what == SNAP_WHAT_ALLOC ? "alloc" : "inuse";
}

int snap_what_parse(const char *name, enum snap_what *what)
{
	if (strcmp(name, "inuse") == 0)
		*what = SNAP_WHAT_INUSE;
	else if (strcmp(name, "alloc") == 0)
		*what = SNAP_WHAT_ALLOC;
	else
		return -EINVAL;
	return 0;
}

int snapshot_set_sampled(struct snapshot *s, uint64_t sample_size)
{
	if (!s || !sample_size)
		return -EINVAL;
	if (s->ntraces)
		return -EBUSY;
	s->meta.sample_size = sample_size;
	return 0;
}

int snapshot_add_sample(struct snapshot *s, uint32_t domain, uint64_t size,
			uint32_t traceback, const struct snap_sample *e)
{
	if (!s || !e || !s->meta.sample_size || s->nsamples != s->ntraces ||
	    traceback >= s->ntbs || e->alloc_size < size ||
	    e->alloc_count < e->count || (size && !e->count) ||
	    (e->alloc_size && !e->alloc_count))
		return -EINVAL;
	if (size > SNAP_SIZE_MAX - s->total_size ||
	    e->count > SNAP_SIZE_MAX - s->total_count ||
	    e->alloc_size > SNAP_SIZE_MAX - s->alloc_total_size ||
	    e->alloc_count > SNAP_SIZE_MAX - s->alloc_total_count)
		return -EOVERFLOW;
	if ((s->ntraces == s->captraces &&
	     UTIL_GROW(s->traces, s->captraces, s->ntraces + 1, FIRST_CAP)) ||
	    (s->nsamples == s->capsamples &&
	     UTIL_GROW(s->samples, s->capsamples, s->nsamples + 1, FIRST_CAP)))
		return -ENOMEM;
	s->traces[s->ntraces++] = (struct snap_trace){ size, traceback, domain };
	s->samples[s->nsamples++] = *e;
	s->total_size += size;
	s->total_count += e->count;
	s->alloc_total_size += e->alloc_size;
	s->alloc_total_count += e->alloc_count;
	return 0;
}

uint64_t snapshot_sample_size(const struct snapshot *s)
{
	return snap_sampled(s) ? s->meta.sample_size : 0;
}

const struct snap_sample *snapshot_samples(const struct snapshot *s)
{
	return snap_sampled(s) ? s->samples : NULL;
}

int snapshot_set_what(struct snapshot *s, enum snap_what what)
{
	if (what != SNAP_WHAT_INUSE && (what != SNAP_WHAT_ALLOC || !snap_sampled(s)))
		return -EINVAL;
	s->what = what;
	return 0;
}

enum snap_what snapshot_what(const struct snapshot *s)
{
	return snap_sampled(s) ? s->what : SNAP_WHAT_INUSE;
}

/* ---- read access ------------------------------------------------------- */

size_t snapshot_ntraces(const struct snapshot *s)
{
	return s->ntraces;
}

const struct snap_trace *snapshot_traces(const struct snapshot *s)
{
	return s->traces;
}

size_t snapshot_nstrs(const struct snapshot *s)
{
	return s->nstrs;
}

const char *snapshot_str(const struct snapshot *s, uint32_t id, size_t *len)
{
	if (id >= s->nstrs) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = s->strs[id].len;
	return s->strs[id].p;
}

void snapshot_frame(const struct snapshot *s, uint32_t frame_id,
		    uint32_t *filename_id, uint32_t *lineno)
{
	uint32_t f = SNAP_NONE, l = 0;

	if (frame_id < s->nframes) {
		f = s->frames[frame_id].filename;
		l = s->frames[frame_id].lineno;
	}
	if (filename_id)
		*filename_id = f;
	if (lineno)
		*lineno = l;
}

const uint32_t *snapshot_traceback(const struct snapshot *s, uint32_t tb_id,
				   uint32_t *n, uint32_t *total_nframe)
{
	if (tb_id >= s->ntbs) {
		if (n)
			*n = 0;
		if (total_nframe)
			*total_nframe = 0;
		return NULL;
	}
	if (n)
		*n = s->tbs[tb_id].n;
	if (total_nframe)
		*total_nframe = s->tbs[tb_id].total_nframe;
	return s->tbs[tb_id].frames;
}

size_t snapshot_nframes(const struct snapshot *s)
{
	return s->nframes;
}

size_t snapshot_ntracebacks(const struct snapshot *s)
{
	return s->ntbs;
}

uint64_t snapshot_total_size(const struct snapshot *s)
{
	if (snap_sampled(s) && s->what == SNAP_WHAT_ALLOC)
		return s->alloc_total_size;
	return s->total_size;
}

uint64_t snapshot_total_count(const struct snapshot *s)
{
	if (!snap_sampled(s))
		return s->ntraces;
	return s->what == SNAP_WHAT_ALLOC ? s->alloc_total_count : s->total_count;
}

/* ---- source lines ------------------------------------------------------- */

static int src_is(const struct snapshot *s, uint32_t id, void *key)
{
	const struct snap_frame *k = key;

	return s->srcs[id].filename == k->filename &&
	       s->srcs[id].lineno == k->lineno;
}

static uint32_t find_src(const struct snapshot *s, uint32_t filename,
			 uint32_t lineno, size_t *slotp)
{
	struct snap_frame k = { filename, lineno };

	return htab_find(&s->srctab, hash_frame(filename, lineno), src_is, s, &k,
			 slotp);
}

int snapshot_set_source(struct snapshot *s, uint32_t filename_id,
			uint32_t lineno, const char *text, size_t len)
{
	size_t slot;
	uint32_t id;
	char *copy;

	if (!s || filename_id >= s->nstrs || (!text && len) ||
	    len > SNAP_STR_MAX)
		return -EINVAL;
	copy = snap_arena_alloc(&s->arena, len + 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, text, len);
	copy[len] = '\0';
	id = find_src(s, filename_id, lineno, &slot);
	if (id != SNAP_NONE) {
		s->srcs[id].text = copy;
		s->srcs[id].len = (uint32_t)len;
		return 0;
	}
	if (s->nsrcs >= SNAP_ID_MAX ||
	    UTIL_GROW(s->srcs, s->capsrcs, s->nsrcs + 1, FIRST_CAP) ||
	    htab_need(&s->srctab, s, src_hashof) < 0)
		return -ENOMEM;
	id = (uint32_t)s->nsrcs;
	s->srcs[id] = (struct snap_src){ filename_id, lineno, copy,
					 (uint32_t)len };
	find_src(s, filename_id, lineno, &slot);
	s->srctab.slot[slot] = id;
	s->srctab.n++;
	s->nsrcs++;
	return 0;
}

const char *snapshot_source(const struct snapshot *s, const char *filename,
			    size_t filename_len, uint32_t lineno)
{
	uint32_t fid, id;
	size_t slot;

	if (!s || !filename || !s->nsrcs)
		return NULL;
	fid = snap_lookup_str(s, filename, filename_len);
	if (fid == SNAP_NONE)
		return NULL;
	id = find_src(s, fid, lineno, &slot);
	return id == SNAP_NONE ? NULL : s->srcs[id].text;
}

size_t snapshot_nsources(const struct snapshot *s)
{
	return s ? s->nsrcs : 0;
}
