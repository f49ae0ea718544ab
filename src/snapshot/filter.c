/* filter.c - UTF-8 code points, fnmatch with Python's semantics, and
 * Snapshot.filter_traces.
 *
 * fnmatch: Python translates a pattern into a regular expression
 * (fnmatch.translate) and matches the whole name with it.  On posix
 * normcase is the identity, so fnmatch == fnmatchcase.  We emulate the
 * translation of [seq] exactly, including its quirks:
 *   - the first character of a set (after '!') is never a range operator,
 *     ']' first is literal, '\\' is literal, a '[' without a closing ']'
 *     is a literal '[';
 *   - ranges: the text between '[' and ']' is cut at the hyphens that
 *     act as range operators (chunks); since 3.10 a reversed range (z-a)
 *     is removed with both its ends, which may leave an empty set (never
 *     matches) or a lone "!" (matches any character); before 3.10
 *     re.compile rejects a reversed range: we refuse the pattern (EINVAL).
 *   - '*' matches any string (including '/' and newlines), '?' any one
 *     code point. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot_int.h"

/* ---- UTF-8 -------------------------------------------------------------- */

uint32_t snap_utf8_next(const unsigned char *p, size_t len, size_t *i)
{
	size_t k = *i, j, need;
	unsigned c = p[k], lo = 0x80, hi = 0xBF, b;
	uint32_t cp;

	if (c < 0x80) {
		*i = k + 1;
		return c;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		cp = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		cp = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		goto bad;
	}
	for (j = 1; j <= need; j++) {
		if (k + j >= len)
			goto bad;
		b = p[k + j];
		if (b < lo || b > hi)
			goto bad;
		lo = 0x80;
		hi = 0xBF;
		cp = (cp << 6) | (b & 0x3F);
	}
	*i = k + need + 1;
	return cp;
bad:
	*i = k + 1;
	return 0xDC00 + c;
}

int snap_strcmp(const char *a, size_t la, const char *b, size_t lb)
{
	const unsigned char *ua = (const unsigned char *)a;
	const unsigned char *ub = (const unsigned char *)b;
	size_t i = 0, ia = 0, ib = 0;

	if (a == b && la == lb)
		return 0;
	while (i < la && i < lb && ua[i] == ub[i])
		i++;
	if (i == la || i == lb)
		return (i < la) - (i < lb);
	if (ua[i] < 0x80 && ub[i] < 0x80)
		return ua[i] < ub[i] ? -1 : 1;
	/* a non-ASCII difference: decode both from the start (an invalid
	 * sequence in the common prefix decodes the same way in both) */
	while (ia < la && ib < lb) {
		uint32_t x = snap_utf8_next(ua, la, &ia);
		uint32_t y = snap_utf8_next(ub, lb, &ib);

		if (x != y)
			return x < y ? -1 : 1;
	}
	return (ia < la) - (ib < lb);
}

/* ---- fnmatch ------------------------------------------------------------ */

enum { G_LIT, G_ANY, G_STAR, G_SET, G_NEVER };

struct gtok {
	uint8_t kind;
	uint8_t neg;
	uint32_t c;          /* G_LIT */
	uint32_t off, n;     /* G_SET: ranges[off .. off+n) */
};

struct snap_glob {
	struct gtok *tok;
	size_t ntok;
	uint32_t (*ranges)[2];
	size_t nranges;
};

#define SEP UINT32_MAX /* a range operator in a set's item sequence */

void snap_glob_free(struct snap_glob *g)
{
	if (!g)
		return;
	free(g->tok);
	free(g->ranges);
	free(g);
}

/* Turn the set text pat[i:j] into a G_SET token; returns 0, -EINVAL or
 * -ENOMEM.  seq is scratch of at least 2 * (j - i) + 2 entries. */
