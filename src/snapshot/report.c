/* report.c - the row model of every report (snapshot.h, "report rows"):
 * what each row of top, diff, traceback and collapsed stacks holds — the
 * frame it names, its sizes, counts, differences and average, its source
 * lines — and the "other" and total lines, computed once so that every
 * sink (render.h) only formats them. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trmtop/snapshot.h"
#include "trmtop/util.h"

struct report_priv {
	struct snap_stats st;
	struct snap_diffs d;
	struct snap_row *rows;
	const char **sources;
	struct snap_loc *locs;
};

/* s: the snapshot the report reads (a diff's new one), for whether its
 * figures are estimates, and of what. */
static int report_init(struct snap_report *r, enum snap_report_kind kind,
		       enum snap_key key, int cumulative,
		       const struct snapshot *s)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->key = key;
	r->cumulative = cumulative;
	r->sample_size = snapshot_sample_size(s);
	r->what = snapshot_what(s);
	r->priv = calloc(1, sizeof(struct report_priv));
	return r->priv ? 0 : -ENOMEM;
}

void snap_report_fini(struct snap_report *r)
{
	struct report_priv *p;

	if (!r)
		return;
	p = r->priv;
	if (p) {
		snap_stats_fini(&p->st);
		snap_diffs_fini(&p->d);
		free(p->rows);
		free(p->sources);
		free(p->locs);
		free(p);
	}
	memset(r, 0, sizeof(*r));
}

static struct snap_row *alloc_rows(struct snap_report *r, size_t n)
{
	struct report_priv *p = r->priv;

	p->rows = calloc(n ? n : 1, sizeof(*p->rows));
	r->rows = p->rows;
	return p->rows;
}

/* A row's frames, the one it names and its average. */
static void fill_row(struct snap_row *row, size_t rank, enum snap_key key,
		     const struct snap_loc *frames, uint32_t nframe,
		     uint64_t size, uint64_t count)
{
	row->rank = rank;
	row->frames = frames;
	row->nframe = nframe;
	if (nframe)
		row->loc = key == SNAP_KEY_TRACEBACK ? &frames[nframe - 1] : &frames[0];
	row->size = size;
	row->count = count;
	row->average = count ? (double)size / (double)count : 0.0;
}

static const char *lookup(const struct snap_report_opts *o,
			  const struct snap_loc *loc)
{
	const char *line;

	if (!o || !o->source || loc->lineno == 0)
		return NULL;
	line = o->source(o->source_arg, loc->filename, loc->filename_len,
			 loc->lineno);
	return line && *line ? line : NULL;
}

/* The source lines of the rows shown. */
static int add_sources(struct snap_report *r, const struct snap_report_opts *o)
{
	struct report_priv *p = r->priv;
	size_t i, nsrc = 0, k = 0;
	uint32_t j;

	for (i = 0; i < r->nshown; i++)
		nsrc += r->rows[i].nframe;
	p->sources = calloc(nsrc ? nsrc : 1, sizeof(*p->sources));
	if (!p->sources)
		return -ENOMEM;
	for (i = 0; i < r->nshown; i++) {
		struct snap_row *row = &r->rows[i];

		row->sources = &p->sources[k];
		for (j = 0; j < row->nframe; j++)
			p->sources[k++] = lookup(o, &row->frames[j]);
		if (row->loc)
			row->source = row->sources[row->loc - row->frames];
	}
	return 0;
}


/* Saturating at SNAP_SIZE_MAX: cumulative rows count a trace once per
 * frame (the rows themselves are exact). */
static uint64_t other_add(uint64_t a, uint64_t b)
{
	return b > SNAP_SIZE_MAX - a ? SNAP_SIZE_MAX : a + b;
}

/* n rows listed, of which the first o->limit (0: all) are shown, and
 * the "other" line: the rows past the limit. */
static void list_rows(struct snap_report *r, const struct snap_report_opts *o,
		      size_t n)
{
	size_t i;

	r->nrows = r->nkeys = n;
	r->nshown = o->limit && o->limit < n ? o->limit : n;
	r->nother = r->nrows - r->nshown;
	for (i = r->nshown; i < r->nrows; i++) {
		r->other_size = other_add(r->other_size, r->rows[i].size);
		r->other_count = other_add(r->other_count, r->rows[i].count);
		r->other_size_diff = util_sat_add_i64(r->other_size_diff,
						      r->rows[i].size_diff);
	}
}

