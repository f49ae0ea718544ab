/* test_session_snapfetch.c - the snapshot receiver (src/session/snapfetch.c)
 * fed with streams made by the wire encoders the way the agent makes
 * them: round trips, a second snapshot sending only new entries, every
 * truncation and every single-byte corruption of a stream, bad ids. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "snapfetch.h"
#include "trmtop/snapshot.h"
#include "trmtop/wire.h"

struct tr {
	uint64_t size;
	uint32_t domain;
	const char *file[3];
	uint32_t line[3];
	uint32_t n, total;
};

struct stream {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct stream *s, const uint8_t *p, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->p = realloc(s->p, s->cap);
		assert_non_null(s->p);
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
}

/* When set, make_reply makes a sampled reply: this size in SNAP_HEAD, and
 * these estimates (g_est[i] for trace i) when g_est is set. */
static uint64_t g_sample;
static const struct wire_trace_est *g_est;
/* When g_table is set (with g_sample and g_est), a table reply: these
 * table_rows and traced_current in SNAP_HEAD. */
static uint32_t g_table;
static uint64_t g_rows, g_current;

/* Encode one reply as the agent does, interning in t. */
static void make_reply(struct wire_intern *t, const struct tr *v, size_t n,
		       struct stream *out, uint32_t chunk_cap)
{
	struct wire_intern_counts m, now;
	struct wire_snap_head h = { .ntraces = n, .py_hexversion = 0x030b07f0,
				    .traceback_limit = 3, .tracing = 1,
				    .traced_current = 11, .traced_peak = 22,
				    .rss = 33, .tracemalloc_memory = 44,
				    .sample_size = g_sample };
	struct wire_snap_end e = { .ntraces = n };
	uint32_t *tb = calloc(n + 1, sizeof(*tb));
	uint8_t *buf = malloc(WIRE_HDR_SIZE + WIRE_SNAP_CHUNK_MAX);
	struct wire_chunk ck;
	int len;

	assert_non_null(tb);
	assert_non_null(buf);
	wire_intern_counts(t, &m);
	for (size_t i = 0; i < n; i++) {
		uint32_t f[3], sid;
		for (uint32_t k = 0; k < v[i].n; k++) {
			assert_true(wire_intern_str(t, v[i].file[k], strlen(v[i].file[k]),
						    &sid) >= 0);
			assert_true(wire_intern_frame(t, sid, v[i].line[k], &f[k]) >= 0);
		}
		assert_true(wire_intern_traceback(t, f, v[i].n, v[i].total, &tb[i]) >= 0);
		e.total_size += v[i].size;
	}
	wire_intern_counts(t, &now);
	if (g_table) {
		h.table = g_table;
		h.table_rows = g_rows;
		h.traced_current = g_current;
	}
	h.first_string = m.strings;
	h.first_frame = m.frames;
	h.first_traceback = m.tracebacks;
	h.new_strings = now.strings - m.strings;
	h.new_frames = now.frames - m.frames;
	h.new_tracebacks = now.tracebacks - m.tracebacks;
	len = wire_enc_snap_head(buf, 4096, &h);
	put(out, buf, (size_t)len);
	/* one entry per chunk when chunk_cap is tiny: many frames */
	for (uint32_t id = m.strings; id < now.strings; id++) {
		uint32_t sl;
		const uint8_t *s = wire_intern_get_str(t, id, &sl);
		wire_chunk_begin(&ck, buf, chunk_cap, WIRE_SNAP_STRINGS, id);
		assert_int_equal(wire_chunk_add_string(&ck, s, sl), 0);
		put(out, buf, wire_chunk_finish(&ck));
	}
	wire_chunk_begin(&ck, buf, chunk_cap, WIRE_SNAP_FRAMES, m.frames);
	for (uint32_t id = m.frames; id < now.frames; id++) {
		uint32_t sid, line;
		wire_intern_get_frame(t, id, &sid, &line);
		assert_int_equal(wire_chunk_add_frame(&ck, sid, line), 0);
	}
	put(out, buf, wire_chunk_finish(&ck));
	wire_chunk_begin(&ck, buf, chunk_cap, WIRE_SNAP_TRACEBACKS, m.tracebacks);
	for (uint32_t id = m.tracebacks; id < now.tracebacks; id++) {
		uint32_t nf, tot;
		const uint32_t *f = wire_intern_get_traceback(t, id, &nf, &tot);
		assert_int_equal(wire_chunk_add_traceback(&ck, f, nf, tot), 0);
	}
	put(out, buf, wire_chunk_finish(&ck));
	for (size_t i = 0; i < n; i += 2) { /* two traces a chunk */
		wire_chunk_begin(&ck, buf, chunk_cap, WIRE_SNAP_TRACES, (uint32_t)i);
		for (size_t j = i; j < n && j < i + 2; j++)
			assert_int_equal(g_est ? wire_chunk_add_trace_est(
							 &ck, v[j].size, tb[j],
							 v[j].domain, &g_est[j])
					       : wire_chunk_add_trace(&ck, v[j].size, tb[j],
								      v[j].domain), 0);
		put(out, buf, wire_chunk_finish(&ck));
	}
	e.nstrings = now.strings;
	e.nframes = now.frames;
	e.ntracebacks = now.tracebacks;
	len = wire_enc_snap_end(buf, 4096, &e);
	put(out, buf, (size_t)len);
	free(buf);
	free(tb);
}

