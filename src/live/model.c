/* model.c - the model of the live view (live.h, "the model"): the last
 * refresh and the baseline (snapshots), the figures of the last
 * LIVE_SAMPLES refreshes, and per key of the statistics an entry with its
 * baseline size and count and its sizes over the last LIVE_HISTORY
 * refreshes; from these each row's difference, growth rate, trend and
 * suspect flag, the native-memory verdict and the stretched interval.
 *
 * No I/O and no clock: times come with the samples. */
#include "config.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trmtop/live.h"
#include "trmtop/util.h"

/* One key of the statistics, as long as the grouping lasts. */
struct entry {
	char *key;            /* frames serialised (key_of) */
	size_t keylen;
	uint32_t hash;
	uint64_t base_size, base_count;
	uint64_t hist[LIVE_HISTORY];   /* by refresh index % LIVE_HISTORY */
	uint64_t stamp[LIVE_HISTORY];  /* refresh index + 1 of hist[] (0: none) */
};

struct live_model {
	enum snap_key key;
	snap_source_fn source;
	void *source_arg;
	size_t nsources;

	struct snapshot *cur, *base;   /* base may be cur */
	struct snap_report rep;        /* of cur, by key */
	struct live_row *rows;         /* rep.nrows of them */
	const struct live_row **view;
	size_t nview;

	struct live_sample samples[LIVE_SAMPLES]; /* by refresh index */
	uint64_t nref;        /* refreshes pushed */
	uint64_t base_idx;    /* refresh index of the baseline */
	uint64_t group_idx;   /* refresh index the grouping started at */
	struct live_sample base_sample;

	struct entry **tab;   /* open addressing, cap a power of two */
	size_t cap, n;
	size_t kept;          /* n after the last prune */
	struct entry **ent;   /* ent[i]: the entry of rows[i] */
};

/* ---- pure helpers ------------------------------------------------------ */

int live_suspect(const uint64_t *hist, unsigned n)
{
	unsigned i, grew = 0;

	if (n < LIVE_SUSPECT_MIN || hist[n - 1] <= hist[0])
		return 0;
	for (i = 1; i < n; i++)
		if (hist[i] > hist[i - 1])
			grew++;
	return 2 * grew > n - 1;
}

double live_rate(uint64_t t0_ns, uint64_t s0, uint64_t t1_ns, uint64_t s1)
{
	if (t1_ns <= t0_ns)
		return 0;
	return ((double)s1 - (double)s0) * 60e9 / (double)(t1_ns - t0_ns);
}

void live_native_judge(int64_t rss_diff, int64_t traced_diff, int64_t tm_diff,
		       uint64_t refreshes, struct live_native *out)
{
	int64_t untraced = rss_diff;

	if (traced_diff > 0)
		untraced = util_sat_add_i64(untraced, -traced_diff);
	if (tm_diff > 0)
		untraced = util_sat_add_i64(untraced, -tm_diff);
	out->rss_diff = rss_diff;
	out->traced_diff = traced_diff;
	out->tm_diff = tm_diff;
	out->untraced = untraced;
	if (refreshes < 2)
		out->verdict = LIVE_NATIVE_UNKNOWN;
	else if (rss_diff < (int64_t)LIVE_NATIVE_MIN)
		out->verdict = LIVE_NATIVE_STEADY;
	else if (untraced >= (int64_t)LIVE_NATIVE_MIN && untraced >= rss_diff / 2)
		out->verdict = LIVE_NATIVE_UNTRACED;
	else
		out->verdict = LIVE_NATIVE_TRACED;
}