/* The end of a report whose rows were computed with rc: their source
 * lines, or, on error, r released.  Returns rc, or add_sources'. */
static int report_end(struct snap_report *r, const struct snap_report_opts *o,
		      int rc)
{
	if (rc == 0)
		rc = add_sources(r, o);
	if (rc < 0)
		snap_report_fini(r);
	return rc;
}

int snapshot_report_top(const struct snapshot *s,
			const struct snap_report_opts *o, struct snap_report *out)
{
	struct report_priv *p;
	size_t i;
	int rc;

	rc = report_init(out, SNAP_REPORT_TOP, o->key, o->cumulative, s);
	if (rc < 0)
		return rc;
	p = out->priv;
	rc = snapshot_statistics(s, o->key, o->cumulative, &p->st);
	if (rc < 0 || !alloc_rows(out, p->st.n))
		return report_end(out, o, rc < 0 ? rc : -ENOMEM);
	for (i = 0; i < p->st.n; i++) {
		const struct snap_stat *e = &p->st.v[i];

		fill_row(&out->rows[i], i + 1, o->key, e->frames, e->nframe,
			 e->size, e->count);
	}
	out->total_size = p->st.total_size;
	out->total_count = p->st.total_count;
	list_rows(out, o, p->st.n);
	return report_end(out, o, 0);
}

int snapshot_report_diff(const struct snapshot *new_s,
			 const struct snapshot *old_s,
			 const struct snap_report_opts *o,
			 struct snap_report *out)
{
	struct report_priv *p;
	size_t i;
	int rc;

	rc = report_init(out, SNAP_REPORT_DIFF, o->key, o->cumulative, new_s);
	if (rc < 0)
		return rc;
	p = out->priv;
	rc = snapshot_compare(new_s, old_s, o->key, o->cumulative, &p->d);
	if (rc < 0 || !alloc_rows(out, p->d.n))
		return report_end(out, o, rc < 0 ? rc : -ENOMEM);
	for (i = 0; i < p->d.n; i++) {
		const struct snap_diff *e = &p->d.v[i];
		struct snap_row *row = &out->rows[i];

		fill_row(row, i + 1, o->key, e->frames, e->nframe, e->size, e->count);
		row->size_diff = e->size_diff;
		row->count_diff = e->count_diff;
	}
	out->total_size_diff = p->d.total_size_diff;
	list_rows(out, o, p->d.n);
	return report_end(out, o, 0);
}

/* --location FILE: the whole name, or its part after a '/' (lengths, not
 * strlen: a name may hold NUL bytes). */
static int location_matches(const struct snap_loc *l, const char *want)
{
	size_t n = strlen(want), len = l->filename_len;

	if (len == n)
		return memcmp(l->filename, want, n) == 0;
	return len > n && memcmp(l->filename + len - n, want, n) == 0 &&
	       l->filename[len - n - 1] == '/';
}

static int picked(const struct snap_stat *e, size_t i,
		  const struct snap_pick *pick)
{
	const struct snap_loc *last;

	if (!pick->file)
		return i + 1 == pick->rank;
	last = e->nframe ? &e->frames[e->nframe - 1] : NULL;
	return last && last->lineno == pick->line &&
	       location_matches(last, pick->file);
}

int snapshot_report_traceback(const struct snapshot *s,
			      const struct snap_pick *pick,
			      const struct snap_report_opts *o,
			      struct snap_report *out)
{
	const struct snap_stat *hit = NULL;
	struct report_priv *p;
	size_t i;
	int rc;

	rc = report_init(out, SNAP_REPORT_TRACEBACK, SNAP_KEY_TRACEBACK, 0, s);
	if (rc < 0)
		return rc;
	p = out->priv;
	rc = snapshot_statistics(s, SNAP_KEY_TRACEBACK, 0, &p->st);
	if (rc < 0)
		return report_end(out, o, rc);
	for (i = 0; i < p->st.n && !hit; i++)
		if (picked(&p->st.v[i], i, pick))
			hit = &p->st.v[i];
	if (!hit) {
		size_t nkeys = p->st.n;

		snap_report_fini(out);
		out->nkeys = nkeys;
		return -ENOENT;
	}
	if (!alloc_rows(out, 1))
		return report_end(out, o, -ENOMEM);
	fill_row(&out->rows[0], 1, SNAP_KEY_TRACEBACK, hit->frames, hit->nframe,
		 hit->size, hit->count);
	out->nrows = out->nshown = 1;
	out->nkeys = p->st.n;
	out->total_size = hit->size;
	out->total_count = hit->count;
	return report_end(out, o, 0);
}