/* Feed a stream's frames; returns the last feed result (1: complete). */
static int feed_all(struct snapfetch *sf, const uint8_t *p, size_t len,
		    struct trm_err *err)
{
	size_t off = 0;
	int rc = 0;

	while (off < len) {
		struct wire_msg msg;
		long n = wire_parse_frame(p + off, len - off, &msg);

		if (n <= 0)
			break;
		off += (size_t)n;
		rc = snapfetch_feed(sf, &msg, err);
		if (rc != 0)
			break;
	}
	return rc;
}

/* Is trace i of s equal to v? */
static void check_trace(const struct snapshot *s, size_t i, const struct tr *v)
{
	const struct snap_trace *t = snapshot_traces(s) + i;
	uint32_t n, total;
	const uint32_t *f = snapshot_traceback(s, t->traceback, &n, &total);

	assert_true(t->size == v->size);
	assert_int_equal(t->domain, v->domain);
	assert_int_equal(n, v->n);
	assert_int_equal(total, v->total);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t fid, line;
		size_t len;
		const char *str;

		snapshot_frame(s, f[k], &fid, &line);
		str = snapshot_str(s, fid, &len);
		assert_int_equal(line, v->line[k]);
		assert_int_equal(len, strlen(v->file[k]));
		assert_memory_equal(str, v->file[k], len);
	}
}

static const struct tr one[] = {
	{ 100, 0, { "a.py", "b.py" }, { 1, 2 }, 2, 2 },
	{ 7, 0, { "a.py", "b.py" }, { 1, 2 }, 2, 2 },
	{ 1ull << 40, 5, { "\xc3\xbc.py" }, { 0 }, 1, 9 },
	{ 3, 0, { "a.py", "a.py", "b.py" }, { 1, 1, 300 }, 3, 3 },
	{ 0, 0, { 0 }, { 0 }, 0, 0 },
};

static const struct tr two[] = {
	{ 100, 0, { "a.py", "b.py" }, { 1, 2 }, 2, 2 },
	{ 55, 0, { "c.py", "b.py" }, { 4, 2 }, 2, 2 },
};

static void test_roundtrip_two_snapshots(void **state)
{
	struct wire_intern *t = wire_intern_new();
	struct snapfetch *sf = snapfetch_new();
	struct snapshot *s = snapshot_new();
	struct stream a = { 0 }, b = { 0 };
	struct trm_err err = { 0 };
	const struct snapshot_meta *m;

	(void)state;
	assert_non_null(t);
	assert_non_null(sf);
	assert_non_null(s);
	make_reply(t, one, 5, &a, WIRE_HDR_SIZE + WIRE_SNAP_CHUNK_MAX);
	assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
	assert_int_equal(feed_all(sf, a.p, a.len, &err), 1);
	assert_int_equal(snapshot_ntraces(s), 5);
	for (size_t i = 0; i < 5; i++)
		check_trace(s, i, &one[i]);
	m = snapshot_cmeta(s);
	assert_int_equal(m->traceback_limit, 3);
	assert_int_equal(m->py_hexversion, 0x030b07f0);
	assert_true(m->traced_current == 11 && m->traced_peak == 22 &&
		    m->rss == 33 && m->tracemalloc_memory == 44);
	snapshot_free(s);

	/* the second reply sends only c.py, its frame and its traceback */
	make_reply(t, two, 2, &b, 64);
	s = snapshot_new();
	assert_non_null(s);
	assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
	assert_int_equal(feed_all(sf, b.p, b.len, &err), 1);
	assert_true(b.len < a.len);
	assert_int_equal(snapshot_ntraces(s), 2);
	check_trace(s, 0, &two[0]);
	check_trace(s, 1, &two[1]);
	assert_int_equal(snapshot_nstrs(s), 3); /* only what it uses */
	snapshot_free(s);

	/* replaying the first reply now is out of step */
	s = snapshot_new();
	assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
	assert_int_equal(feed_all(sf, a.p, a.len, &err), -TRM_EPROTO);
	assert_non_null(strstr(err.msg, "byte "));
	assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), -TRM_EPROTO);
	snapshot_free(s);
	free(a.p);
	free(b.p);
	snapfetch_free(sf);
	wire_intern_free(t);
}

