/* trm.c - the .trm snapshot file: writer and bounded reader.
 * The layout is documented in docs/FORMATS.md ("The .trm format"). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot_int.h"

#define TRM_MAGIC "TRMSNAP\0"
#define TRM_END "TEND"
#define TRM_FLAG_SOURCE 0x1u
#define TRM_FLAG_SAMPLED 0x2u /* version 2 */
#define TRM_FLAGS_KNOWN (TRM_FLAG_SOURCE | TRM_FLAG_SAMPLED)
/* The version an exact snapshot is written with: files older trmtop
 * builds read; only a sampled one needs version 2. */
#define TRM_VERSION_EXACT 1
#define TRM_HEADER 16
#define TRM_TRAILER 8

/* ---- CRC-32 -------------------------------------------------------------- */

static uint32_t crc_table[256];
static int crc_ready;

static void crc_init(void)
{
	uint32_t i, k, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
	crc_ready = 1;
}

uint32_t snap_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!crc_ready)
		crc_init();
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ---- writer ------------------------------------------------------------------ */

struct wbuf {
	uint8_t *p;
	size_t n, cap;
	int oom;
};

static void put(struct wbuf *w, const void *data, size_t len)
{
	if (w->oom)
		return;
	if (w->cap - w->n < len) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *np;

		while (cap - w->n < len) {
			if (cap > SIZE_MAX / 2) {
				w->oom = 1;
				return;
			}
			cap *= 2;
		}
		np = realloc(w->p, cap);
		if (!np) {
			w->oom = 1;
			return;
		}
		w->p = np;
		w->cap = cap;
	}
	memcpy(w->p + w->n, data, len);
	w->n += len;
}

static void put_u32(struct wbuf *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			 (uint8_t)(v >> 24) };

	put(w, b, 4);
}

