/* snap.c - the agent's answer to SNAPSHOT_REQ (wire.h, "Snapshots").
 *
 * Runs on the control thread.  With the GIL: one _tracemalloc._get_traces()
 * call (the snapshot's moment), then the list is converted into plain C
 * arrays slice by slice from its end, each converted slice deleted from
 * the list at once (so its objects are freed while their memory is still
 * warm) and the GIL yielded between slices, so that the application's
 * threads wait at most one slice.  Tracebacks are interned by tuple
 * address within the list (identical tracebacks share one tuple in a
 * _get_traces() result; every object looked up is alive in the list, so
 * addresses cannot be reused among them) and by content in the
 * connection's tables.  Without the GIL: encode and write the frames. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_int.h"

#define SLICE 16384u   /* traces converted per GIL hold */
#define TEXT_MAX 256u

struct snap_tr {
	uint64_t size;
	uint32_t tb, domain;
};

/* PyObject address -> id, open addressing, at most half full. */
struct ptrmap {
	const void **keys;
	uint32_t *vals;
	size_t mask, n;
};

/* Everything one snapshot needs; freed by snap_fini. */
struct snap_ctx {
	struct agent_sess *s;
	bool estimates; /* sampled, with all four figures (wire.h) */
	struct wire_trace_est *est; /* then: parallel to tr */
	struct wire_intern_counts mark; /* tables before this snapshot */
	struct snap_tr *tr;
	size_t ntr;
	struct ptrmap tbs, strs;
	uint32_t *fids;
	size_t fids_cap;
	uint8_t *buf; /* one chunk */
	struct wire_snap_head head;
	struct wire_snap_end end;
	uint64_t t_hold; /* when the current GIL hold began */
	char text[TEXT_MAX];
	uint32_t code; /* WIRE_ERR_* when failing */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void hold_begin(struct snap_ctx *c)
{
	c->t_hold = now_ns();
}

static void hold_end(struct snap_ctx *c)
{
	uint64_t d = now_ns() - c->t_hold;

	c->end.gil_ns += d;
	if (d > c->end.gil_max_ns)
		c->end.gil_max_ns = d;
}

/* Release the GIL and take it again: a thread waiting for it (one that
 * asked for a switch) runs first.  Its hold time is not counted. */
static void yield_gil(struct snap_ctx *c)
{
	hold_end(c);
	Py_BEGIN_ALLOW_THREADS
	Py_END_ALLOW_THREADS
	hold_begin(c);
}

/* ---- pointer map ---- */

static size_t ptr_hash(const void *p)
{
	uint64_t h = (uint64_t)(uintptr_t)p;

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (size_t)h;
}

static void ptrmap_fini(struct ptrmap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* 1 with *val when found, 0 when not. */
static int ptrmap_get(const struct ptrmap *m, const void *k, uint32_t *val)
{
	if (!m->keys)
		return 0;
	for (size_t i = ptr_hash(k) & m->mask; m->keys[i];
	     i = (i + 1) & m->mask) {
		if (m->keys[i] == k) {
			*val = m->vals[i];
			return 1;
		}
	}
	return 0;
}

static void ptrmap_put_raw(struct ptrmap *m, const void *k, uint32_t val)
{
	size_t i = ptr_hash(k) & m->mask;

	while (m->keys[i])
		i = (i + 1) & m->mask;
	m->keys[i] = k;
	m->vals[i] = val;
}

/* Add k (not present).  0 or -ENOMEM. */
static int ptrmap_put(struct ptrmap *m, const void *k, uint32_t val)
{
	if (!m->keys || m->n + 1 > (m->mask + 1) / 2) {
		size_t slots = m->keys ? (m->mask + 1) * 2 : 1024;
		struct ptrmap nm = { 0 };

		nm.keys = calloc(slots, sizeof(*nm.keys));
		nm.vals = malloc(slots * sizeof(*nm.vals));
		if (!nm.keys || !nm.vals) {
			free(nm.keys);
			free(nm.vals);
			return -ENOMEM;
		}
		nm.mask = slots - 1;
		for (size_t i = 0; m->keys && i <= m->mask; i++)
			if (m->keys[i])
				ptrmap_put_raw(&nm, m->keys[i], m->vals[i]);
		nm.n = m->n;
		ptrmap_fini(m);
		*m = nm;
	}
	ptrmap_put_raw(m, k, val);
	m->n++;
	return 0;
}

/* ---- conversion (GIL held) ---- */

/* Fail with an out-of-memory ERROR; returns -1. */
static int nomem(struct snap_ctx *c)
{
	c->code = WIRE_ERR_NOMEM;
	snprintf(c->text, sizeof(c->text), "agent: out of memory");
	return -1;
}

/* Fail with the current Python exception (or a plain text); -1. */
static int pyfail(struct snap_ctx *c, const char *what)
{
	c->code = WIRE_ERR_PYTHON;
	if (PyErr_Occurred())
		agent_py_error(what, c->text, sizeof(c->text));
	else
		snprintf(c->text, sizeof(c->text), "%s: unexpected value", what);
	return -1;
}

/* An intern result: >= 0 fine, else fail.  -1 on failure. */
static int interned(struct snap_ctx *c, int rc)
{
	if (rc >= 0)
		return 0;
	if (rc == -ENOMEM)
		return nomem(c);
	c->code = WIRE_ERR_UNKNOWN;
	snprintf(c->text, sizeof(c->text), "agent: interning failed: %s",
		 strerror(-rc));
	return -1;
}

/* Connection id of filename object fn.  0 or -1. */
static int conv_str(struct snap_ctx *c, PyObject *fn, uint32_t *id)
{
	PyObject *b;
	char *p;
	Py_ssize_t len;
	int rc;

	if (ptrmap_get(&c->strs, fn, id))
		return 0;
	if (!PyUnicode_Check(fn)) {
		PyErr_Clear();
		return pyfail(c, "snapshot: filename");
	}
	b = PyUnicode_AsEncodedString(fn, "utf-8", "surrogateescape");
	if (!b)
		return pyfail(c, "snapshot: filename");
	if (PyBytes_AsStringAndSize(b, &p, &len) < 0) {
		Py_DECREF(b);
		return pyfail(c, "snapshot: filename");
	}
	if ((size_t)len > WIRE_SNAP_STR_MAX) {
		len = WIRE_SNAP_STR_MAX; /* cut at a UTF-8 boundary */
		while (len > 0 && ((unsigned char)p[len] & 0xC0) == 0x80)
			len--;
	}
	rc = wire_intern_str(c->s->tables, p, (size_t)len, id);
	Py_DECREF(b);
	if (interned(c, rc) < 0)
		return -1;
	return ptrmap_put(&c->strs, fn, *id) < 0 ? nomem(c) : 0;
}

static int as_u32(PyObject *o, uint32_t *out)
{
	long v = PyLong_AsLong(o);

	if (v == -1 && PyErr_Occurred())
		return -1;
	*out = v < 0 ? 0 : (unsigned long)v > UINT32_MAX ? UINT32_MAX
							: (uint32_t)v;
	return 0;
}

/* Connection id of traceback tuple tbo (total: the trace's total_nframe
 * object, NULL before 3.9).  0 or -1. */
static int conv_tb(struct snap_ctx *c, PyObject *tbo, PyObject *total,
		   uint32_t *id)
{
	Py_ssize_t nf = PyTuple_Size(tbo);
	uint32_t tot, n;

	if (nf < 0)
		return pyfail(c, "snapshot: traceback");
	n = (size_t)nf > WIRE_SNAP_NFRAME_MAX ? WIRE_SNAP_NFRAME_MAX : (uint32_t)nf;
	tot = (size_t)nf > UINT32_MAX ? UINT32_MAX : (uint32_t)nf;
	if (total && as_u32(total, &tot) < 0)
		return pyfail(c, "snapshot: total_nframe");
	if (n > c->fids_cap) {
		uint32_t *f = realloc(c->fids, n * sizeof(*f));
		if (!f)
			return nomem(c);
		c->fids = f;
		c->fids_cap = n;
	}
	for (uint32_t k = 0; k < n; k++) {
		PyObject *fr = PyTuple_GetItem(tbo, k), *fn, *ln;
		uint32_t sid, lineno;

		if (!fr || !(fn = PyTuple_GetItem(fr, 0)) ||
		    !(ln = PyTuple_GetItem(fr, 1)))
			return pyfail(c, "snapshot: frame");
		if (conv_str(c, fn, &sid) < 0)
			return -1;
		if (as_u32(ln, &lineno) < 0)
			return pyfail(c, "snapshot: lineno");
		if (interned(c, wire_intern_frame(c->s->tables, sid, lineno,
						  &c->fids[k])) < 0)
			return -1;
	}
	if (interned(c, wire_intern_traceback(c->s->tables, c->fids, n, tot,
					      id)) < 0)
		return -1;
	return ptrmap_put(&c->tbs, tbo, *id) < 0 ? nomem(c) : 0;
}

/* Convert list[lo..hi) into c->tr.  0 or -1. */
static int conv_slice(struct snap_ctx *c, PyObject *list, size_t lo, size_t hi)
{
	const void *last = NULL;
	uint32_t last_id = 0;

	for (size_t j = lo; j < hi; j++) {
		PyObject *it = PyList_GetItem(list, (Py_ssize_t)j);
		PyObject *dom, *size, *tbo, *total = NULL;
		Py_ssize_t k;
		struct snap_tr *t = &c->tr[j];
		unsigned long d;

		if (!it)
			return pyfail(c, "snapshot: trace");
		k = PyTuple_Size(it);
		if (k < 3)
			return pyfail(c, "snapshot: trace");
		dom = PyTuple_GetItem(it, 0);
		size = PyTuple_GetItem(it, 1);
		tbo = PyTuple_GetItem(it, 2);
		if (k >= 4)
			total = PyTuple_GetItem(it, 3);
		if (!dom || !size || !tbo || (k >= 4 && !total))
			return pyfail(c, "snapshot: trace");
		d = PyLong_AsUnsignedLong(dom);
		if (d == (unsigned long)-1 && PyErr_Occurred())
			return pyfail(c, "snapshot: domain");
		t->domain = (uint32_t)d;
		t->size = PyLong_AsUnsignedLongLong(size);
		if (t->size == (unsigned long long)-1 && PyErr_Occurred())
			return pyfail(c, "snapshot: size");
		if (tbo == last) {
			t->tb = last_id;
		} else {
			if (!ptrmap_get(&c->tbs, tbo, &t->tb) &&
			    conv_tb(c, tbo, total, &t->tb) < 0)
				return -1;
			last = tbo;
			last_id = t->tb;
		}
		c->end.total_size += t->size;
	}
	return 0;
}

/* Call _tracemalloc.<fn>().  0 or -1. */
static int tm_call(struct snap_ctx *c, enum agent_tm_fn fn, const char *name,
		   PyObject **out)
{
	*out = agent_tm_call(fn, NULL);
	if (!*out)
		return pyfail(c, name);
	return 0;
}

/* The GC switches of 3.10+ (weak: NULL on 3.8 and 3.9, which have no C
 * API for it and get the gc module instead). */
extern int PyGC_Enable(void) __attribute__((weak));
extern int PyGC_Disable(void) __attribute__((weak));

/* Disable the cyclic GC if it is enabled; true when it was.  On 3.8 and
 * 3.9 through the gc module (then *gc holds it for gc_resume), later
 * through the C API, which imports nothing.  Errors are cleared: no
 * pause then. */
static bool gc_pause(PyObject **gc)
{
	PyObject *r;
	int on;

	*gc = NULL;
	if (PyGC_Disable && PyGC_Enable)
		return PyGC_Disable() == 1;
	*gc = PyImport_ImportModule("gc");
	if (!*gc)
		goto fail;
	r = PyObject_CallMethod(*gc, "isenabled", NULL);
	if (!r)
		goto fail;
	on = PyObject_IsTrue(r);
	Py_DECREF(r);
	if (on <= 0)
		goto fail;
	r = PyObject_CallMethod(*gc, "disable", NULL);
	if (!r)
		goto fail;
	Py_DECREF(r);
	return true;
fail:
	PyErr_Clear();
	return false;
}

/* Enable the GC again, keeping any exception already set. */
static void gc_resume(PyObject *gc)
{
	PyObject *type, *value, *tb, *r;

	if (!gc) {
		PyGC_Enable();
		return;
	}
	PyErr_Fetch(&type, &value, &tb);
	r = PyObject_CallMethod(gc, "enable", NULL);
	Py_XDECREF(r);
	PyErr_Clear();
	PyErr_Restore(type, value, tb);
}

/* The GIL part: fills c->head, c->tr and the tables.  0 or -1 (c->code,
 * c->text say why; the tables are rolled back by the caller). */
static int copy_traces(struct snap_ctx *c)
{
	PyObject *mem = NULL, *list = NULL, *gc = NULL;
	unsigned long long ull;
	Py_ssize_t n;
	size_t hi;
	bool gc_paused;
	int rc = -1;

	if (agent_tm_state(&c->head.tracing, &c->head.traceback_limit) < 0) {
		pyfail(c, "tracemalloc state");
		goto out;
	}
	if (c->head.tracing == WIRE_TRACING_OFF) {
		c->code = WIRE_ERR_NOT_TRACING;
		snprintf(c->text, sizeof(c->text), "tracemalloc is not tracing");
		goto out;
	}
	if (tm_call(c, AGENT_TM_GET_TRACED_MEMORY, "get_traced_memory", &mem) < 0)
		goto out;
	if (!PyArg_ParseTuple(mem, "KK", &c->head.traced_current,
			      &c->head.traced_peak)) {
		pyfail(c, "get_traced_memory");
		goto out;
	}
	if (agent_tm_ull(AGENT_TM_GET_TRACEMALLOC_MEMORY, &ull) < 0) {
		pyfail(c, "get_tracemalloc_memory");
		goto out;
	}
	c->head.tracemalloc_memory = ull;
	/* The cyclic GC would traverse the million tuples _get_traces is
	 * creating, which we free right after: pause it for that one call
	 * (the GIL is not released in between, so no Python code sees it).
	 * The freed tuples take back the allocation count they added. */
	gc_paused = gc_pause(&gc);
	rc = tm_call(c, AGENT_TM_GET_TRACES, "_get_traces", &list);
	if (gc_paused)
		gc_resume(gc);
	Py_XDECREF(gc);
	if (rc < 0)
		goto out;
	rc = -1;
	n = PyList_Size(list);
	if (n < 0) {
		pyfail(c, "_get_traces");
		goto out;
	}
	c->ntr = (size_t)n;
	c->tr = malloc((c->ntr ? c->ntr : 1) * sizeof(*c->tr));
	c->fids_cap = c->head.traceback_limit ? c->head.traceback_limit : 1;
	if (c->fids_cap > WIRE_SNAP_NFRAME_MAX)
		c->fids_cap = WIRE_SNAP_NFRAME_MAX;
	c->fids = malloc(c->fids_cap * sizeof(*c->fids));
	if (!c->tr || !c->fids) {
		nomem(c);
		goto out;
	}
	/* From the end, so that deleting a converted slice moves nothing;
	 * the application's threads may run between the slices (the list
	 * and its tuples are ours alone, and immutable). */
	for (hi = c->ntr; hi > 0;) {
		size_t lo = hi > SLICE ? hi - SLICE : 0;

		yield_gil(c);
		if (conv_slice(c, list, lo, hi) < 0)
			goto out;
		if (PyList_SetSlice(list, (Py_ssize_t)lo, (Py_ssize_t)hi,
				    NULL) < 0) {
			pyfail(c, "snapshot: list");
			goto out;
		}
		hi = lo;
	}
	c->head.ntraces = c->ntr;
	c->end.ntraces = c->ntr;
	rc = 0;
out:
	Py_XDECREF(list);
	Py_XDECREF(mem);
	PyErr_Clear();
	return rc;
}

/* The wire id of the sampler's traceback tb (its frames, strings and
 * traceback interned in the connection's tables: sent once).  0, or -1
 * with c's error set. */
static int intern_stb(struct snap_ctx *c, const struct agent_stb *tb,
		      uint32_t *id)
{
	uint32_t nf = tb->n < c->fids_cap ? tb->n : (uint32_t)c->fids_cap;

	for (uint32_t k = 0; k < nf; k++) {
		uint32_t sid;

		if (conv_str(c, tb->f[k].filename, &sid) < 0 ||
		    interned(c, wire_intern_frame(c->s->tables, sid, tb->f[k].lineno,
						  &c->fids[k])) < 0)
			return -1;
	}
	return interned(c, wire_intern_traceback(c->s->tables, c->fids, nf, nf,
						 id)) < 0 ? -1 : 0;
}

/* The sampler's estimates as traces, one per traceback (wire.h,
 * "Sampled snapshots"): with c->estimates every traceback with a non-zero
 * allocated estimate and all four figures, else (an older trmtop) those
 * with a non-zero in-use estimate and their bytes.  GIL held (the
 * tracebacks and their filenames stay alive meanwhile).  0 or -1. */
static int copy_samples(struct snap_ctx *c)
{
	struct agent_sample_row *rows = NULL;
	struct agent_sample_stats ss;
	size_t n = 0;
	int rc = -1;

	if (agent_tm_state(&c->head.tracing, &c->head.traceback_limit) < 0) {
		pyfail(c, "tracemalloc state");
		goto out;
	}
	agent_sample_stats(&ss);
	if (!ss.size) {
		c->code = WIRE_ERR_NOT_TRACING;
		snprintf(c->text, sizeof(c->text), "the sampler is not running");
		goto out;
	}
	if (agent_sample_rows(&rows, &n) < 0) {
		nomem(c);
		goto out;
	}
	c->head.sample_size = ss.size;
	c->head.traceback_limit = ss.nframe;
	c->head.tracemalloc_memory = ss.memory;
	c->tr = malloc((n ? n : 1) * sizeof(*c->tr));
	if (c->estimates)
		c->est = malloc((n ? n : 1) * sizeof(*c->est));
	c->fids_cap = ss.nframe ? ss.nframe : 1;
	c->fids = malloc(c->fids_cap * sizeof(*c->fids));
	if (!c->tr || !c->fids || (c->estimates && !c->est)) {
		nomem(c);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct snap_tr *t = &c->tr[c->ntr];

		if (!c->estimates && !rows[i].inuse_bytes)
			continue;
		if (intern_stb(c, rows[i].tb, &t->tb) < 0)
			goto out;
		t->size = rows[i].inuse_bytes;
		t->domain = 0;
		if (c->est)
			c->est[c->ntr] = (struct wire_trace_est){
				rows[i].inuse_blocks, rows[i].alloc_bytes,
				rows[i].alloc_blocks };
		c->end.total_size += rows[i].inuse_bytes;
		c->ntr++;
	}
	c->head.traced_current = c->end.total_size;
	c->head.ntraces = c->ntr;
	c->end.ntraces = c->ntr;
	rc = 0;
out:
	free(rows);
	PyErr_Clear();
	return rc;
}

/* ---- table replies (wire.h, "Only the changed rows") ----
 *
 * The connection's table: per wire traceback id, the sum of the figures
 * of the sampler's tracebacks that intern to it (blocks rounded per
 * sampler traceback, as agent_sample_rows gives them), as last sent; per sampler traceback (by its idx), its wire id and the figures
 * it added to that sum.  A reply asks the sampler for the tracebacks
 * changed since the last reply (the sampler's lock is held for those
 * only, and nothing is allocated under it), interns only those it has
 * not sent yet, updates the sums and sends the ids whose sum changed.
 * Everything that can fail comes before the first change to the table,
 * so an ERROR reply leaves it as the receiver has it.  Control thread,
 * GIL held (it keeps the sampler's tracebacks alive). */

struct tab_stb {
	uint32_t wid1; /* wire traceback id + 1; 0: not yet in the table */
	uint64_t f[4]; /* what it added: in-use bytes, blocks, allocated */
};

struct tab_row {
	uint64_t f[4]; /* summed figures (whole blocks) */
	uint64_t gen;  /* the reply that last marked it changed */
	bool present;
};

struct agent_tab {
	bool valid;                  /* a table reply was sent */
	struct agent_sample_mark at; /* where the sampler stood for it */
	struct tab_stb *stb;
	size_t cap_stb;
	struct tab_row *row;
	size_t cap_row, nrows;
	uint64_t inuse; /* in-use bytes of the whole table */
	uint64_t gen;
	struct agent_sample_row *buf; /* the changed rows of a reply */
	uint32_t *ids;                /* their wire ids */
	size_t cap_buf;
};

void agent_tab_free(struct agent_tab *t)
{
	if (!t)
		return;
	free(t->stb);
	free(t->row);
	free(t->buf);
	free(t->ids);
	free(t);
}

/* Grow *arr (of *cap entries of sz bytes, new ones zeroed) to at least n.
 * 0 or -1. */
static int tab_grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	size_t nc = *cap ? *cap : 64;
	void *p;

	if (n <= *cap)
		return 0;
	while (nc < n)
		nc *= 2;
	p = realloc(*arr, nc * sz);
	if (!p)
		return -1;
	memset((char *)p + *cap * sz, 0, (nc - *cap) * sz);
	*arr = p;
	*cap = nc;
	return 0;
}

/* The changed rows into t->buf (*n of them) and where the sampler stands
 * into *now.  0 or -1. */
static int tab_changed(struct snap_ctx *c, struct agent_tab *t, size_t *n,
		       struct agent_sample_mark *now)
{
	struct agent_sample_mark since = { 0 };
	int rc;