static void test_error_reply(void **state)
{
	struct snapfetch *sf = snapfetch_new();
	struct snapshot *s = snapshot_new();
	struct wire_intern *t = wire_intern_new();
	struct stream a = { 0 };
	struct trm_err err = { 0 };
	uint8_t buf[128];
	int n = wire_enc_error(buf, sizeof(buf), WIRE_ERR_NOT_TRACING, "off");

	(void)state;
	assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
	assert_int_equal(feed_all(sf, buf, (size_t)n, &err), -TRM_EAGENT);
	assert_int_equal(snapfetch_agent_error(sf), WIRE_ERR_NOT_TRACING);
	/* the connection goes on */
	make_reply(t, one, 5, &a, 4096);
	assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
	assert_int_equal(snapfetch_agent_error(sf), 0);
	assert_int_equal(feed_all(sf, a.p, a.len, &err), 1);
	free(a.p);
	snapshot_free(s);
	snapfetch_free(sf);
	wire_intern_free(t);
}

/* Every prefix, and every single-byte change, of a stream: an error or a
 * snapshot, never a crash (ASan build). */
static void test_truncate_and_corrupt(void **state)
{
	struct wire_intern *t = wire_intern_new();
	struct stream a = { 0 };
	struct trm_err err;
	size_t complete = 0, errors = 0;

	(void)state;
	make_reply(t, one, 5, &a, 4096);
	for (size_t cut = 0; cut <= a.len; cut++) {
		struct snapfetch *sf = snapfetch_new();
		struct snapshot *s = snapshot_new();
		uint8_t *copy = malloc(cut ? cut : 1);

		memcpy(copy, a.p, cut);
		assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
		assert_int_equal(feed_all(sf, copy, cut, &err) == 1, cut == a.len);
		free(copy);
		snapshot_free(s);
		snapfetch_free(sf);
	}
	for (size_t i = 0; i < a.len; i++) {
		for (int x = 1; x < 256; x <<= 1) {
			struct snapfetch *sf = snapfetch_new();
			struct snapshot *s = snapshot_new();
			int rc;

			a.p[i] ^= (uint8_t)x;
			memset(&err, 0, sizeof(err));
			assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
			rc = feed_all(sf, a.p, a.len, &err);
			a.p[i] ^= (uint8_t)x;
			complete += rc == 1;
			errors += rc < 0;
			if (rc == -TRM_EPROTO)
				assert_non_null(strstr(err.msg, "byte "));
			snapshot_free(s);
			snapfetch_free(sf);
		}
	}
	assert_true(errors > 0);
	assert_true(complete > 0); /* flips in sizes, domains, linenos, meta */
	free(a.p);
	wire_intern_free(t);
}

/* A sampled reply: the snapshot is sampled and holds the estimates; a
 * sampled reply without them, or an exact one with them, or estimates
 * that cannot be, are refused; every truncation is refused. */