static int compile_set(struct snap_glob *g, const uint32_t *pat, size_t i,
		       size_t j, int v310, uint32_t *seq, size_t *caprng)
{
	struct gtok *t = &g->tok[g->ntok];
	size_t ns = 0, k, start = i, p;
	int neg = 0;

	/* chunks: k starts after the first item ('!x' counts as one) */
	k = pat[i] == '!' ? i + 2 : i + 1;
	for (;;) {
		while (k < j && pat[k] != '-')
			k++;
		if (k >= j)
			break;
		for (p = start; p < k; p++)
			seq[ns++] = pat[p];
		seq[ns++] = SEP;
		start = k + 1;
		k += 3;
	}
	if (start < j) {
		for (p = start; p < j; p++)
			seq[ns++] = pat[p];
	} else if (ns && seq[ns - 1] == SEP) {
		/* empty last chunk: the trailing hyphen is literal */
		seq[ns - 1] = '-';
	}
	/* reversed ranges: an error before 3.10, removed since */
	for (p = ns; p-- > 0;) {
		if (seq[p] != SEP)
			continue;
		if (seq[p - 1] <= seq[p + 1])
			continue;
		if (!v310)
			return -EINVAL;
		memmove(&seq[p - 1], &seq[p + 2], (ns - p - 2) * sizeof(*seq));
		ns -= 3;
		if (p >= 2)
			p--; /* the next separator to check is before p - 1 */
		else
			break;
	}
	if (ns && seq[0] == '!') {
		neg = 1;
		memmove(&seq[0], &seq[1], (ns - 1) * sizeof(*seq));
		ns--;
	}
	t->kind = G_SET;
	t->neg = (uint8_t)neg;
	t->off = (uint32_t)g->nranges;
	for (p = 0; p < ns; p++) {
		uint32_t lo = seq[p], hi = seq[p];

		if (p + 2 < ns && seq[p + 1] == SEP) {
			hi = seq[p + 2];
			p += 2;
		}
		if (g->nranges == *caprng) {
			size_t ncap = *caprng ? *caprng * 2 : 16;
			void *nr = realloc(g->ranges, ncap * sizeof(*g->ranges));

			if (!nr)
				return -ENOMEM;
			g->ranges = nr;
			*caprng = ncap;
		}
		g->ranges[g->nranges][0] = lo;
		g->ranges[g->nranges][1] = hi;
		g->nranges++;
	}
	t->n = (uint32_t)(g->nranges - t->off);
	return 0;
}

struct snap_glob *snap_glob_compile(const char *pattern, size_t len,
				    uint32_t py_hexversion)
{
	const unsigned char *up = (const unsigned char *)pattern;
	int v310 = py_hexversion == 0 || py_hexversion >= 0x030a0000;
	struct snap_glob *g = NULL;
	uint32_t *pat = NULL, *seq = NULL;
	size_t n = 0, i = 0, caprng = 0;
	int rc = -ENOMEM;

	g = calloc(1, sizeof(*g));
	pat = malloc((len + 1) * sizeof(*pat));
	seq = malloc((2 * len + 2) * sizeof(*seq));
	if (!g || !pat || !seq)
		goto out;
	g->tok = malloc((len + 1) * sizeof(*g->tok));
	if (!g->tok)
		goto out;
	while (i < len)
		pat[n++] = snap_utf8_next(up, len, &i);
	for (i = 0; i < n;) {
		uint32_t c = pat[i++];
		struct gtok *t = &g->tok[g->ntok];
		size_t j;

		memset(t, 0, sizeof(*t));
		if (c == '*') {
			if (g->ntok && g->tok[g->ntok - 1].kind == G_STAR)
				continue;
			t->kind = G_STAR;
		} else if (c == '?') {
			t->kind = G_ANY;
		} else if (c == '[') {
			j = i;
			if (j < n && pat[j] == '!')
				j++;
			if (j < n && pat[j] == ']')
				j++;
			while (j < n && pat[j] != ']')
				j++;
			if (j >= n) {
				t->kind = G_LIT;
				t->c = '[';
			} else {
				rc = compile_set(g, pat, i, j, v310, seq,
						 &caprng);
				if (rc < 0)
					goto out;
				i = j + 1;
			}
		} else {
			t->kind = G_LIT;
			t->c = c;
		}
		g->ntok++;
	}
	rc = 0;
out:
	free(pat);
	free(seq);
	if (rc < 0) {
		snap_glob_free(g);
		errno = -rc;
		return NULL;
	}
	return g;
}

static int tok_match(const struct snap_glob *g, const struct gtok *t,
		     uint32_t c)
{
	uint32_t k;

	switch (t->kind) {
	case G_LIT:
		return c == t->c;
	case G_ANY:
		return 1;
	case G_SET:
		for (k = 0; k < t->n; k++) {
			const uint32_t *r = g->ranges[t->off + k];

			if (c >= r[0] && c <= r[1])
				return !t->neg;
		}
		return t->neg;
	default:
		return 0;
	}
}