static void put_varint(struct wbuf *w, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;

	while (v >= 0x80) {
		b[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b[n++] = (uint8_t)v;
	put(w, b, n);
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static void put_str(struct wbuf *w, const char *p, size_t len)
{
	put_varint(w, len);
	put(w, p, len);
}

/* A trace as the writer orders it, with its estimates (zero when exact). */
struct wtrace {
	struct snap_trace t;
	struct snap_sample e;
};

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* (domain, size), then the estimates: ties are equal records, so the
 * order, and the file, depend on the snapshot's content only. */
static int cmp_trace(const void *pa, const void *pb)
{
	const struct wtrace *a = pa, *b = pb;
	int c;

	if (a->t.domain != b->t.domain)
		return a->t.domain < b->t.domain ? -1 : 1;
	if ((c = cmp_u64(a->t.size, b->t.size)) ||
	    (c = cmp_u64(a->e.count, b->e.count)) ||
	    (c = cmp_u64(a->e.alloc_size, b->e.alloc_size)))
		return c;
	return cmp_u64(a->e.alloc_count, b->e.alloc_count);
}

/* The traces grouped by traceback id, each group sorted by cmp_trace;
 * start[tb] .. start[tb + 1] is the group of tb. */
static int group_traces(const struct snapshot *s, struct wtrace **outv,
			size_t **outstart)
{
	struct wtrace *v = calloc(s->ntraces ? s->ntraces : 1, sizeof(*v));
	size_t *start = calloc(s->ntbs + 2, sizeof(*start));
	const struct snap_sample *e = snapshot_samples(s);
	size_t i, t, k;

	if (!v || !start) {
		free(v);
		free(start);
		return -ENOMEM;
	}
	for (i = 0; i < s->ntraces; i++)
		start[s->traces[i].traceback + 2]++;
	for (t = 2; t < s->ntbs + 2; t++)
		start[t] += start[t - 1];
	for (i = 0; i < s->ntraces; i++) {
		k = start[s->traces[i].traceback + 1]++;
		v[k].t = s->traces[i];
		if (e)
			v[k].e = e[i];
	}
	for (t = 0; t < s->ntbs; t++)
		if (start[t + 1] - start[t] > 1)
			qsort(v + start[t], start[t + 1] - start[t], sizeof(*v),
			      cmp_trace);
	*outv = v;
	*outstart = start;
	return 0;
}

int snapshot_write_trm(const struct snapshot *s, FILE *f, struct trm_err *err)
{
	const struct snapshot_meta *m = &s->meta;
	uint64_t sample_size = snapshot_sample_size(s);
	struct wtrace *v = NULL;
	size_t *start = NULL, i, t;
	struct wbuf w = { 0 };
	uint32_t crc;
	int rc;

	rc = group_traces(s, &v, &start);
	if (rc < 0)
		goto out;
	put(&w, TRM_MAGIC, 8);
	put_u32(&w, sample_size ? SNAP_TRM_VERSION : TRM_VERSION_EXACT);
	put_u32(&w, (s->nsrcs ? TRM_FLAG_SOURCE : 0) |
			    (sample_size ? TRM_FLAG_SAMPLED : 0));
	/* metadata */
	put_varint(&w, zigzag(m->pid));
	put_varint(&w, m->py_hexversion);
	put_varint(&w, m->traceback_limit);
	put_varint(&w, zigzag(m->time_ns));
	put_varint(&w, m->traced_current);
	put_varint(&w, m->traced_peak);
	put_varint(&w, m->rss);
	put_varint(&w, m->tracemalloc_memory);
	put_str(&w, m->executable, strnlen(m->executable, sizeof(m->executable) - 1));
	put_str(&w, m->python_version,
		strnlen(m->python_version, sizeof(m->python_version) - 1));
	put_str(&w, m->host, strnlen(m->host, sizeof(m->host) - 1));
	if (sample_size)
		put_varint(&w, sample_size);
	/* string, frame and traceback tables */
	put_varint(&w, s->nstrs);
	for (i = 0; i < s->nstrs; i++)
		put_str(&w, s->strs[i].p, s->strs[i].len);
	put_varint(&w, s->nframes);
	for (i = 0; i < s->nframes; i++) {
		put_varint(&w, s->frames[i].filename);
		put_varint(&w, s->frames[i].lineno);
	}
	put_varint(&w, s->ntbs);
	for (i = 0; i < s->ntbs; i++) {
		const struct snap_tb *tb = &s->tbs[i];
		uint32_t k;

		put_varint(&w, tb->n);
		put_varint(&w, tb->total_nframe - tb->n);
		for (k = 0; k < tb->n; k++)
			put_varint(&w, tb->frames[k]);
	}
	/* traces, grouped by traceback: runs of one domain, sizes as deltas */
	put_varint(&w, s->ntraces);
	for (t = 0; t < s->ntbs; t++) {
		size_t a = start[t], b = start[t + 1], r, nruns = 0;

		for (i = a; i < b; i++)
			if (i == a || v[i].t.domain != v[i - 1].t.domain)
				nruns++;
		put_varint(&w, nruns);
		for (i = a; i < b; i = r) {
			uint64_t prev = 0;

			for (r = i; r < b && v[r].t.domain == v[i].t.domain; r++)
				;
			put_varint(&w, v[i].t.domain);
			put_varint(&w, r - i);
			for (; i < r; i++) {
				put_varint(&w, v[i].t.size - prev);
				prev = v[i].t.size;
				if (!sample_size)
					continue;
				put_varint(&w, v[i].e.count);
				put_varint(&w, v[i].e.alloc_size - v[i].t.size);
				put_varint(&w, v[i].e.alloc_count - v[i].e.count);
			}
		}
	}
	if (s->nsrcs) {
		put_varint(&w, s->nsrcs);
		for (i = 0; i < s->nsrcs; i++) {
			put_varint(&w, s->srcs[i].filename);
			put_varint(&w, s->srcs[i].lineno);
			put_str(&w, s->srcs[i].text, s->srcs[i].len);
		}
	}
	if (w.oom) {
		rc = -ENOMEM;
		goto out;
	}
	crc = snap_crc32(0, w.p, w.n);
	put_u32(&w, crc);
	put(&w, TRM_END, 4);
	if (w.oom) {
		rc = -ENOMEM;
		goto out;
	}
	if (fwrite(w.p, 1, w.n, f) != w.n || fflush(f) != 0) {
		rc = -(errno ? errno : EIO);
		trm_err_set(err, rc, "write: %s", strerror(-rc));
		goto out;
	}
	rc = 0;
out:
	if (rc == -ENOMEM)
		trm_err_set(err, rc, "writing .trm: out of memory");
	free(w.p);
	free(v);
	free(start);
	return rc;
}

/* ---- reader --------------------------------------------------------------- */

struct cur {
	const uint8_t *p;
	size_t len, off;
	const char *what; /* the part being read */
	struct trm_err *err;
};

static int bad(struct cur *c, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct cur *c, size_t at, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return trm_err_set(c->err, -TRM_EFORMAT, "%s at byte %zu: %s", why, at,
			   c->what);
}

static int truncated(struct cur *c)
{
	return trm_err_set(c->err, -TRM_EFORMAT, "truncated at byte %zu: %s",
			   c->len, c->what);
}

static size_t left(const struct cur *c)
{
	return c->len - c->off;
}

static int get_varint(struct cur *c, uint64_t *v)
{
	size_t at = c->off;
	unsigned shift = 0;
	uint64_t r = 0;

	for (;;) {
		uint8_t b;

		if (c->off >= c->len)
			return truncated(c);
		b = c->p[c->off++];
		if (shift == 63 && b > 1)
			return bad(c, at, "varint overflow");
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
		shift += 7;
	}
	*v = r;
	return 0;
}

/* A varint <= max, else an error naming it. */
static int get_num(struct cur *c, uint64_t max, const char *name, uint64_t *v)
{
	size_t at = c->off;
	int rc = get_varint(c, v);

	if (rc < 0)
		return rc;
	if (*v > max)
		return bad(c, at, "%s %llu out of range (max %llu)", name,
			   (unsigned long long)*v, (unsigned long long)max);
	return 0;
}

static int get_u32(struct cur *c, uint32_t *v)
{
	if (left(c) < 4)
		return truncated(c);
	*v = (uint32_t)c->p[c->off] | (uint32_t)c->p[c->off + 1] << 8 |
	     (uint32_t)c->p[c->off + 2] << 16 | (uint32_t)c->p[c->off + 3] << 24;
	c->off += 4;
	return 0;
}

/* A length-prefixed string of at most max bytes: pointer into the buffer. */
static int get_str(struct cur *c, uint64_t max, const char **p, size_t *len)
{
	uint64_t n;
	int rc = get_num(c, max, "string length", &n);

	if (rc < 0)
		return rc;
	if (n > left(c))
		return truncated(c);
	*p = (const char *)c->p + c->off;
	*len = (size_t)n;
	c->off += (size_t)n;
	return 0;
}

static int get_meta_str(struct cur *c, char *dst, size_t size)
{
	const char *p;
	size_t len, at = c->off;
	int rc = get_str(c, size - 1, &p, &len);

	if (rc < 0)
		return rc;
	if (memchr(p, '\0', len))
		return bad(c, at, "NUL in string");
	memcpy(dst, p, len);
	dst[len] = '\0';
	return 0;
}

static int read_meta(struct cur *c, struct snapshot_meta *m)
{
	uint64_t v;
	int rc;

	c->what = "metadata";
	if ((rc = get_varint(c, &v)) < 0)
		return rc;
	if (unzigzag(v) < INT32_MIN || unzigzag(v) > INT32_MAX)
		return bad(c, c->off - 1, "pid out of range");
	m->pid = (int32_t)unzigzag(v);
	if ((rc = get_num(c, UINT32_MAX, "python version", &v)) < 0)
		return rc;
	m->py_hexversion = (uint32_t)v;
	if ((rc = get_num(c, UINT32_MAX, "traceback limit", &v)) < 0)
		return rc;
	m->traceback_limit = (uint32_t)v;
	if ((rc = get_varint(c, &v)) < 0)
		return rc;
	m->time_ns = unzigzag(v);
	if ((rc = get_varint(c, &m->traced_current)) < 0 ||
	    (rc = get_varint(c, &m->traced_peak)) < 0 ||
	    (rc = get_varint(c, &m->rss)) < 0 ||
	    (rc = get_varint(c, &m->tracemalloc_memory)) < 0 ||
	    (rc = get_meta_str(c, m->executable, sizeof(m->executable))) < 0 ||
	    (rc = get_meta_str(c, m->python_version,
			       sizeof(m->python_version))) < 0 ||
	    (rc = get_meta_str(c, m->host, sizeof(m->host))) < 0)
		return rc;
	return 0;
}

/* A sampled file's sampling size, after the metadata. */
static int read_sample_size(struct cur *c, struct snapshot *s)
{
	size_t at = c->off;
	uint64_t v;
	int rc;

	c->what = "sampling size";
	if ((rc = get_varint(c, &v)) < 0)
		return rc;
	if (v == 0)
		return bad(c, at, "sampled every 0 bytes");
	return snapshot_set_sampled(s, v) < 0 ? bad(c, at, "sampling size") : 0;
}

/* A table count: each entry takes at least min_bytes. */
static int get_count(struct cur *c, size_t min_bytes, const char *name,
		     uint64_t *n)
{
	size_t at = c->off;
	int rc = get_varint(c, n);

	if (rc < 0)
		return rc;
	if (*n > SNAP_ID_MAX)
		return bad(c, at, "%s %llu too large", name,
			   (unsigned long long)*n);
	if (*n > left(c) / min_bytes)
		return trm_err_set(c->err, -TRM_EFORMAT,
				   "truncated at byte %zu: %s (%s %llu needs "
				   "more than the %zu bytes left)",
				   c->len, c->what, name,
				   (unsigned long long)*n, left(c));
	return 0;
}

static int oom(struct cur *c)
{
	return trm_err_set(c->err, -ENOMEM, "reading .trm: out of memory");
}

struct maps {
	uint32_t *str, *frame, *tb, *scratch;
	uint64_t nstr, nframe, ntb, capscratch;
};

static int read_tables(struct cur *c, struct snapshot *s, struct maps *mp)
{
	uint64_t i, v, n;
	int rc;

	c->what = "string table";
	if ((rc = get_count(c, 1, "string count", &mp->nstr)) < 0)
		return rc;
	mp->str = malloc((mp->nstr + 1) * sizeof(*mp->str));
	if (!mp->str)
		return oom(c);
	for (i = 0; i < mp->nstr; i++) {
		size_t len;
		const char *p;

		if ((rc = get_str(c, SNAP_STR_MAX, &p, &len)) < 0)
			return rc;
		mp->str[i] = snapshot_intern_str(s, p, len);
		if (mp->str[i] == SNAP_NONE)
			return oom(c);
	}
	c->what = "frame table";
	if ((rc = get_count(c, 2, "frame count", &mp->nframe)) < 0)
		return rc;
	mp->frame = malloc((mp->nframe + 1) * sizeof(*mp->frame));
	if (!mp->frame)
		return oom(c);
	for (i = 0; i < mp->nframe; i++) {
		if ((rc = get_num(c, mp->nstr ? mp->nstr - 1 : 0, "string id",
				  &v)) < 0)
			return rc;
		if (!mp->nstr)
			return bad(c, c->off - 1, "string id %llu with no strings",
				   (unsigned long long)v);
		if ((rc = get_num(c, UINT32_MAX, "line number", &n)) < 0)
			return rc;
		mp->frame[i] = snapshot_intern_frame(s, mp->str[v], (uint32_t)n);
		if (mp->frame[i] == SNAP_NONE)
			return oom(c);
	}
	c->what = "traceback table";
	if ((rc = get_count(c, 2, "traceback count", &mp->ntb)) < 0)
		return rc;
	mp->tb = malloc((mp->ntb + 1) * sizeof(*mp->tb));
	if (!mp->tb)
		return oom(c);
	for (i = 0; i < mp->ntb; i++) {
		uint64_t nf, extra, k;

		if ((rc = get_num(c, SNAP_NFRAME_MAX, "frame count", &nf)) < 0)
			return rc;
		if (nf > left(c))
			return truncated(c);
		if (nf > mp->capscratch) {
			uint32_t *ns = realloc(mp->scratch, nf * sizeof(*ns));

			if (!ns)
				return oom(c);
			mp->scratch = ns;
			mp->capscratch = nf;
		}
		if ((rc = get_num(c, UINT32_MAX - nf, "total_nframe", &extra)) < 0)
			return rc;
		for (k = 0; k < nf; k++) {
			if ((rc = get_num(c, mp->nframe ? mp->nframe - 1 : 0,
					  "frame id", &v)) < 0)
				return rc;
			if (!mp->nframe)
				return bad(c, c->off - 1,
					   "frame id %llu with no frames",
					   (unsigned long long)v);
			mp->scratch[k] = mp->frame[v];
		}
		mp->tb[i] = snapshot_intern_traceback(s, mp->scratch,
						      (uint32_t)nf,
						      (uint32_t)(nf + extra));
		if (mp->tb[i] == SNAP_NONE)
			return oom(c);
	}
	return 0;
}

/* A sampled trace's estimates after its size (FORMATS.md: the blocks in
 * use, then what was allocated beyond what is in use), added to s. */
static int read_sample(struct cur *c, struct snapshot *s, uint32_t domain,
		       uint64_t size, uint32_t tb, size_t at)
{
	struct snap_sample e;
	uint64_t d1, d2;
	int rc;

	if ((rc = get_varint(c, &e.count)) < 0 ||
	    (rc = get_varint(c, &d1)) < 0 || (rc = get_varint(c, &d2)) < 0)
		return rc;
	if (d1 > UINT64_MAX - size || d2 > UINT64_MAX - e.count)
		return bad(c, at, "estimate overflow");
	e.alloc_size = size + d1;
	e.alloc_count = e.count + d2;
	rc = snapshot_add_sample(s, domain, size, tb, &e);
	if (rc == -EOVERFLOW)
		return bad(c, at, "the estimates add up to more than 2^63-1");
	if (rc == -EINVAL)
		return bad(c, at, "an estimate of bytes without blocks");
	return rc < 0 ? oom(c) : 0;
}

static int read_traces(struct cur *c, struct snapshot *s, struct maps *mp)
{
	uint64_t total, seen = 0, t;
	int rc;

	c->what = "traces";
	if ((rc = get_count(c, 1, "trace count", &total)) < 0)
		return rc;
	if (snap_reserve_traces(s, (size_t)total) < 0)
		return oom(c);
	for (t = 0; t < mp->ntb; t++) {
		uint64_t nruns, r;

		if ((rc = get_count(c, 1, "run count", &nruns)) < 0)
			return rc;
		for (r = 0; r < nruns; r++) {
			uint64_t domain, n, k, size = 0, d;
			size_t at;

			if ((rc = get_num(c, UINT32_MAX, "domain", &domain)) < 0)
				return rc;
			at = c->off;
			if ((rc = get_count(c, 1, "run length", &n)) < 0)
				return rc;
			if (n > total - seen)
				return bad(c, at,
					   "more traces than the %llu announced",
					   (unsigned long long)total);
			for (k = 0; k < n; k++) {
				at = c->off;
				if ((rc = get_varint(c, &d)) < 0)
					return rc;
				if (d > UINT64_MAX - size)
					return bad(c, at, "size overflow");
				size += d;
				if (s->meta.sample_size) {
					rc = read_sample(c, s, (uint32_t)domain,
							 size, mp->tb[t], at);
					if (rc < 0)
						return rc;
					continue;
				}
				rc = snapshot_add_trace(s, (uint32_t)domain,
							size, mp->tb[t]);
				if (rc == -EOVERFLOW)
					return bad(c, at, "the sizes add up to "
						   "more than 2^63-1 bytes");
				if (rc < 0)
					return oom(c);
			}
			seen += n;
		}
	}
	if (seen != total)
		return bad(c, c->off, "%llu traces, %llu announced",
			   (unsigned long long)seen, (unsigned long long)total);
	return 0;
}

static int read_sources(struct cur *c, struct snapshot *s, struct maps *mp)
{
	uint64_t n, i, fid, lineno;
	int rc;

	c->what = "source table";
	if ((rc = get_count(c, 3, "source count", &n)) < 0)
		return rc;
	for (i = 0; i < n; i++) {
		const char *p;
		size_t len;

		if ((rc = get_num(c, mp->nstr ? mp->nstr - 1 : 0, "string id",
				  &fid)) < 0)
			return rc;
		if (!mp->nstr)
			return bad(c, c->off - 1, "string id with no strings");
		if ((rc = get_num(c, UINT32_MAX, "line number", &lineno)) < 0 ||
		    (rc = get_str(c, SNAP_STR_MAX, &p, &len)) < 0)
			return rc;
		if (snapshot_set_source(s, mp->str[fid], (uint32_t)lineno, p,
					len) < 0)
			return oom(c);
	}
	return 0;
}

struct snapshot *snapshot_read_trm_mem(const uint8_t *buf, size_t len,
				       struct trm_err *err)
{
	struct cur c = { buf, len, 0, "header", err };
	struct maps mp = { 0 };
	struct snapshot *s = NULL;
	uint32_t version, flags, crc, want;
	int rc;

	if (!buf && len) {
		errno = EINVAL;
		return NULL;
	}
	if (len < 8 || memcmp(buf, TRM_MAGIC, 8) != 0) {
		rc = len < 8 && memcmp(buf, TRM_MAGIC, len) == 0 ?
			     truncated(&c) :
			     trm_err_set(err, -TRM_EFORMAT,
					 "not a .trm file (bad magic at byte 0)");
		goto out;
	}
	c.off = 8;
	if ((rc = get_u32(&c, &version)) < 0)
		goto out;
	if (version > SNAP_TRM_VERSION) {
		rc = trm_err_set(err, -TRM_EFORMAT,
				 "format version %u is newer than this trmtop "
				 "supports (%u)",
				 version, SNAP_TRM_VERSION);
		trm_err_hint(err, "upgrade trmtop to read this file");
		goto out;
	}
	if (version == 0) {
		rc = bad(&c, 8, "bad format version 0");
		goto out;
	}
	if ((rc = get_u32(&c, &flags)) < 0)
		goto out;
	if ((flags & ~TRM_FLAGS_KNOWN) ||
	    ((flags & TRM_FLAG_SAMPLED) && version < 2)) {
		rc = bad(&c, 12, "unknown flags 0x%x", flags);
		goto out;
	}
	s = snapshot_new();
	if (!s) {
		rc = oom(&c);
		goto out;
	}
	if ((rc = read_meta(&c, &s->meta)) < 0 ||
	    ((flags & TRM_FLAG_SAMPLED) && (rc = read_sample_size(&c, s)) < 0) ||
	    (rc = read_tables(&c, s, &mp)) < 0 ||
	    (rc = read_traces(&c, s, &mp)) < 0)
		goto out;
	if ((flags & TRM_FLAG_SOURCE) && (rc = read_sources(&c, s, &mp)) < 0)
		goto out;
	c.what = "trailer";
	want = snap_crc32(0, buf, c.off);
	if ((rc = get_u32(&c, &crc)) < 0)
		goto out;
	if (left(&c) < 4) {
		rc = truncated(&c);
		goto out;
	}
	if (memcmp(buf + c.off, TRM_END, 4) != 0) {
		rc = bad(&c, c.off, "bad end marker");
		goto out;
	}
	c.off += 4;
	if (crc != want) {
		rc = bad(&c, c.off - 8,
			 "checksum mismatch (0x%08x, computed 0x%08x)", crc,
			 want);
		goto out;
	}
	if (left(&c)) {
		rc = bad(&c, c.off, "%zu bytes of trailing data", left(&c));
		goto out;
	}
	rc = 0;
out:
	free(mp.str);
	free(mp.frame);
	free(mp.tb);
	free(mp.scratch);
	if (rc < 0) {
		snapshot_free(s);
		errno = rc == -ENOMEM ? ENOMEM : (rc == -EINVAL ? EINVAL : -rc);
		return NULL;
	}
	return s;
}

struct snapshot *snapshot_read_trm(FILE *f, struct trm_err *err)
{
	struct snapshot *s = NULL;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int rc = 0;

	for (;;) {
		size_t got;

		if (cap - len < 65536) {
			size_t ncap = cap ? cap * 2 : 1u << 20;
			uint8_t *nb;

			if (ncap < cap || !(nb = realloc(buf, ncap))) {
				rc = trm_err_set(err, -ENOMEM,
						 "reading .trm: out of memory");
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f)) {
				rc = -(errno ? errno : EIO);
				trm_err_set(err, rc, "read: %s", strerror(-rc));
				goto out;
			}
			break;
		}
	}
	s = snapshot_read_trm_mem(buf, len, err);
	if (!s)
		rc = -errno;
out:
	free(buf);
	if (!s)
		errno = rc < 0 ? -rc : EINVAL;
	return s;
}
