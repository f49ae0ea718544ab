/* stats.c - Snapshot.statistics and Snapshot.compare_to.
 *
 * tracemalloc groups the traces by a key Traceback and sorts the groups in
 * descending order of (size, count, traceback) (statistics) or
 * (abs(size_diff), size, abs(count_diff), count, traceback) (compare_to).
 * Keys are unique, so the order is total and the sort's stability does not
 * matter.  A Traceback compares as the tuple of its (filename, lineno)
 * frames, oldest first; filenames compare by code point.
 *
 * Keys, from a trace's raw traceback (most recent frame first):
 *   traceback   all frames (total_nframe is ignored by Traceback equality)
 *   lineno      (frames[0],)           cumulative: each frame, no dedup
 *   filename    ((frames[0].file, 0),) cumulative: each frame's file
 * A sampled snapshot's trace counts as its estimated blocks, in use or
 * allocated as snapshot_set_what chose (snap_tr_size, snap_tr_count).
 * We aggregate per traceback id first (one pass over the traces), then per
 * key id (canonical traceback, frame or string id), so the cost is
 * O(traces + tracebacks * depth + groups log groups).
 *
 * Arithmetic: a snapshot's total size is at most SNAP_SIZE_MAX (2^63 - 1,
 * enforced by snapshot_add_trace), so per-traceback and non-cumulative
 * sums cannot exceed it; cumulative sums count a trace once per frame and
 * can, with crafted sizes: each addition is checked, and a key above
 * SNAP_SIZE_MAX fails the whole computation (-EOVERFLOW) rather than
 * showing a wrong size.  Differences of two values in [0, 2^63 - 1] are
 * exact in int64_t. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot_int.h"

struct group {
	uint64_t *size, *count; /* indexed by key id; [nspace] = empty key */
	size_t nspace;
	size_t ngroups;
	int overflow; /* a sum went past SNAP_SIZE_MAX */
};

static void group_fini(struct group *g)
{
	free(g->size);
	free(g->count);
	memset(g, 0, sizeof(*g));
}

static size_t key_space(const struct snapshot *s, enum snap_key key)
{
	switch (key) {
	case SNAP_KEY_TRACEBACK:
		return s->ntbs;
	case SNAP_KEY_LINENO:
		return s->nframes;
	default:
		return s->nstrs;
	}
}

static void add(struct group *g, size_t idx, uint64_t size, uint64_t count)
{
	if (!g->count[idx])
		g->ngroups++;
	if (size > SNAP_SIZE_MAX - g->size[idx] ||
	    count > SNAP_SIZE_MAX - g->count[idx]) {
		g->overflow = 1;
		return;
	}
	g->size[idx] += size;
	g->count[idx] += count;
}

/* Snapshot._group_by */
static int group_by(const struct snapshot *s, enum snap_key key, int cum,
		    struct group *g)
{
	uint64_t *tbsize = NULL, *tbcount = NULL;
	size_t i, ns = key_space(s, key);
	int rc = -ENOMEM;

	memset(g, 0, sizeof(*g));
	if (key != SNAP_KEY_TRACEBACK && key != SNAP_KEY_LINENO &&
	    key != SNAP_KEY_FILENAME)
		return -EINVAL;
	if (cum && key == SNAP_KEY_TRACEBACK)
		return -EINVAL;
	g->nspace = ns;
	g->size = calloc(ns + 1, sizeof(*g->size));
	g->count = calloc(ns + 1, sizeof(*g->count));
	tbsize = calloc(s->ntbs ? s->ntbs : 1, sizeof(*tbsize));
	tbcount = calloc(s->ntbs ? s->ntbs : 1, sizeof(*tbcount));
	if (!g->size || !g->count || !tbsize || !tbcount)
		goto out;
	/* at most the snapshot's totals (a sampled trace counts its
	 * estimated blocks): no overflow */
	for (i = 0; i < s->ntraces; i++) {
		tbsize[s->traces[i].traceback] += snap_tr_size(s, i);
		tbcount[s->traces[i].traceback] += snap_tr_count(s, i);
	}
	for (i = 0; i < s->ntbs; i++) {
		const struct snap_tb *t = &s->tbs[i];
		uint32_t k;

		if (!tbcount[i])
			continue;
		if (key == SNAP_KEY_TRACEBACK) {
			add(g, t->canon, tbsize[i], tbcount[i]);
		} else if (!cum) {
			/* Python raises IndexError for an empty traceback;
			 * we group those under an empty key */
			size_t idx = ns;

			if (t->n)
				idx = key == SNAP_KEY_LINENO ?
					      t->frames[0] :
					      s->frames[t->frames[0]].filename;
			add(g, idx, tbsize[i], tbcount[i]);
		} else {
			for (k = 0; k < t->n; k++) {
				uint32_t f = t->frames[k];

				add(g, key == SNAP_KEY_LINENO ? f :
								s->frames[f].filename,
				    tbsize[i], tbcount[i]);
			}
		}
	}
	rc = g->overflow ? -EOVERFLOW : 0;
out:
	free(tbsize);
	free(tbcount);
	if (rc < 0)
		group_fini(g);
	return rc;
}