static void test_sampled(void **state)
{
	static const struct wire_trace_est est[5] = {
		{ 3, 2000, 7 }, { 1, 40, 1 }, { 2, 1ull << 41, 9 }, { 1, 7, 1 },
		{ 5, 60, 5 },
	};
	struct wire_trace_est bad[5];
	struct wire_intern *t;
	struct stream a = { 0 };
	struct trm_err err;
	struct snapfetch *sf;
	struct snapshot *s;
	const struct snap_sample *e;

	(void)state;
	g_sample = 65536;
	g_est = est;
	t = wire_intern_new();
	make_reply(t, one, 5, &a, 4096);
	sf = snapfetch_new();
	s = snapshot_new();
	assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
	memset(&err, 0, sizeof(err));
	assert_int_equal(feed_all(sf, a.p, a.len, &err), 1);
	assert_int_equal(snapshot_sample_size(s), 65536);
	e = snapshot_samples(s);
	assert_non_null(e);
	for (size_t i = 0; i < 5; i++) {
		check_trace(s, i, &one[i]);
		assert_int_equal(e[i].count, est[i].count);
		assert_int_equal(e[i].alloc_size, est[i].alloc_size);
		assert_int_equal(e[i].alloc_count, est[i].alloc_count);
	}
	snapshot_free(s);
	snapfetch_free(sf);
	for (size_t cut = 0; cut < a.len; cut++) {
		sf = snapfetch_new();
		s = snapshot_new();
		assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
		assert_true(feed_all(sf, a.p, cut, &err) != 1);
		snapshot_free(s);
		snapfetch_free(sf);
	}
	free(a.p);
	wire_intern_free(t);

	/* without, with, and impossible estimates */
	for (int k = 0; k < 3; k++) {
		memset(&a, 0, sizeof(a));
		memcpy(bad, est, sizeof(bad));
		bad[2].alloc_size = 1; /* allocated below in use */
		g_sample = k == 1 ? 0 : 65536;
		g_est = k == 0 ? NULL : k == 1 ? est : bad;
		t = wire_intern_new();
		make_reply(t, one, 5, &a, 4096);
		sf = snapfetch_new();
		s = snapshot_new();
		assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
		memset(&err, 0, sizeof(err));
		assert_int_equal(feed_all(sf, a.p, a.len, &err), -TRM_EPROTO);
		assert_non_null(strstr(err.msg, k == 0 ? "without their estimates"
					  : k == 1 ? "estimates in an exact snapshot"
						   : "estimates that cannot be"));
		snapshot_free(s);
		snapfetch_free(sf);
		free(a.p);
		wire_intern_free(t);
	}
	g_sample = 0;
	g_est = NULL;
}

/* Hand-made streams with ids that do not exist. */
static void test_bad_ids(void **state)
{
	uint8_t buf[4096];
	struct wire_snap_head h = { .ntraces = 1, .new_strings = 1,
				    .new_frames = 1, .new_tracebacks = 1 };
	struct wire_chunk ck;
	struct trm_err err;
	const uint32_t bad = 1;
	int n;

	(void)state;
	for (int which = 0; which < 4; which++) {
		struct snapfetch *sf = snapfetch_new();
		struct snapshot *s = snapshot_new();
		struct stream a = { 0 };
		uint32_t f0 = 0;

		n = wire_enc_snap_head(buf, sizeof(buf), &h);
		put(&a, buf, (size_t)n);
		wire_chunk_begin(&ck, buf, sizeof(buf), WIRE_SNAP_STRINGS, 0);
		wire_chunk_add_string(&ck, "x", 1);
		put(&a, buf, wire_chunk_finish(&ck));
		wire_chunk_begin(&ck, buf, sizeof(buf), WIRE_SNAP_FRAMES, 0);
		wire_chunk_add_frame(&ck, which == 0 ? bad : 0, 1);
		put(&a, buf, wire_chunk_finish(&ck));
		wire_chunk_begin(&ck, buf, sizeof(buf), WIRE_SNAP_TRACEBACKS,
				 which == 3 ? 5 : 0);
		wire_chunk_add_traceback(&ck, which == 1 ? &bad : &f0, 1, 1);
		put(&a, buf, wire_chunk_finish(&ck));
		wire_chunk_begin(&ck, buf, sizeof(buf), WIRE_SNAP_TRACES, 0);
		wire_chunk_add_trace(&ck, 1, which == 2 ? bad : 0, 0);
		put(&a, buf, wire_chunk_finish(&ck));
		memset(&err, 0, sizeof(err));
		assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
		assert_int_equal(feed_all(sf, a.p, a.len, &err), -TRM_EPROTO);
		assert_non_null(strstr(err.msg, "byte "));
		free(a.p);
		snapshot_free(s);
		snapfetch_free(sf);
	}
}

/* A file name with a NUL byte (a co_filename can hold one) arrives
 * whole: it used to fail the reply with "Cannot allocate memory". */