int snap_glob_match(const struct snap_glob *g, const char *name, size_t len)
{
	const unsigned char *un = (const unsigned char *)name;
	size_t p = 0, s = 0, star_p = SIZE_MAX, star_s = 0, nt = g->ntok;

	while (s < len) {
		if (p < nt && g->tok[p].kind == G_STAR) {
			star_p = p++;
			star_s = s;
			continue;
		}
		if (p < nt) {
			size_t s2 = s;
			uint32_t c = snap_utf8_next(un, len, &s2);

			if (tok_match(g, &g->tok[p], c)) {
				p++;
				s = s2;
				continue;
			}
		}
		if (star_p == SIZE_MAX)
			return 0;
		p = star_p + 1;
		snap_utf8_next(un, len, &star_s);
		s = star_s;
	}
	while (p < nt && g->tok[p].kind == G_STAR)
		p++;
	return p == nt;
}

int snap_fnmatch(const char *pattern, const char *name, uint32_t py_hexversion)
{
	struct snap_glob *g = snap_glob_compile(pattern, strlen(pattern),
						py_hexversion);
	int r;

	if (!g)
		return -errno;
	r = snap_glob_match(g, name, strlen(name));
	snap_glob_free(g);
	return r;
}

/* ---- filter_traces --------------------------------------------------------- */

struct cfilter {
	const struct snap_filter *f;
	struct snap_glob *glob;
	uint8_t *strm; /* per string id: 0 unknown, 1 no, 2 yes */
	uint8_t *tbm;  /* per traceback id: same, the traceback part */
};

/* _normalize_filename: normcase is the identity on posix; ".pyc" -> ".py" */
static size_t norm_len(const char *p, size_t len)
{
	if (len >= 4 && memcmp(p + len - 4, ".pyc", 4) == 0)
		return len - 1;
	return len;
}

static int str_matches(const struct snapshot *s, struct cfilter *cf,
		       uint32_t sid)
{
	if (!cf->strm[sid]) {
		const struct snap_str *e = &s->strs[sid];

		cf->strm[sid] = snap_glob_match(cf->glob, e->p,
						norm_len(e->p, e->len)) ? 2 : 1;
	}
	return cf->strm[sid] == 2;
}

/* Filter._match_frame_impl */
static int frame_impl(const struct snapshot *s, struct cfilter *cf,
		      uint32_t fid)
{
	const struct snap_frame *fr = &s->frames[fid];

	if (!str_matches(s, cf, fr->filename))
		return 0;
	return !cf->f->has_lineno || fr->lineno == cf->f->lineno;
}

/* Filter._match_traceback */
static int tb_match(const struct snapshot *s, struct cfilter *cf, uint32_t tb)
{
	const struct snap_tb *t = &s->tbs[tb];
	int res = 0;
	uint32_t i;

	if (cf->tbm[tb])
		return cf->tbm[tb] == 2;
	if (cf->f->all_frames) {
		int any = 0;

		for (i = 0; i < t->n && !any; i++)
			any = frame_impl(s, cf, t->frames[i]);
		res = any ? cf->f->inclusive : !cf->f->inclusive;
	} else {
		/* traceback[0]: the most recent frame.  Python raises
		 * IndexError on an empty traceback; we say "no match". */
		int m = t->n ? frame_impl(s, cf, t->frames[0]) : 0;

		res = m ^ !cf->f->inclusive;
	}
	cf->tbm[tb] = res ? 2 : 1;
	return res;
}

/* BaseFilter._match */
static int filter_match(const struct snapshot *s, struct cfilter *cf,
			const struct snap_trace *tr)
{
	const struct snap_filter *f = cf->f;
	int res;

	if (f->is_domain_filter)
		return (tr->domain == f->domain) ^ !f->inclusive;
	res = tb_match(s, cf, tr->traceback);
	if (f->has_domain) {
		if (f->inclusive)
			return res && tr->domain == f->domain;
		return res || tr->domain != f->domain;
	}
	return res;
}

/* Copy the traceback tb of s into d (memoised through the maps). */
static uint32_t copy_tb(struct snapshot *d, const struct snapshot *s,
			uint32_t tb, uint32_t *strmap, uint32_t *framemap,
			uint32_t *tbmap, uint32_t *scratch)
{
	const struct snap_tb *t = &s->tbs[tb];
	uint32_t i;

	if (tbmap[tb] != SNAP_NONE)
		return tbmap[tb];
	for (i = 0; i < t->n; i++) {
		uint32_t fid = t->frames[i];

		if (framemap[fid] == SNAP_NONE) {
			const struct snap_frame *fr = &s->frames[fid];
			const struct snap_str *e = &s->strs[fr->filename];

			if (strmap[fr->filename] == SNAP_NONE)
				strmap[fr->filename] =
					snapshot_intern_str(d, e->p, e->len);
			if (strmap[fr->filename] == SNAP_NONE)
				return SNAP_NONE;
			framemap[fid] = snapshot_intern_frame(
				d, strmap[fr->filename], fr->lineno);
			if (framemap[fid] == SNAP_NONE)
				return SNAP_NONE;
		}
		scratch[i] = framemap[fid];
	}
	tbmap[tb] = snapshot_intern_traceback(d, scratch, t->n, t->total_nframe);
	return tbmap[tb];
}