/* Number of frames of the key idx. */
static uint32_t key_nframe(const struct snapshot *s, enum snap_key key,
			   size_t nspace, size_t idx)
{
	if (idx == nspace)
		return 0;
	return key == SNAP_KEY_TRACEBACK ? s->tbs[idx].n : 1;
}

/* Fill the key's frames, oldest first. */
static void key_locs(const struct snapshot *s, enum snap_key key,
		     size_t nspace, size_t idx, struct snap_loc *loc)
{
	uint32_t i;

	if (idx == nspace)
		return;
	if (key == SNAP_KEY_TRACEBACK) {
		const struct snap_tb *t = &s->tbs[idx];

		for (i = 0; i < t->n; i++) {
			const struct snap_frame *f = &s->frames[t->frames[t->n - 1 - i]];

			loc[i].filename = s->strs[f->filename].p;
			loc[i].filename_len = s->strs[f->filename].len;
			loc[i].lineno = f->lineno;
		}
	} else if (key == SNAP_KEY_LINENO) {
		loc->filename = s->strs[s->frames[idx].filename].p;
		loc->filename_len = s->strs[s->frames[idx].filename].len;
		loc->lineno = s->frames[idx].lineno;
	} else {
		loc->filename = s->strs[idx].p;
		loc->filename_len = s->strs[idx].len;
		loc->lineno = 0;
	}
}

/* The key idx's frames, oldest first, written at *loc, which moves past
 * them; their number in *nframe. */
static const struct snap_loc *key_frames(const struct snapshot *s,
					 enum snap_key key, size_t nspace,
					 size_t idx, struct snap_loc **loc,
					 uint32_t *nframe)
{
	const struct snap_loc *frames = *loc;

	*nframe = key_nframe(s, key, nspace, idx);
	key_locs(s, key, nspace, idx, *loc);
	*loc += *nframe;
	return frames;
}

/* One block for n entries of esize bytes each, then nloc frames (*loc):
 * NULL when that is too large or out of memory. */
static char *entry_block(size_t n, size_t esize, size_t nloc,
			 struct snap_loc **loc)
{
	size_t bytes;
	char *block;

	if (n > SIZE_MAX / 2 / esize || nloc > SIZE_MAX / 2 / sizeof(struct snap_loc))
		return NULL;
	bytes = n * esize + nloc * sizeof(struct snap_loc);
	block = malloc(bytes ? bytes : 1);
	if (block)
		*loc = (struct snap_loc *)(block + n * esize);
	return block;
}

/* Traceback.__lt__: tuples of (filename, lineno), oldest first. */
static int cmp_locs(const struct snap_loc *a, uint32_t na,
		    const struct snap_loc *b, uint32_t nb)
{
	uint32_t i, n = na < nb ? na : nb;

	for (i = 0; i < n; i++) {
		if (a[i].filename != b[i].filename) {
			int c = snap_strcmp(a[i].filename, a[i].filename_len,
					    b[i].filename, b[i].filename_len);

			if (c)
				return c;
		}
		if (a[i].lineno != b[i].lineno)
			return a[i].lineno < b[i].lineno ? -1 : 1;
	}
	return na < nb ? -1 : na > nb;
}

#define DESC(x, y)                          \
	do {                                \
		if ((x) != (y))             \
			return (x) > (y) ? -1 : 1; \
	} while (0)