	if (t->valid)
		since = t->at;
	while ((rc = agent_sample_changed(&since, t->buf, t->cap_buf, n, now)) ==
	       -ENOSPC) {
		size_t want = *n + *n / 2 + 16;
		void *b = realloc(t->buf, want * sizeof(*t->buf));

		if (!b)
			return nomem(c);
		t->buf = b;
		b = realloc(t->ids, want * sizeof(*t->ids));
		if (!b)
			return nomem(c);
		t->ids = b;
		t->cap_buf = want;
	}
	if (rc < 0) {
		c->code = WIRE_ERR_NOT_TRACING;
		snprintf(c->text, sizeof(c->text), "the sampler is not running");
		return -1;
	}
	return 0;
}

/* The wire id of each changed row into t->ids, interning the tracebacks
 * not yet sent.  0 or -1 (the caller rolls the tables back). */
static int tab_intern(struct snap_ctx *c, struct agent_tab *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct agent_stb *tb = t->buf[i].tb;

		if (t->stb[tb->idx].wid1) {
			t->ids[i] = t->stb[tb->idx].wid1 - 1;
			continue;
		}
		if (intern_stb(c, tb, &t->ids[i]) < 0)
			return -1;
	}
	return 0;
}

/* Apply the n changed rows to the table and list the changed wire ids
 * in c->tr / c->est (sized n).  Cannot fail. */