const char *live_native_text(const struct live_native *n, char *buf, size_t cap)
{
	char r[32], t[32], u[32];

	util_format_size(n->rss_diff, 1, r, sizeof(r));
	util_format_size(n->traced_diff, 1, t, sizeof(t));
	util_format_size(n->untraced, 0, u, sizeof(u));
	switch (n->verdict) {
	case LIVE_NATIVE_UNKNOWN:
		snprintf(buf, cap, "native memory: judged from the second refresh "
			 "after the baseline");
		break;
	case LIVE_NATIVE_STEADY:
		snprintf(buf, cap, "native memory: RSS %s, traced %s since the "
			 "baseline: RSS steady", r, t);
		break;
	case LIVE_NATIVE_TRACED:
		snprintf(buf, cap, "native memory: RSS %s, traced %s since the "
			 "baseline: Python's allocations account for the growth",
			 r, t);
		break;
	case LIVE_NATIVE_UNTRACED:
		snprintf(buf, cap, "native memory: RSS %s, traced %s since the "
			 "baseline: %s grew outside Python's allocators (a C "
			 "extension, a native library, or fragmentation)", r, t, u);
		break;
	}
	return buf;
}

uint64_t live_stretch_ms(uint64_t interval_ms, uint64_t hold_ns)
{
	uint64_t need = hold_ns / 1000000u * (100u / LIVE_HOLD_PERCENT);

	/* round the hold up to whole milliseconds */
	if (hold_ns % 1000000u)
		need += 100u / LIVE_HOLD_PERCENT;
	return need > interval_ms ? need : interval_ms;
}

const char *live_sparkline(const uint64_t *v, size_t n, int utf8, char *buf,
			   size_t cap)
{
	static const char *const blocks[8] = {
		"\u2581", "\u2582", "\u2583", "\u2584",
		"\u2585", "\u2586", "\u2587", "\u2588",
	};
	static const char ascii[8] = { ' ', '.', ':', '-', '=', '+', '*', '#' };
	uint64_t max = 0, min = UINT64_MAX;
	size_t i, o = 0;

	if (cap == 0)
		return buf;
	for (i = 0; i < n; i++) {
		if (v[i] > max)
			max = v[i];
		if (v[i] < min)
			min = v[i];
	}
	for (i = 0; i < n; i++) {
		unsigned lvl = max > min ? (unsigned)((double)(v[i] - min) * 7.0 /
						      (double)(max - min) + 0.5) : 0;

		if (lvl > 7)
			lvl = 7;
		if (utf8) {
			if (o + 3 >= cap)
				break;
			memcpy(buf + o, blocks[lvl], 3);
			o += 3;
		} else {
			if (o + 1 >= cap)
				break;
			buf[o++] = ascii[lvl];
		}
	}
	buf[o] = '\0';
	return buf;
}

const char *live_format_rate(double per_min, char *buf, size_t cap)
{
	char s[32];
	int64_t v;

	if (per_min > 9e18)
		per_min = 9e18;
	if (per_min < -9e18)
		per_min = -9e18;
	v = (int64_t)llround(per_min);
	if (v == 0) {
		snprintf(buf, cap, "0 B/min");
		return buf;
	}
	snprintf(buf, cap, "%s/min", util_format_size(v, 1, s, sizeof(s)));
	return buf;
}

/* ---- entries ----------------------------------------------------------- */

/* The key of a row's frames: per frame the name's length, its bytes and
 * the line number. */
static char *key_of(const struct snap_loc *frames, uint32_t nframe, size_t *len)
{
	size_t n = 0, o = 0;
	uint32_t i;
	char *k;

	for (i = 0; i < nframe; i++)
		n += 8 + frames[i].filename_len;
	k = malloc(n ? n : 1);
	if (!k)
		return NULL;
	for (i = 0; i < nframe; i++) {
		memcpy(k + o, &frames[i].filename_len, 4);
		memcpy(k + o + 4, &frames[i].lineno, 4);
		memcpy(k + o + 8, frames[i].filename, frames[i].filename_len);
		o += 8 + frames[i].filename_len;
	}
	*len = n;
	return k;
}

static void entries_clear(struct live_model *m)
{
	size_t i;

	for (i = 0; i < m->cap; i++) {
		if (m->tab[i]) {
			free(m->tab[i]->key);
			free(m->tab[i]);
		}
	}
	free(m->tab);
	m->tab = NULL;
	m->cap = m->n = m->kept = 0;
}

static int entries_grow(struct live_model *m)
{
	size_t cap = m->cap ? m->cap * 2 : 256, i;
	struct entry **t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (i = 0; i < m->cap; i++) {
		struct entry *e = m->tab[i];
		size_t j;

		if (!e)
			continue;
		for (j = e->hash & (cap - 1); t[j]; j = (j + 1) & (cap - 1))
			;
		t[j] = e;
	}
	free(m->tab);
	m->tab = t;
	m->cap = cap;
	return 0;
}