/* ---- stacks ------------------------------------------------------------ */

/* The frames of traceback tb, oldest first, into loc. */
static void stack_locs(const struct snapshot *s, uint32_t tb,
		       struct snap_loc *loc)
{
	const uint32_t *frames;
	uint32_t nf, total, j;

	frames = snapshot_traceback(s, tb, &nf, &total);
	for (j = 0; j < nf; j++) {
		uint32_t fid, line;
		size_t len = 0;

		snapshot_frame(s, frames[nf - 1 - j], &fid, &line);
		loc[j].filename = snapshot_str(s, fid, &len);
		loc[j].filename_len = loc[j].filename ? (uint32_t)len : 0;
		loc[j].lineno = line;
	}
}

/* Trace i's bytes and blocks as snapshot_what chose: a sampled trace
 * stands for its estimated blocks, an exact one for one block. */
static uint64_t trace_size(const struct snapshot *s, size_t i)
{
	const struct snap_sample *e = snapshot_samples(s);

	if (e && snapshot_what(s) == SNAP_WHAT_ALLOC)
		return e[i].alloc_size;
	return snapshot_traces(s)[i].size;
}

static uint64_t trace_count(const struct snapshot *s, size_t i)
{
	const struct snap_sample *e = snapshot_samples(s);

	if (!e)
		return 1;
	return snapshot_what(s) == SNAP_WHAT_ALLOC ? e[i].alloc_count : e[i].count;
}

int snapshot_report_stacks(const struct snapshot *s, struct snap_report *out)
{
	const struct snap_trace *tr = snapshot_traces(s);
	size_t n = snapshot_ntraces(s), ntb = snapshot_ntracebacks(s);
	size_t i, nrows = 0, nloc = 0, k = 0;
	uint64_t *sizes = NULL, *counts = NULL;
	struct report_priv *p;
	struct snap_loc *loc;
	int rc;

	rc = report_init(out, SNAP_REPORT_STACKS, SNAP_KEY_TRACEBACK, 0, s);
	if (rc < 0)
		return rc;
	p = out->priv;
	rc = -ENOMEM;
	sizes = calloc(ntb ? ntb : 1, sizeof(*sizes));
	counts = calloc(ntb ? ntb : 1, sizeof(*counts));
	if (!sizes || !counts)
		goto out;
	/* tracebacks are interned: same stack, same id; sums are at most
	 * the snapshot's totals */
	for (i = 0; i < n; i++) {
		if (tr[i].traceback >= ntb)
			continue;
		sizes[tr[i].traceback] += trace_size(s, i);
		counts[tr[i].traceback] += trace_count(s, i);
	}
	for (i = 0; i < ntb; i++) {
		uint32_t nf, total;

		if (!sizes[i])
			continue;
		snapshot_traceback(s, (uint32_t)i, &nf, &total);
		nrows++;
		nloc += nf;
	}
	if (nloc > SIZE_MAX / 2 / sizeof(*p->locs))
		goto out;
	p->locs = malloc((nloc ? nloc : 1) * sizeof(*p->locs));
	if (!p->locs || !alloc_rows(out, nrows))
		goto out;
	loc = p->locs;
	for (i = 0; i < ntb; i++) {
		uint32_t nf, total;

		if (!sizes[i])
			continue;
		snapshot_traceback(s, (uint32_t)i, &nf, &total);
		stack_locs(s, (uint32_t)i, loc);
		fill_row(&out->rows[k], k + 1, SNAP_KEY_TRACEBACK, loc, nf,
			 sizes[i], counts[i]);
		loc += nf;
		k++;
	}
	out->nrows = out->nshown = out->nkeys = nrows;
	out->total_size = snapshot_total_size(s);
	out->total_count = snapshot_total_count(s);
	rc = 0;
out:
	free(sizes);
	free(counts);
	if (rc < 0)
		snap_report_fini(out);
	return rc;
}