static uint32_t *none_array(size_t n)
{
	uint32_t *a = malloc((n ? n : 1) * sizeof(*a));

	if (a)
		memset(a, 0xff, (n ? n : 1) * sizeof(*a));
	return a;
}

struct snapshot *snapshot_filter(const struct snapshot *s,
				 const struct snap_filter *filters, size_t n)
{
	struct snapshot *d = NULL;
	struct cfilter *cf = NULL;
	uint32_t *strmap = NULL, *framemap = NULL, *tbmap = NULL;
	uint32_t *scratch = NULL, maxn = 0;
	size_t i, k, ninc = 0, nexc = 0;
	int rc = -ENOMEM, sampled;

	if (!s || (n && !filters)) {
		errno = EINVAL;
		return NULL;
	}
	sampled = snap_sampled(s);
	d = snapshot_new();
	cf = calloc(n ? n : 1, sizeof(*cf));
	strmap = none_array(s->nstrs);
	framemap = none_array(s->nframes);
	tbmap = none_array(s->ntbs);
	for (i = 0; i < s->ntbs; i++)
		if (s->tbs[i].n > maxn)
			maxn = s->tbs[i].n;
	scratch = malloc(((size_t)maxn + 1) * sizeof(*scratch));
	if (!d || !cf || !strmap || !framemap || !tbmap || !scratch)
		goto out;
	d->meta = s->meta;
	if (!sampled)
		d->meta.sample_size = 0;
	d->what = s->what;
	for (k = 0; k < n; k++) {
		const struct snap_filter *f = &filters[k];

		cf[k].f = f;
		if (f->inclusive)
			ninc++;
		else
			nexc++;
		if (f->is_domain_filter)
			continue;
		if (!f->pattern) {
			rc = -EINVAL;
			goto out;
		}
		cf[k].glob = snap_glob_compile(
			f->pattern, norm_len(f->pattern, strlen(f->pattern)),
			s->meta.py_hexversion);
		if (!cf[k].glob) {
			rc = -errno;
			goto out;
		}
		cf[k].strm = calloc(s->nstrs ? s->nstrs : 1, 1);
		cf[k].tbm = calloc(s->ntbs ? s->ntbs : 1, 1);
		if (!cf[k].strm || !cf[k].tbm)
			goto out;
	}
	for (i = 0; i < s->ntraces; i++) {
		const struct snap_trace *tr = &s->traces[i];
		int pass = 1;
		uint32_t tb;

		if (ninc) {
			pass = 0;
			for (k = 0; k < n && !pass; k++)
				if (filters[k].inclusive)
					pass = filter_match(s, &cf[k], tr);
		}
		for (k = 0; k < n && pass && nexc; k++)
			if (!filters[k].inclusive && !filter_match(s, &cf[k], tr))
				pass = 0;
		if (!pass)
			continue;
		tb = copy_tb(d, s, tr->traceback, strmap, framemap, tbmap,
			     scratch);
		if (tb == SNAP_NONE ||
		    (sampled ? snapshot_add_sample(d, tr->domain, tr->size, tb,
						   &s->samples[i])
			     : snapshot_add_trace(d, tr->domain, tr->size, tb)) < 0)
			goto out;
	}
	for (i = 0; i < s->nsrcs; i++) {
		const struct snap_src *src = &s->srcs[i];
		const struct snap_str *e = &s->strs[src->filename];
		uint32_t fid = strmap[src->filename];

		if (fid == SNAP_NONE)
			fid = snapshot_intern_str(d, e->p, e->len);
		if (fid == SNAP_NONE ||
		    snapshot_set_source(d, fid, src->lineno, src->text,
					src->len) < 0)
			goto out;
	}
	rc = 0;
out:
	for (k = 0; cf && k < n; k++) {
		snap_glob_free(cf[k].glob);
		free(cf[k].strm);
		free(cf[k].tbm);
	}
	free(cf);
	free(strmap);
	free(framemap);
	free(tbmap);
	free(scratch);
	if (rc < 0) {
		snapshot_free(d);
		errno = -rc;
		return NULL;
	}
	return d;
}