/* The entry of frames, made if new (NULL on allocation failure). */
static struct entry *entry_get(struct live_model *m, const struct snap_loc *frames,
			       uint32_t nframe)
{
	struct entry *e;
	size_t len, j;
	uint32_t h;
	char *k;

	if ((m->n + 1) * 2 > m->cap && entries_grow(m) < 0)
		return NULL;
	k = key_of(frames, nframe, &len);
	if (!k)
		return NULL;
	h = util_hash_bytes(k, len);
	for (j = h & (m->cap - 1); m->tab[j]; j = (j + 1) & (m->cap - 1)) {
		e = m->tab[j];
		if (e->hash == h && e->keylen == len && memcmp(e->key, k, len) == 0) {
			free(k);
			return e;
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		free(k);
		return NULL;
	}
	e->key = k;
	e->keylen = len;
	e->hash = h;
	m->tab[j] = e;
	m->n++;
	return e;
}

/* Does e still matter at refresh idx: a baseline, or a size within the
 * last LIVE_HISTORY refreshes?  If not, it is what a new entry would be. */
static int entry_live(const struct entry *e, uint64_t idx)
{
	unsigned i;

	if (e->base_size || e->base_count)
		return 1;
	for (i = 0; i < LIVE_HISTORY; i++)
		if (e->stamp[i] && e->stamp[i] + LIVE_HISTORY > idx + 1)
			return 1;
	return 0;
}

/* Drop the entries that no longer matter, so that a target churning
 * distinct keys (generated file names) cannot grow the model without
 * bound: it keeps the baseline's keys and those of the last LIVE_HISTORY
 * refreshes.  Run when the table has grown by as much as it kept, so its
 * cost is spread over the entries made. */
static void entries_prune(struct live_model *m, uint64_t idx)
{
	struct entry **t;
	size_t i, n = 0;

	if (m->n < 2 * m->kept + 1024)
		return;
	t = calloc(m->cap, sizeof(*t));
	if (!t)
		return; /* next time */
	for (i = 0; i < m->cap; i++) {
		struct entry *e = m->tab[i];
		size_t j;

		if (!e)
			continue;
		if (!entry_live(e, idx)) {
			free(e->key);
			free(e);
			continue;
		}
		for (j = e->hash & (m->cap - 1); t[j]; j = (j + 1) & (m->cap - 1))
			;
		t[j] = e;
		n++;
	}
	free(m->tab);
	m->tab = t;
	m->n = m->kept = n;
}

/* The size of e at refresh idx (0 when it held nothing then). */
static uint64_t entry_size_at(const struct entry *e, uint64_t idx)
{
	unsigned slot = (unsigned)(idx % LIVE_HISTORY);

	return e->stamp[slot] == idx + 1 ? e->hist[slot] : 0;
}

/* ---- the model ----------------------------------------------------------- */

struct live_model *live_model_new(enum snap_key key, snap_source_fn source,
				  void *source_arg, size_t sources)
{
	struct live_model *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->key = key;
	m->source = source;
	m->source_arg = source_arg;
	m->nsources = sources;
	return m;
}

static void free_rows(struct live_model *m)
{
	snap_report_fini(&m->rep);
	memset(&m->rep, 0, sizeof(m->rep));
	free(m->rows);
	free(m->ent);
	free(m->view);
	m->rows = NULL;
	m->ent = NULL;
	m->view = NULL;
	m->nview = 0;
}

void live_model_free(struct live_model *m)
{
	if (!m)
		return;
	free_rows(m);
	entries_clear(m);
	if (m->base != m->cur)
		snapshot_free(m->base);
	snapshot_free(m->cur);
	free(m);
}

/* Record the baseline's sizes and counts for the current key in the
 * entries (every entry's baseline is 0 first). */
static int load_baseline(struct live_model *m)
{
	struct snap_stats st;
	size_t i;
	int rc;

	for (i = 0; i < m->cap; i++)
		if (m->tab[i])
			m->tab[i]->base_size = m->tab[i]->base_count = 0;
	if (!m->base)
		return 0;
	rc = snapshot_statistics(m->base, m->key, 0, &st);
	if (rc < 0)
		return rc;
	for (i = 0; i < st.n; i++) {
		struct entry *e = entry_get(m, st.v[i].frames, st.v[i].nframe);

		if (!e) {
			snap_stats_fini(&st);
			return -ENOMEM;
		}
		e->base_size = st.v[i].size;
		e->base_count = st.v[i].count;
	}
	snap_stats_fini(&st);
	return 0;
}

/* Fill rows[] from the report, the entries and the samples. */
static void compute_rows(struct live_model *m)
{
	uint64_t last = m->nref - 1, first = m->group_idx;
	size_t i;

	if (last - first >= LIVE_HISTORY)
		first = last - LIVE_HISTORY + 1;
	for (i = 0; i < m->rep.nrows; i++) {
		struct live_row *r = &m->rows[i];
		const struct entry *e = m->ent[i];
		uint64_t k;

		r->row = &m->rep.rows[i];
		r->size_diff = (int64_t)r->row->size - (int64_t)e->base_size;
		r->count_diff = (int64_t)r->row->count - (int64_t)e->base_count;
		r->nhist = 0;
		for (k = first; k <= last; k++)
			r->hist[r->nhist++] = entry_size_at(e, k);
		r->rate = live_rate(m->samples[first % LIVE_SAMPLES].t_ns, r->hist[0],
				    m->samples[last % LIVE_SAMPLES].t_ns,
				    r->hist[r->nhist - 1]);
		r->suspect = live_suspect(r->hist, r->nhist);
	}
}

/* The report of m->cur by m->key, the entries of its rows, their sizes at
 * the last refresh, and the rows. */
static int build_rows(struct live_model *m)
{
	struct snap_report_opts ro = { m->key, 0, m->nsources, m->source,
				       m->source_arg };
	uint64_t idx = m->nref - 1;
	size_t i;
	int rc;

	free_rows(m);
	rc = snapshot_report_top(m->cur, &ro, &m->rep);
	if (rc < 0)
		return rc;
	m->rows = calloc(m->rep.nrows ? m->rep.nrows : 1, sizeof(*m->rows));
	m->ent = calloc(m->rep.nrows ? m->rep.nrows : 1, sizeof(*m->ent));
	m->view = calloc(m->rep.nrows ? m->rep.nrows : 1, sizeof(*m->view));
	if (!m->rows || !m->ent || !m->view)
		return -ENOMEM;
	for (i = 0; i < m->rep.nrows; i++) {
		const struct snap_row *row = &m->rep.rows[i];
		struct entry *e = entry_get(m, row->frames, row->nframe);
		unsigned slot = (unsigned)(idx % LIVE_HISTORY);

		if (!e)
			return -ENOMEM;
		e->hist[slot] = row->size;
		e->stamp[slot] = idx + 1;
		m->ent[i] = e;
	}
	/* after the rows took their entries: those are live (stamped now) */
	entries_prune(m, idx);
	compute_rows(m);
	return 0;
}

int live_model_push(struct live_model *m, struct snapshot *s,
		    const struct live_sample *smp)
{
	struct snapshot *old = m->cur;
	int rc;

	m->samples[m->nref % LIVE_SAMPLES] = *smp;
	m->cur = s;
	m->nref++;
	if (!m->base) {
		m->base = s;
		m->base_idx = m->nref - 1;
		m->group_idx = m->nref - 1;
		m->base_sample = *smp;
		rc = load_baseline(m);
		if (rc < 0)
			return rc;
	}
	rc = build_rows(m);
	if (rc < 0)
		return rc;
	if (old && old != m->base)
		snapshot_free(old);
	return 0;
}

int live_model_set_key(struct live_model *m, enum snap_key key)
{
	int rc;

	m->key = key;
	entries_clear(m);
	free_rows(m);
	if (!m->cur)
		return 0;
	m->group_idx = m->nref - 1;
	rc = load_baseline(m);
	if (rc < 0)
		return rc;
	return build_rows(m);
}

enum snap_key live_model_key(const struct live_model *m)
{
	return m->key;
}

int live_model_set_baseline(struct live_model *m)
{
	int rc;

	if (!m->cur)
		return 0;
	if (m->base != m->cur)
		snapshot_free(m->base);
	m->base = m->cur;
	m->base_idx = m->nref - 1;
	m->base_sample = m->samples[m->base_idx % LIVE_SAMPLES];
	rc = load_baseline(m);
	if (rc < 0)
		return rc;
	compute_rows(m);
	return 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? 1 : a > b ? -1 : 0;
}

static int cmp_rows(const void *pa, const void *pb, void *arg)
{
	const struct live_row *a = *(const struct live_row *const *)pa;
	const struct live_row *b = *(const struct live_row *const *)pb;
	enum live_sort sort = *(const enum live_sort *)arg;
	int c = 0;

	switch (sort) {
	case LIVE_SORT_SIZE:
		break;
	case LIVE_SORT_DSIZE:
		c = a->size_diff < b->size_diff ? 1 : a->size_diff > b->size_diff ? -1 : 0;
		break;
	case LIVE_SORT_COUNT:
		c = cmp_u64(a->row->count, b->row->count);
		break;
	case LIVE_SORT_GROWTH:
		c = a->rate < b->rate ? 1 : a->rate > b->rate ? -1 : 0;
		break;
	}
	if (c)
		return c;
	/* then tracemalloc's order (the report's) */
	return a->row->rank < b->row->rank ? -1 : a->row->rank > b->row->rank;
}

static int row_matches(const struct live_row *r, const char *glob)
{
	const struct snap_loc *l = r->row->loc;

	if (!glob || !*glob)
		return 1;
	if (!l || memchr(l->filename, '\0', l->filename_len))
		return 0;
	return fnmatch(glob, l->filename, 0) == 0;
}

size_t live_model_view(struct live_model *m, enum live_sort sort,
		       int suspects_only, const char *glob,
		       const struct live_row *const **rows)
{
	size_t i, n = 0;

	for (i = 0; i < m->rep.nrows; i++) {
		const struct live_row *r = &m->rows[i];

		if (suspects_only && !r->suspect)
			continue;
		if (!row_matches(r, glob))
			continue;
		m->view[n++] = r;
	}
	if (suspects_only)
		sort = LIVE_SORT_GROWTH;
	if (n > 1)
		qsort_r(m->view, n, sizeof(*m->view), cmp_rows, &sort);
	m->nview = n;
	*rows = m->view;
	return n;
}

const struct snapshot *live_model_snapshot(const struct live_model *m)
{
	return m->cur;
}

const struct live_sample *live_model_last(const struct live_model *m)
{
	return m->nref ? &m->samples[(m->nref - 1) % LIVE_SAMPLES] : NULL;
}

uint64_t live_model_nrefresh(const struct live_model *m)
{
	return m->nref;
}

uint64_t live_model_since_baseline(const struct live_model *m)
{
	return m->nref ? m->nref - m->base_idx : 0;
}

size_t live_model_samples(const struct live_model *m, struct live_sample *out,
			  size_t n)
{
	uint64_t first, k;
	size_t o = 0;

	if (n > LIVE_SAMPLES)
		n = LIVE_SAMPLES;
	first = m->nref > n ? m->nref - n : 0;
	for (k = first; k < m->nref; k++)
		out[o++] = m->samples[k % LIVE_SAMPLES];
	return o;
}

size_t live_model_nkeys(const struct live_model *m)
{
	return m->rep.nrows;
}

size_t live_model_nentries(const struct live_model *m)
{
	return m->n;
}

void live_model_native(const struct live_model *m, struct live_native *out)
{
	const struct live_sample *l = live_model_last(m);

	if (!l) {
		live_native_judge(0, 0, 0, 0, out);
		return;
	}
	live_native_judge((int64_t)l->rss - (int64_t)m->base_sample.rss,
			  (int64_t)l->traced - (int64_t)m->base_sample.traced,
			  (int64_t)l->tm_mem - (int64_t)m->base_sample.tm_mem,
			  live_model_since_baseline(m), out);
}