static void tab_apply(struct snap_ctx *c, struct agent_tab *t, size_t n)
{
	uint64_t gen = ++t->gen;

	for (size_t i = 0; i < n; i++) {
		const struct agent_sample_row *r = &t->buf[i];
		/* blocks rounded per sampler traceback, as a reply of
		 * every traceback has them */
		const uint64_t f[4] = {
			r->inuse_bytes, agent_sample_whole_blocks(r->inuse_blocks),
			r->alloc_bytes, agent_sample_whole_blocks(r->alloc_blocks) };
		struct tab_stb *st = &t->stb[r->tb->idx];
		struct tab_row *row = &t->row[t->ids[i]];

		st->wid1 = t->ids[i] + 1;
		t->inuse += f[0] - st->f[0]; /* modulo 2^64: sums of parts */
		for (int k = 0; k < 4; k++) {
			row->f[k] += f[k] - st->f[k];
			st->f[k] = f[k];
		}
		if (!row->present) {
			row->present = true;
			t->nrows++;
		}
		if (row->gen != gen) {
			row->gen = gen;
			c->tr[c->ntr].tb = t->ids[i];
			c->ntr++;
		}
	}
	for (size_t i = 0; i < c->ntr; i++) {
		const struct tab_row *row = &t->row[c->tr[i].tb];

		c->tr[i].size = row->f[0];
		c->tr[i].domain = 0;
		c->est[i] = (struct wire_trace_est){ row->f[1], row->f[2],
						     row->f[3] };
		c->end.total_size += row->f[0];
	}
}