static void test_nul_in_name(void **state)
{
	static const char name[] = "a\0b\x1b.py";
	uint8_t buf[4096];
	struct wire_snap_head h = { .ntraces = 1, .new_strings = 1,
				    .new_frames = 1, .new_tracebacks = 1 };
	struct wire_snap_end e = { .ntraces = 1, .total_size = 64,
				   .nstrings = 1, .nframes = 1,
				   .ntracebacks = 1 };
	struct snapfetch *sf = snapfetch_new();
	struct snapshot *s = snapshot_new();
	struct stream a = { 0 };
	struct trm_err err = { 0 };
	struct wire_chunk ck;
	uint32_t f0 = 0, fid, line;
	const char *str;
	size_t len;
	int n;

	(void)state;
	n = wire_enc_snap_head(buf, sizeof(buf), &h);
	put(&a, buf, (size_t)n);
	wire_chunk_begin(&ck, buf, sizeof(buf), WIRE_SNAP_STRINGS, 0);
	assert_int_equal(wire_chunk_add_string(&ck, name, sizeof(name) - 1), 0);
	put(&a, buf, wire_chunk_finish(&ck));
	wire_chunk_begin(&ck, buf, sizeof(buf), WIRE_SNAP_FRAMES, 0);
	assert_int_equal(wire_chunk_add_frame(&ck, 0, 7), 0);
	put(&a, buf, wire_chunk_finish(&ck));
	wire_chunk_begin(&ck, buf, sizeof(buf), WIRE_SNAP_TRACEBACKS, 0);
	assert_int_equal(wire_chunk_add_traceback(&ck, &f0, 1, 1), 0);
	put(&a, buf, wire_chunk_finish(&ck));
	wire_chunk_begin(&ck, buf, sizeof(buf), WIRE_SNAP_TRACES, 0);
	assert_int_equal(wire_chunk_add_trace(&ck, 64, 0, 0), 0);
	put(&a, buf, wire_chunk_finish(&ck));
	n = wire_enc_snap_end(buf, sizeof(buf), &e);
	put(&a, buf, (size_t)n);
	assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
	assert_int_equal(feed_all(sf, a.p, a.len, &err), 1);
	assert_int_equal(snapshot_ntraces(s), 1);
	snapshot_frame(s, snapshot_traceback(s, snapshot_traces(s)[0].traceback,
					     NULL, NULL)[0], &fid, &line);
	str = snapshot_str(s, fid, &len);
	assert_int_equal(line, 7);
	assert_int_equal(len, sizeof(name) - 1);
	assert_memory_equal(str, name, sizeof(name));
	free(a.p);
	snapshot_free(s);
	snapfetch_free(sf);
}

/* A head announcing more traces than trmtop accepts is refused at once,
 * before anything is allocated for them (a hostile target could make
 * trmtop, root, grow without limit). */
static void test_huge_trace_count(void **state)
{
	static const uint64_t counts[] = { SNAPFETCH_MAX_TRACES + 1, 1ull << 40,
					   UINT64_MAX };
	uint8_t buf[256];
	char want[160];
	struct trm_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct snapfetch *sf = snapfetch_new();
		struct snapshot *s = snapshot_new();
		struct wire_snap_head h = { .ntraces = counts[i] };
		int n = wire_enc_snap_head(buf, sizeof(buf), &h);

		memset(&err, 0, sizeof(err));
		assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
		assert_int_equal(feed_all(sf, buf, (size_t)n, &err), -TRM_EPROTO);
		snprintf(want, sizeof(want), "snapshot reply: byte 40: %llu traces "
			 "announced, more than the 67108864 trmtop accepts",
			 (unsigned long long)counts[i]);
		assert_string_equal(err.msg, want);
		/* the connection is out of step: closed by the caller */
		assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), -TRM_EPROTO);
		snapshot_free(s);
		snapfetch_free(sf);
	}
	/* exactly the cap: the head is fine */
	{
		struct snapfetch *sf = snapfetch_new();
		struct snapshot *s = snapshot_new();
		struct wire_snap_head h = { .ntraces = SNAPFETCH_MAX_TRACES };
		int n = wire_enc_snap_head(buf, sizeof(buf), &h);

		assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
		assert_int_equal(feed_all(sf, buf, (size_t)n, &err), 0);
		snapshot_free(s);
		snapfetch_free(sf);
	}
}

/* Feed stream a (then b, if any, as the next reply of the connection)
 * with the caps lim; returns the last feed result, err filled. */
static int feed_capped(const struct snapfetch_limits *lim, const struct stream *a,
		       const struct stream *b, struct trm_err *err)
{
	struct snapfetch *sf = snapfetch_new();
	struct snapshot *s = snapshot_new();
	int rc;

	assert_non_null(sf);
	snapfetch_set_limits(sf, lim);
	memset(err, 0, sizeof(*err));
	assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
	rc = feed_all(sf, a->p, a->len, err);
	if (rc == 1 && b) {
		snapshot_free(s);
		s = snapshot_new();
		assert_int_equal(snapfetch_begin(sf, s, NULL, NULL), 0);
		rc = feed_all(sf, b->p, b->len, err);
	}
	snapshot_free(s);
	snapfetch_free(sf);
	return rc;
}

/* Every cap, lowered: the reply that passes it is refused and says which
 * cap; the connection's tables count across replies. */