static int cmp_stat(const void *pa, const void *pb)
{
	const struct snap_stat *a = pa, *b = pb;

	DESC(a->size, b->size);
	DESC(a->count, b->count);
	return -cmp_locs(a->frames, a->nframe, b->frames, b->nframe);
}

static uint64_t uabs(int64_t v)
{
	return v < 0 ? -(uint64_t)v : (uint64_t)v;
}

static int cmp_diff(const void *pa, const void *pb)
{
	const struct snap_diff *a = pa, *b = pb;

	DESC(uabs(a->size_diff), uabs(b->size_diff));
	DESC(a->size, b->size);
	DESC(uabs(a->count_diff), uabs(b->count_diff));
	DESC(a->count, b->count);
	return -cmp_locs(a->frames, a->nframe, b->frames, b->nframe);
}

const char *snap_key_name(enum snap_key key)
{
	switch (key) {
	case SNAP_KEY_FILENAME:
		return "filename";
	case SNAP_KEY_TRACEBACK:
		return "traceback";
	default:
		return "lineno";
	}
}

int snap_key_parse(const char *name, enum snap_key *key)
{
	if (strcmp(name, "lineno") == 0 || strcmp(name, "line") == 0)
		*key = SNAP_KEY_LINENO;
	else if (strcmp(name, "filename") == 0 || strcmp(name, "file") == 0)
		*key = SNAP_KEY_FILENAME;
	else if (strcmp(name, "traceback") == 0)
		*key = SNAP_KEY_TRACEBACK;
	else
		return -EINVAL;
	return 0;
}

int snapshot_statistics(const struct snapshot *s, enum snap_key key,
			int cumulative, struct snap_stats *out)
{
	struct group g;
	size_t i, j = 0, nloc = 0;
	struct snap_loc *loc;
	int rc;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!s)
		return -EINVAL;
	rc = group_by(s, key, cumulative, &g);
	if (rc < 0)
		return rc;
	for (i = 0; i <= g.nspace; i++)
		if (g.count[i])
			nloc += key_nframe(s, key, g.nspace, i);
	rc = -ENOMEM;
	out->arena = entry_block(g.ngroups, sizeof(struct snap_stat), nloc, &loc);
	if (!out->arena)
		goto out;
	out->v = out->arena;
	for (i = 0; i <= g.nspace; i++) {
		struct snap_stat *st;

		if (!g.count[i])
			continue;
		st = &out->v[j++];
		st->frames = key_frames(s, key, g.nspace, i, &loc, &st->nframe);
		st->size = g.size[i];
		st->count = g.count[i];
		st->traceback = key == SNAP_KEY_TRACEBACK && i < g.nspace ?
					(uint32_t)i :
					SNAP_NONE;
	}
	out->n = j;
	out->total_size = snapshot_total_size(s);
	out->total_count = snapshot_total_count(s);
	qsort(out->v, out->n, sizeof(*out->v), cmp_stat);
	rc = 0;
out:
	group_fini(&g);
	return rc;
}

void snap_stats_fini(struct snap_stats *st)
{
	if (!st)
		return;
	free(st->arena);
	memset(st, 0, sizeof(*st));
}

/* The id in new's key space of the key old_idx of old, or SNAP_NONE. */
static uint32_t map_key(const struct snapshot *nw, const struct snapshot *old,
			enum snap_key key, size_t old_idx, uint32_t *scratch)
{
	const struct snap_str *e;
	const struct snap_frame *f;
	uint32_t i, sid;

	switch (key) {
	case SNAP_KEY_FILENAME:
		e = &old->strs[old_idx];
		return snap_lookup_str(nw, e->p, e->len);
	case SNAP_KEY_LINENO:
		f = &old->frames[old_idx];
		e = &old->strs[f->filename];
		sid = snap_lookup_str(nw, e->p, e->len);
		if (sid == SNAP_NONE)
			return SNAP_NONE;
		return snap_lookup_frame(nw, sid, f->lineno);
	default:
		for (i = 0; i < old->tbs[old_idx].n; i++) {
			scratch[i] = map_key(nw, old, SNAP_KEY_LINENO,
					     old->tbs[old_idx].frames[i], NULL);
			if (scratch[i] == SNAP_NONE)
				return SNAP_NONE;
		}
		return snap_lookup_tb(nw, scratch, old->tbs[old_idx].n);
	}
}