/* A table reply: only the rows changed since the last (or all of them,
 * WIRE_TABLE_FULL, for the first reply of a connection and after the
 * sampler restarted).  GIL held.  0 or -1. */
static int copy_table(struct snap_ctx *c)
{
	struct agent_sample_stats ss;
	struct agent_sample_mark now;
	struct wire_intern_counts cnt;
	struct agent_tab *t = c->s->tab;
	size_t n = 0;
	bool full;

	if (agent_tm_state(&c->head.tracing, &c->head.traceback_limit) < 0)
		return pyfail(c, "tracemalloc state");
	agent_sample_stats(&ss);
	if (!ss.size) {
		c->code = WIRE_ERR_NOT_TRACING;
		snprintf(c->text, sizeof(c->text), "the sampler is not running");
		return -1;
	}
	if (!t && !(t = c->s->tab = calloc(1, sizeof(*t))))
		return nomem(c);
	if (tab_changed(c, t, &n, &now) < 0)
		return -1;
	full = !t->valid || now.epoch != t->at.epoch;
	if (full) {
		/* a new connection or a new run: every row is new.  Not valid
		 * until this reply is made (an ERROR reply: full again). */
		t->valid = false;
		if (t->stb)
			memset(t->stb, 0, t->cap_stb * sizeof(*t->stb));
		if (t->row)
			memset(t->row, 0, t->cap_row * sizeof(*t->row));
		t->nrows = 0;
		t->inuse = 0;
	}
	c->head.sample_size = ss.size;
	c->head.traceback_limit = ss.nframe;
	c->head.tracemalloc_memory = ss.memory;
	c->fids_cap = ss.nframe ? ss.nframe : 1;
	c->fids = malloc(c->fids_cap * sizeof(*c->fids));
	c->tr = malloc((n ? n : 1) * sizeof(*c->tr));
	c->est = malloc((n ? n : 1) * sizeof(*c->est));
	if (!c->fids || !c->tr || !c->est ||
	    tab_grow((void **)&t->stb, &t->cap_stb, now.nidx, sizeof(*t->stb)) < 0)
		return nomem(c);
	if (tab_intern(c, t, n) < 0)
		return -1;
	wire_intern_counts(c->s->tables, &cnt);
	if (tab_grow((void **)&t->row, &t->cap_row, cnt.tracebacks,
		     sizeof(*t->row)) < 0)
		return nomem(c);
	tab_apply(c, t, n);
	t->at = now;
	t->valid = true;
	c->head.table = full ? WIRE_TABLE_FULL : WIRE_TABLE_DELTA;
	c->head.table_rows = t->nrows;
	c->head.traced_current = t->inuse;
	c->head.ntraces = c->ntr;
	c->end.ntraces = c->ntr;
	return 0;
}