static void test_caps(void **state)
{
	const struct snapfetch_limits roomy = { 1000, 1u << 20, 100, 1000, 100,
						100, 1000 };
	struct snapfetch_limits lim;
	struct wire_intern *t = wire_intern_new();
	struct stream a = { 0 }, b = { 0 };
	struct trm_err err;

	(void)state;
	/* one: 5 traces, 3 strings (a.py b.py \xc3\xbc.py: 13 bytes), 4
	 * frames, 4 tracebacks (2+1+3+0 = 6 frame ids); two adds c.py, its
	 * frame and a traceback of 2 frames */
	make_reply(t, one, 5, &a, 4096);
	make_reply(t, two, 2, &b, 4096);
	assert_int_equal(feed_capped(&roomy, &a, &b, &err), 1);

#define REFUSED(field, value, words)                                         \
	do {                                                                 \
		lim = roomy;                                                 \
		lim.field = (value);                                         \
		assert_int_equal(feed_capped(&lim, &a, &b, &err), -TRM_EPROTO); \
		if (!strstr(err.msg, words) || !strstr(err.msg, "trmtop accepts")) \
			fail_msg("%s: \"%s\"", #field, err.msg);             \
	} while (0)

	REFUSED(traces, 4, "5 traces announced");
	REFUSED(strings, 2, "3 strings in the connection");
	REFUSED(strings, 3, "4 strings in the connection"); /* the 2nd reply */
	REFUSED(string_bytes, 12, "13 bytes of strings");
	REFUSED(string_bytes, 16, "17 bytes of strings");
	REFUSED(frames, 3, "4 frames in the connection");
	REFUSED(frames, 4, "5 frames in the connection");
	REFUSED(tracebacks, 3, "4 tracebacks in the connection");
	REFUSED(frame_ids, 5, "6 frame ids of tracebacks");
	REFUSED(frame_ids, 7, "8 frame ids of tracebacks");
	REFUSED(reply_bytes, a.len - 1, "bytes in the reply");
#undef REFUSED
	/* exactly at the caps: accepted */
	lim = roomy;
	lim.traces = 5;
	lim.strings = 4;
	lim.string_bytes = 17;
	lim.frames = 5;
	lim.tracebacks = 5;
	lim.frame_ids = 8;
	lim.reply_bytes = a.len > b.len ? a.len : b.len;
	assert_int_equal(feed_capped(&lim, &a, &b, &err), 1);
	free(a.p);
	free(b.p);
	wire_intern_free(t);
}

/* ---- table replies (wire.h, "Only the changed rows") ---- */

static const struct tr tab_full[] = {
	{ 100, 0, { "a.py", "b.py" }, { 1, 2 }, 2, 2 },
	{ 0, 0, { "c.py" }, { 4 }, 1, 1 },
	{ 50, 0, { "\xc3\xbc.py" }, { 0 }, 1, 1 },
};
static const struct wire_trace_est tab_full_est[] = {
	{ 3, 2000, 7 }, { 0, 40, 1 }, { 1, 60, 2 },
};
/* a.py's row fell to 0 in use; d.py is new */
static const struct tr tab_delta[] = {
	{ 0, 0, { "a.py", "b.py" }, { 1, 2 }, 2, 2 },
	{ 10, 0, { "d.py" }, { 9 }, 1, 1 },
};
static const struct wire_trace_est tab_delta_est[] = {
	{ 0, 2100, 8 }, { 1, 10, 1 },
};

/* Make a table reply of kind `kind` with table_rows rows and `current`
 * bytes in use. */
static void make_table(struct wire_intern *t, uint32_t kind, const struct tr *v,
		       const struct wire_trace_est *e, size_t n, uint64_t rows,
		       uint64_t current, struct stream *out)
{
	g_sample = 65536;
	g_est = e;
	g_table = kind;
	g_rows = rows;
	g_current = current;
	make_reply(t, v, n, out, 4096);
	g_sample = 0;
	g_est = NULL;
	g_table = 0;
}

/* Feed a whole reply into a fresh snapshot: the feed result; *out the
 * snapshot (or NULL, freed, on failure). */
static int fetch(struct snapfetch *sf, const struct stream *a,
		 struct snapshot **out, struct trm_err *err)
{
	struct snapshot *s = snapshot_new();
	int rc;

	assert_non_null(s);
	memset(err, 0, sizeof(*err));
	rc = snapfetch_begin(sf, s, NULL, NULL);
	if (rc == 0)
		rc = feed_all(sf, a->p, a->len, err);
	if (rc != 1) {
		snapshot_free(s);
		s = NULL;
	}
	*out = s;
	return rc;
}

/* Does s hold exactly rows v / e (in some order)? */
static void check_rows(const struct snapshot *s, const struct tr *const *v,
		       const struct wire_trace_est *const *e, size_t n)
{
	const struct snap_sample *smp = snapshot_samples(s);
	uint64_t total = 0;

	assert_non_null(smp);
	assert_int_equal(snapshot_ntraces(s), n);
	for (size_t i = 0; i < n; i++) {
		size_t k;

		for (k = 0; k < n; k++) {
			const struct snap_trace *tr = snapshot_traces(s) + k;
			uint32_t nf, tot, fid, line;
			size_t len;
			const uint32_t *f = snapshot_traceback(s, tr->traceback,
							       &nf, &tot);
			const char *str;

			snapshot_frame(s, f[0], &fid, &line);
			str = snapshot_str(s, fid, &len);
			if (len == strlen(v[i]->file[0]) &&
			    memcmp(str, v[i]->file[0], len) == 0 &&
			    line == v[i]->line[0])
				break;
		}
		assert_true(k < n);
		check_trace(s, k, v[i]);
		assert_true(smp[k].count == e[i]->count &&
			    smp[k].alloc_size == e[i]->alloc_size &&
			    smp[k].alloc_count == e[i]->alloc_count);
		total += v[i]->size;
	}
	assert_true(snapshot_cmeta(s)->traced_current == total);
}

static void test_table_full_then_delta(void **state)
{
	struct wire_intern *t = wire_intern_new();
	struct snapfetch *sf = snapfetch_new();
	struct stream a = { 0 }, b = { 0 }, c = { 0 }, e = { 0 };
	struct trm_err err;
	struct snapshot *s;
	uint8_t buf[128];
	int n;

	(void)state;
	make_table(t, WIRE_TABLE_FULL, tab_full, tab_full_est, 3, 3, 150, &a);
	assert_int_equal(fetch(sf, &a, &s, &err), 1);
	check_rows(s, (const struct tr *[]){ &tab_full[0], &tab_full[1],
					     &tab_full[2] },
		   (const struct wire_trace_est *[]){ &tab_full_est[0],
						      &tab_full_est[1],
						      &tab_full_est[2] }, 3);
	snapshot_free(s);

	/* an ERROR instead of a reply leaves the table as it was */
	n = wire_enc_error(buf, sizeof(buf), WIRE_ERR_NOMEM, "no");
	e.p = buf;
	e.len = (size_t)n;
	assert_int_equal(fetch(sf, &e, &s, &err), -TRM_EAGENT);

	/* the delta: two rows sent, four in the snapshot */
	make_table(t, WIRE_TABLE_DELTA, tab_delta, tab_delta_est, 2, 4, 60, &b);
	assert_true(b.len < a.len);
	assert_int_equal(fetch(sf, &b, &s, &err), 1);
	check_rows(s, (const struct tr *[]){ &tab_delta[0], &tab_full[1],
					     &tab_full[2], &tab_delta[1] },
		   (const struct wire_trace_est *[]){ &tab_delta_est[0],
						      &tab_full_est[1],
						      &tab_full_est[2],
						      &tab_delta_est[1] }, 4);
	snapshot_free(s);

	/* an empty delta: the same four */
	make_table(t, WIRE_TABLE_DELTA, NULL, NULL, 0, 4, 60, &c);
	assert_int_equal(fetch(sf, &c, &s, &err), 1);
	assert_int_equal(snapshot_ntraces(s), 4);
	snapshot_free(s);

	/* a full reply (the sampler restarted) replaces the table */
	free(c.p);
	memset(&c, 0, sizeof(c));
	make_table(t, WIRE_TABLE_FULL, &tab_delta[1], &tab_delta_est[1], 1, 1,
		   10, &c);
	assert_int_equal(fetch(sf, &c, &s, &err), 1);
	check_rows(s, (const struct tr *[]){ &tab_delta[1] },
		   (const struct wire_trace_est *[]){ &tab_delta_est[1] }, 1);
	snapshot_free(s);

	/* an older agent's reply (no table) goes on as before */
	free(c.p);
	memset(&c, 0, sizeof(c));
	g_sample = 65536;
	g_est = tab_full_est;
	make_reply(t, tab_full, 3, &c, 4096);
	g_sample = 0;
	g_est = NULL;
	assert_int_equal(fetch(sf, &c, &s, &err), 1);
	assert_int_equal(snapshot_ntraces(s), 3);
	snapshot_free(s);
	free(a.p);
	free(b.p);
	free(c.p);
	snapfetch_free(sf);
	wire_intern_free(t);
}

/* A delta that does not add up, sends a row twice, or comes with no table
 * to apply it to: refused, and the connection is out of step. */
static void test_table_bad(void **state)
{
	static const struct tr twice[] = {
		{ 10, 0, { "d.py" }, { 9 }, 1, 1 },
		{ 10, 0, { "d.py" }, { 9 }, 1, 1 },
	};
	static const struct wire_trace_est twice_est[] = {
		{ 1, 10, 1 }, { 1, 10, 1 },
	};
	static const struct {
		uint32_t kind;
		uint64_t rows, current;
		const char *why;
	} bad[] = {
		{ WIRE_TABLE_DELTA, 5, 60, "more table rows than tracebacks" },
		{ WIRE_TABLE_DELTA, 3, 60, "table_rows" },
		{ WIRE_TABLE_DELTA, 4, 61, "traced_current" },
		{ WIRE_TABLE_DELTA, 1, 60, "more traces than table rows" },
		{ WIRE_TABLE_FULL, 4, 60, "more traces than table rows" },
		{ 7, 4, 60, "unknown kind" },
	};
	struct trm_err err;
	struct snapshot *s;

	(void)state;
	for (size_t i = 0; i <= sizeof(bad) / sizeof(bad[0]) + 1; i++) {
		struct wire_intern *t = wire_intern_new();
		struct snapfetch *sf = snapfetch_new();
		struct stream a = { 0 }, b = { 0 };
		const char *why;

		make_table(t, WIRE_TABLE_FULL, tab_full, tab_full_est, 3, 3, 150, &a);
		if (i < sizeof(bad) / sizeof(bad[0])) {
			assert_int_equal(fetch(sf, &a, &s, &err), 1);
			snapshot_free(s);
			make_table(t, bad[i].kind, tab_delta, tab_delta_est, 2,
				   bad[i].rows, bad[i].current, &b);
			why = bad[i].why;
		} else if (i == sizeof(bad) / sizeof(bad[0])) {
			assert_int_equal(fetch(sf, &a, &s, &err), 1);
			snapshot_free(s);
			make_table(t, WIRE_TABLE_DELTA, twice, twice_est, 2,
				   4, 70, &b);
			why = "sent twice";
		} else {
			/* a fresh connection: the full reply never came */
			wire_intern_free(t);
			t = wire_intern_new();
			make_table(t, WIRE_TABLE_DELTA, tab_delta, tab_delta_est, 2,
				   2, 10, &b);
			why = "no table";
		}
		assert_int_equal(fetch(sf, &b, &s, &err), -TRM_EPROTO);
		if (!strstr(err.msg, why))
			fail_msg("%zu: %s", i, err.msg);
		assert_int_equal(fetch(sf, &a, &s, &err), -TRM_EPROTO);
		free(a.p);
		free(b.p);
		snapfetch_free(sf);
		wire_intern_free(t);
	}
}

/* Every prefix and every single-byte change of a delta after its full
 * reply: an error or a snapshot, never a crash (ASan build). */
static void test_table_truncate_and_corrupt(void **state)
{
	struct wire_intern *t = wire_intern_new();
	struct stream a = { 0 }, b = { 0 };
	struct trm_err err;
	struct snapshot *s;

	(void)state;
	make_table(t, WIRE_TABLE_FULL, tab_full, tab_full_est, 3, 3, 150, &a);
	make_table(t, WIRE_TABLE_DELTA, tab_delta, tab_delta_est, 2, 4, 60, &b);
	for (size_t cut = 0; cut <= b.len * 2; cut++) {
		struct snapfetch *sf = snapfetch_new();
		struct stream c = { b.p, cut < b.len ? cut : b.len, 0 };
		uint8_t keep = 0;
		int rc;

		assert_int_equal(fetch(sf, &a, &s, &err), 1);
		snapshot_free(s);
		if (cut >= b.len) {
			keep = b.p[cut - b.len];
			b.p[cut - b.len] ^= 0x5a;
		}
		rc = fetch(sf, &c, &s, &err);
		if (cut < b.len)
			assert_true(rc != 1);
		if (rc == 1)
			snapshot_free(s);
		if (cut >= b.len)
			b.p[cut - b.len] = keep;
		snapfetch_free(sf);
	}
	free(a.p);
	free(b.p);
	wire_intern_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_two_snapshots),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_truncate_and_corrupt),
		cmocka_unit_test(test_sampled),
		cmocka_unit_test(test_bad_ids),
		cmocka_unit_test(test_nul_in_name),
		cmocka_unit_test(test_huge_trace_count),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_table_full_then_delta),
		cmocka_unit_test(test_table_bad),
		cmocka_unit_test(test_table_truncate_and_corrupt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