int snapshot_compare(const struct snapshot *new_s, const struct snapshot *old_s,
		     enum snap_key key, int cumulative, struct snap_diffs *out)
{
	struct group gn, go;
	uint32_t *map = NULL, *scratch = NULL, maxn = 0;
	size_t i, j = 0, nloc = 0, nent;
	struct snap_loc *loc;
	int rc;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!new_s || !old_s)
		return -EINVAL;
	if (snapshot_sample_size(new_s) != snapshot_sample_size(old_s) ||
	    snapshot_what(new_s) != snapshot_what(old_s))
		return -EXDEV;
	rc = group_by(new_s, key, cumulative, &gn);
	if (rc < 0)
		return rc;
	rc = group_by(old_s, key, cumulative, &go);
	if (rc < 0) {
		group_fini(&gn);
		return rc;
	}
	rc = -ENOMEM;
	/* map[old idx] = new idx when the key exists in new with traces */
	map = malloc((go.nspace + 1) * sizeof(*map));
	for (i = 0; i < old_s->ntbs; i++)
		if (old_s->tbs[i].n > maxn)
			maxn = old_s->tbs[i].n;
	scratch = malloc(((size_t)maxn + 1) * sizeof(*scratch));
	if (!map || !scratch)
		goto out;
	nent = gn.ngroups;
	for (i = 0; i <= gn.nspace; i++)
		if (gn.count[i])
			nloc += key_nframe(new_s, key, gn.nspace, i);
	for (i = 0; i <= go.nspace; i++) {
		uint32_t m = SNAP_NONE;

		if (!go.count[i]) {
			map[i] = SNAP_NONE;
			continue;
		}
		if (i == go.nspace)
			m = (uint32_t)gn.nspace;
		else if (new_s == old_s)
			m = (uint32_t)i;
		else
			m = map_key(new_s, old_s, key, i, scratch);
		if (m != SNAP_NONE && !gn.count[m])
			m = SNAP_NONE;
		map[i] = m;
		if (m == SNAP_NONE) {
			nent++;
			nloc += key_nframe(old_s, key, go.nspace, i);
		}
	}
	out->arena = entry_block(nent, sizeof(struct snap_diff), nloc, &loc);
	if (!out->arena)
		goto out;
	out->v = out->arena;
	for (i = 0; i <= gn.nspace; i++) {
		struct snap_diff *d;

		if (!gn.count[i])
			continue;
		d = &out->v[j++];
		d->frames = key_frames(new_s, key, gn.nspace, i, &loc, &d->nframe);
		d->size = gn.size[i];
		d->count = gn.count[i];
		d->size_diff = (int64_t)gn.size[i];
		d->count_diff = (int64_t)gn.count[i];
		/* reuse gn.size[i] as the index of this entry */
		gn.size[i] = j - 1;
	}
	for (i = 0; i <= go.nspace; i++) {
		struct snap_diff *d;

		if (!go.count[i])
			continue;
		if (map[i] != SNAP_NONE) {
			d = &out->v[gn.size[map[i]]];
			d->size_diff -= (int64_t)go.size[i];
			d->count_diff -= (int64_t)go.count[i];
			continue;
		}
		d = &out->v[j++];
		d->frames = key_frames(old_s, key, go.nspace, i, &loc, &d->nframe);
		d->size = 0;
		d->count = 0;
		d->size_diff = -(int64_t)go.size[i];
		d->count_diff = -(int64_t)go.count[i];
	}
	out->n = j;
	/* both totals are at most SNAP_SIZE_MAX: exact */
	out->total_size_diff = (int64_t)snapshot_total_size(new_s) -
			       (int64_t)snapshot_total_size(old_s);
	qsort(out->v, out->n, sizeof(*out->v), cmp_diff);
	rc = 0;
out:
	free(map);
	free(scratch);
	group_fini(&gn);
	group_fini(&go);
	return rc;
}

void snap_diffs_fini(struct snap_diffs *d)
{
	if (!d)
		return;
	free(d->arena);
	memset(d, 0, sizeof(*d));
}