/* ---- encoding (no GIL) ---- */

static int send_chunk(struct snap_ctx *c, struct wire_chunk *ck)
{
	size_t len = wire_chunk_finish(ck);

	return len ? wire_write_all(c->s->data_fd, c->buf, len) : 0;
}

/* Add an entry with add(), flushing the chunk when full.  0 or -errno. */
#define ADD(c, ck, call)                                                 \
	do {                                                             \
		int rc_ = (call);                                        \
		if (rc_ == -ENOSPC) {                                    \
			uint32_t next_ = (ck)->first + (ck)->count;      \
			rc_ = send_chunk((c), (ck));                     \
			if (rc_ < 0)                                     \
				return rc_;                              \
			wire_chunk_begin((ck), (c)->buf, cap, (ck)->type, next_); \
			rc_ = (call);                                    \
		}                                                        \
		if (rc_ < 0)                                             \
			return rc_;                                      \
	} while (0)

static int send_all(struct snap_ctx *c)
{
	const struct wire_intern *t = c->s->tables;
	struct wire_intern_counts now;
	struct wire_chunk ck;
	size_t cap = WIRE_HDR_SIZE + WIRE_SNAP_CHUNK_MAX;
	int n, rc;

	wire_intern_counts(t, &now);
	n = wire_enc_snap_head(c->buf, cap, &c->head);
	if ((rc = wire_write_all(c->s->data_fd, c->buf, (size_t)n)) < 0)
		return rc;

	wire_chunk_begin(&ck, c->buf, cap, WIRE_SNAP_STRINGS, c->mark.strings);
	for (uint32_t id = c->mark.strings; id < now.strings; id++) {
		uint32_t len;
		const uint8_t *s = wire_intern_get_str(t, id, &len);
		ADD(c, &ck, wire_chunk_add_string(&ck, s, len));
	}
	if ((rc = send_chunk(c, &ck)) < 0)
		return rc;

	wire_chunk_begin(&ck, c->buf, cap, WIRE_SNAP_FRAMES, c->mark.frames);
	for (uint32_t id = c->mark.frames; id < now.frames; id++) {
		uint32_t sid, lineno;
		wire_intern_get_frame(t, id, &sid, &lineno);
		ADD(c, &ck, wire_chunk_add_frame(&ck, sid, lineno));
	}
	if ((rc = send_chunk(c, &ck)) < 0)
		return rc;

	wire_chunk_begin(&ck, c->buf, cap, WIRE_SNAP_TRACEBACKS,
			 c->mark.tracebacks);
	for (uint32_t id = c->mark.tracebacks; id < now.tracebacks; id++) {
		uint32_t nf, total;
		const uint32_t *f = wire_intern_get_traceback(t, id, &nf, &total);
		ADD(c, &ck, wire_chunk_add_traceback(&ck, f, nf, total));
	}
	if ((rc = send_chunk(c, &ck)) < 0)
		return rc;

	wire_chunk_begin(&ck, c->buf, cap, WIRE_SNAP_TRACES, 0);
	for (size_t i = 0; i < c->ntr; i++) {
		const struct snap_tr *tr = &c->tr[i];

		if (c->est)
			ADD(c, &ck, wire_chunk_add_trace_est(&ck, tr->size, tr->tb,
							     tr->domain, &c->est[i]));
		else
			ADD(c, &ck, wire_chunk_add_trace(&ck, tr->size, tr->tb,
							 tr->domain));
	}
	if ((rc = send_chunk(c, &ck)) < 0)
		return rc;

	c->end.nstrings = now.strings;
	c->end.nframes = now.frames;
	c->end.ntracebacks = now.tracebacks;
	n = wire_enc_snap_end(c->buf, cap, &c->end);
	return wire_write_all(c->s->data_fd, c->buf, (size_t)n);
}

static void snap_fini(struct snap_ctx *c)
{
	free(c->tr);
	free(c->est);
	free(c->fids);
	free(c->buf);
	ptrmap_fini(&c->tbs);
	ptrmap_fini(&c->strs);
}

int agent_snapshot(struct agent_sess *s, uint16_t flags)
{
	bool sampled = flags & WIRE_SNAPSHOT_SAMPLED;
	struct snap_ctx c = {
		.s = s, .estimates = sampled && (flags & WIRE_SNAPSHOT_ESTIMATES) };
	bool table = c.estimates && (flags & WIRE_SNAPSHOT_CHANGED);
	uint8_t frame[WIRE_HDR_SIZE + 4 + TEXT_MAX];
	PyGILState_STATE g;
	struct wire_intern_counts now;
	int rc, n;

	c.head.rss = agent_read_rss();
	c.head.py_hexversion = s->py_hexversion;
	if (!s->tables)
		s->tables = wire_intern_new();
	c.buf = malloc(WIRE_HDR_SIZE + WIRE_SNAP_CHUNK_MAX);
	if (!s->tables || !c.buf) {
		nomem(&c);
		goto fail;
	}
	wire_intern_counts(s->tables, &c.mark);

	if (agent_py_gone()) {
		snap_fini(&c);
		return 1; /* the interpreter is going away: detach */
	}
	g = PyGILState_Ensure();
	hold_begin(&c);
	rc = table ? copy_table(&c) : sampled ? copy_samples(&c)
					       : copy_traces(&c);
	hold_end(&c);
	PyGILState_Release(g);
	if (rc < 0) {
		wire_intern_rollback(s->tables, &c.mark);
		goto fail;
	}

	wire_intern_counts(s->tables, &now);
	c.head.first_string = c.mark.strings;
	c.head.first_frame = c.mark.frames;
	c.head.first_traceback = c.mark.tracebacks;
	c.head.new_strings = now.strings - c.mark.strings;
	c.head.new_frames = now.frames - c.mark.frames;
	c.head.new_tracebacks = now.tracebacks - c.mark.tracebacks;
	/* From here on the tables hold what we send: a failed write ends
	 * the connection, so they never disagree with trmtop's. */
	rc = send_all(&c);
	snap_fini(&c);
	return rc;
fail:
	snap_fini(&c);
	n = wire_enc_error(frame, sizeof(frame), c.code ? c.code : WIRE_ERR_UNKNOWN,
			   c.text);
	return n < 0 ? n : wire_write_all(s->data_fd, frame, (size_t)n);
}
