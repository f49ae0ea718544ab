/* test_snapshot_trm.c - the .trm format: round trip, truncation at every
 * byte, a corrupted byte at every offset, newer versions, hostile counts. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "snapshot_int.h"

static struct snapshot *sample(void)
{
	struct snapshot *s = fx_reference(0x030b07f0);
	struct snapshot_meta *m;
	uint32_t big, empty, sid, nul, fr;

	if (!s)
		return NULL;
	m = snapshot_meta(s);
	m->pid = 4242;
	m->time_ns = -5; /* any value survives */
	m->traced_current = 123456789;
	m->traced_peak = UINT64_MAX;
	m->rss = 1ull << 40;
	m->tracemalloc_memory = 77;
	snprintf(m->executable, sizeof(m->executable), "/usr/bin/python3.11");
	snprintf(m->python_version, sizeof(m->python_version), "3.11.7");
	snprintf(m->host, sizeof(m->host), "h\xc3\xb4te");
	big = FX_TB(s, 3, { "\xe6\x97\xa5\xe6\x9c\xac.py", 7 },
		    { "<frozen importlib._bootstrap>", 1 });
	empty = snapshot_intern_traceback(s, NULL, 0, 0);
	/* a name with a NUL byte (and an escape) is kept whole */
	sid = snapshot_intern_str(s, "n\0ul\x1b.py", 9);
	fr = snapshot_intern_frame(s, sid, 3);
	nul = snapshot_intern_traceback(s, &fr, 1, 1);
	if (nul == SNAP_NONE || snapshot_add_trace(s, 0, 5, nul) ||
	    snapshot_add_trace(s, 0, SNAP_SIZE_MAX - 500, big) ||
	    snapshot_add_trace(s, 3, 0, big) ||
	    snapshot_add_trace(s, 0, 1, empty)) {
		snapshot_free(s);
		return NULL;
	}
	sid = snapshot_intern_str(s, "a.py", 4);
	if (snapshot_set_source(s, sid, 1, "x = [0] * 10", 12)) {
		snapshot_free(s);
		return NULL;
	}
	return s;
}

static uint8_t *to_trm(const struct snapshot *s, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	assert_non_null(f);
	assert_int_equal(snapshot_write_trm(s, f, NULL), 0);
	fclose(f);
	return (uint8_t *)buf;
}

static int cmp_tr(const void *pa, const void *pb)
{
	const struct snap_trace *a = pa, *b = pb;

	if (a->traceback != b->traceback)
		return a->traceback < b->traceback ? -1 : 1;
	if (a->domain != b->domain)
		return a->domain < b->domain ? -1 : 1;
	return a->size < b->size ? -1 : a->size > b->size;
}

/* Same tables (ids included, since the writer writes them in order and
 * they are unique) and the same multiset of traces. */
static void assert_same(const struct snapshot *a, const struct snapshot *b)
{
	size_t i, n = snapshot_ntraces(a);
	struct snap_trace *ta, *tb;
	uint32_t k;

	assert_memory_equal(snapshot_cmeta(a), snapshot_cmeta(b),
			    sizeof(struct snapshot_meta));
	assert_int_equal(snapshot_nstrs(a), snapshot_nstrs(b));
	for (k = 0; k < snapshot_nstrs(a); k++) {
		size_t la, lb;
		const char *sa = snapshot_str(a, k, &la), *sb = snapshot_str(b, k, &lb);

		assert_int_equal(la, lb);
		assert_memory_equal(sa, sb, la + 1);
	}
	assert_int_equal(snapshot_nframes(a), snapshot_nframes(b));
	for (k = 0; k < snapshot_nframes(a); k++) {
		uint32_t f1, l1, f2, l2;

		snapshot_frame(a, k, &f1, &l1);
		snapshot_frame(b, k, &f2, &l2);
		assert_int_equal(f1, f2);
		assert_int_equal(l1, l2);
	}
	assert_int_equal(snapshot_ntracebacks(a), snapshot_ntracebacks(b));
	for (k = 0; k < snapshot_ntracebacks(a); k++) {
		uint32_t n1, t1, n2, t2;
		const uint32_t *f1 = snapshot_traceback(a, k, &n1, &t1);
		const uint32_t *f2 = snapshot_traceback(b, k, &n2, &t2);

		assert_int_equal(n1, n2);
		assert_int_equal(t1, t2);
		if (n1)
			assert_memory_equal(f1, f2, n1 * sizeof(*f1));
	}
	assert_int_equal(n, snapshot_ntraces(b));
	ta = malloc((n + 1) * sizeof(*ta));
	tb = malloc((n + 1) * sizeof(*tb));
	assert_non_null(ta);
	assert_non_null(tb);
	if (n) {
		memcpy(ta, snapshot_traces(a), n * sizeof(*ta));
		memcpy(tb, snapshot_traces(b), n * sizeof(*tb));
	}
	qsort(ta, n, sizeof(*ta), cmp_tr);
	qsort(tb, n, sizeof(*tb), cmp_tr);
	for (i = 0; i < n; i++) {
		assert_int_equal(ta[i].size, tb[i].size);
		assert_int_equal(ta[i].domain, tb[i].domain);
		assert_int_equal(ta[i].traceback, tb[i].traceback);
	}
	assert_int_equal(snapshot_total_size(a), snapshot_total_size(b));
	free(ta);
	free(tb);
}

static void test_roundtrip(void **state)
{
	struct snapshot *s = sample(), *r, *e;
	struct trm_err err = { 0 };
	size_t len, len2;
	uint8_t *buf, *buf2;
	FILE *f;

	(void)state;
	assert_non_null(s);
	buf = to_trm(s, &len);
	assert_memory_equal(buf, "TRMSNAP\0\x01\0\0\0", 12);
	r = snapshot_read_trm_mem(buf, len, &err);
	assert_non_null(r);
	assert_int_equal(err.code, 0);
	assert_same(s, r);
	assert_string_equal(snapshot_source(r, "a.py", 4, 1), "x = [0] * 10");
	/* writing the copy gives the same bytes */
	buf2 = to_trm(r, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);
	/* through a FILE */
	f = tmpfile();
	assert_non_null(f);
	assert_int_equal(snapshot_write_trm(s, f, NULL), 0);
	rewind(f);
	snapshot_free(r);
	r = snapshot_read_trm(f, &err);
	assert_non_null(r);
	assert_same(s, r);
	fclose(f);
	/* an empty snapshot */
	e = snapshot_new();
	free(buf2);
	buf2 = to_trm(e, &len2);
	snapshot_free(e);
	e = snapshot_read_trm_mem(buf2, len2, NULL);
	assert_non_null(e);
	assert_int_equal(snapshot_ntraces(e), 0);
	assert_int_equal(snapshot_cmeta(e)->pid, -1);
	snapshot_free(e);
	free(buf2);
	free(buf);
	snapshot_free(r);
	snapshot_free(s);
}

static void test_truncated(void **state)
{
	struct snapshot *s = sample(), *r;
	size_t len, cut;
	uint8_t *buf;

	(void)state;
	buf = to_trm(s, &len);
	for (cut = 0; cut < len; cut++) {
		struct trm_err err = { 0 };
		uint8_t *copy = malloc(cut + 1); /* exact size: ASan sees overreads */

		assert_non_null(copy);
		memcpy(copy, buf, cut);
		r = snapshot_read_trm_mem(copy, cut, &err);
		if (r)
			fail_msg("a file cut at %zu of %zu bytes was accepted", cut, len);
		assert_int_equal(err.code, -TRM_EFORMAT);
		assert_int_equal(errno, TRM_EFORMAT);
		if (cut >= 8 && !strstr(err.msg, "truncated at byte"))
			fail_msg("cut at %zu: \"%s\"", cut, err.msg);
		free(copy);
	}
	{
		struct trm_err err = { 0 };
		char want[64];

		assert_null(snapshot_read_trm_mem(buf, 40, &err));
		assert_string_equal(err.msg, "truncated at byte 40: metadata");
		trm_err_clear(&err);
		assert_null(snapshot_read_trm_mem(buf, len - 8, &err));
		snprintf(want, sizeof(want), "truncated at byte %zu: trailer", len - 8);
		assert_string_equal(err.msg, want);
	}
	free(buf);
	snapshot_free(s);
}

static void test_corrupted(void **state)
{
	static const uint8_t flips[] = { 0x01, 0x80, 0xff, 0x7f };
	struct snapshot *s = sample(), *r;
	size_t len, off, k, accepted = 0;
	uint8_t *buf;

	(void)state;
	buf = to_trm(s, &len);
	for (off = 0; off < len; off++) {
		for (k = 0; k < sizeof(flips); k++) {
			struct trm_err err = { 0 };
			uint8_t *copy = malloc(len);

			assert_non_null(copy);
			memcpy(copy, buf, len);
			copy[off] ^= flips[k];
			r = snapshot_read_trm_mem(copy, len, &err);
			if (r) {
				/* valid: usable */
				struct snap_stats st;

				accepted++;
				assert_int_equal(snapshot_statistics(r, SNAP_KEY_LINENO, 1, &st), 0);
				snap_stats_fini(&st);
				snapshot_free(r);
			} else {
				assert_int_equal(err.code, -TRM_EFORMAT);
				assert_true(strlen(err.msg) > 0);
			}
			free(copy);
		}
	}
	/* the checksum catches every single-byte change */
	assert_int_equal(accepted, 0);
	free(buf);
	snapshot_free(s);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void test_header(void **state)
{
	struct snapshot *s = sample();
	struct trm_err err = { 0 };
	size_t len;
	uint8_t *buf;

	(void)state;
	buf = to_trm(s, &len);
	put_le32(buf + 8, SNAP_TRM_VERSION + 1);
	assert_null(snapshot_read_trm_mem(buf, len, &err));
	assert_int_equal(err.code, -TRM_EFORMAT);
	assert_string_equal(err.msg, "format version 3 is newer than this trmtop "
				     "supports (2)");
	trm_err_clear(&err);
	put_le32(buf + 8, 0);
	assert_null(snapshot_read_trm_mem(buf, len, &err));
	assert_string_equal(err.msg, "bad format version 0 at byte 8: header");
	trm_err_clear(&err);
	put_le32(buf + 8, SNAP_TRM_VERSION);
	put_le32(buf + 12, 0x80);
	assert_null(snapshot_read_trm_mem(buf, len, &err));
	assert_string_equal(err.msg, "unknown flags 0x80 at byte 12: header");
	trm_err_clear(&err);
	buf[0] = 'X';
	assert_null(snapshot_read_trm_mem(buf, len, &err));
	assert_string_equal(err.msg, "not a .trm file (bad magic at byte 0)");
	trm_err_clear(&err);
	assert_null(snapshot_read_trm_mem((const uint8_t *)"", 0, &err));
	assert_int_equal(err.code, -TRM_EFORMAT);
	free(buf);
	snapshot_free(s);
}

static void test_trailing(void **state)
{
	struct snapshot *s = sample();
	struct trm_err err = { 0 };
	size_t len;
	uint8_t *buf, *big;

	(void)state;
	buf = to_trm(s, &len);
	big = calloc(1, len + 3);
	assert_non_null(big);
	memcpy(big, buf, len);
	assert_null(snapshot_read_trm_mem(big, len + 3, &err));
	assert_non_null(strstr(err.msg, "3 bytes of trailing data"));
	free(big);
	free(buf);
	snapshot_free(s);
}

/* A 20-something-byte file announcing 2^40 strings: refused before any
 * allocation. */
static void test_hostile_counts(void **state)
{
	static const uint8_t hdr[] = "TRMSNAP\0\x01\0\0\0\0\0\0";
	/* meta: pid 0, version 0, limit 0, time 0, 4 counters, 3 empty strings */
	static const uint8_t meta[] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t count[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x20 };
	static const uint8_t count2[] = { 0x80, 0x80, 0x80, 0x01 }; /* 2^21 */
	static const uint8_t frames_bad[] = { 1, 1, 'a', 1, 5, 0 }; /* str 5 */
	static const uint8_t tbs_bad[] = { 0, 0, 1, 0xff, 0xff, 0x7f, 0 };
	uint8_t buf[64];
	struct trm_err err = { 0 };
	size_t n = 0;

	(void)state;
	memcpy(buf, hdr, 16);
	n = 16;
	memcpy(buf + n, meta, sizeof(meta));
	n += sizeof(meta);
	memcpy(buf + n, count, sizeof(count));
	n += sizeof(count);
	assert_null(snapshot_read_trm_mem(buf, n, &err));
	assert_int_equal(err.code, -TRM_EFORMAT);
	assert_string_equal(err.msg, "string count 1099511627776 too large at "
				     "byte 27: string table");
	trm_err_clear(&err);
	n = 16 + sizeof(meta);
	memcpy(buf + n, count2, sizeof(count2));
	n += sizeof(count2);
	assert_null(snapshot_read_trm_mem(buf, n, &err));
	assert_string_equal(err.msg, "truncated at byte 31: string table (string "
				     "count 2097152 needs more than the 0 bytes "
				     "left)");

	trm_err_clear(&err);
	n = 16 + sizeof(meta);
	memcpy(buf + n, frames_bad, sizeof(frames_bad));
	n += sizeof(frames_bad);
	assert_null(snapshot_read_trm_mem(buf, n, &err));
	assert_string_equal(err.msg, "string id 5 out of range (max 0) at byte 31: "
				     "frame table");

	trm_err_clear(&err);
	n = 16 + sizeof(meta);
	memcpy(buf + n, tbs_bad, sizeof(tbs_bad));
	n += sizeof(tbs_bad);
	assert_null(snapshot_read_trm_mem(buf, n, &err));
	assert_non_null(strstr(err.msg, "traceback table"));
}

/* ---- hand-made files ---------------------------------------------------- */

struct hb {
	uint8_t b[4096];
	size_t n;
};

static void hb_put(struct hb *h, const void *p, size_t n)
{
	assert_true(h->n + n <= sizeof(h->b));
	memcpy(h->b + h->n, p, n);
	h->n += n;
}

static void hb_varint(struct hb *h, uint64_t v)
{
	uint8_t b;

	while (v >= 0x80) {
		b = (uint8_t)(v | 0x80);
		hb_put(h, &b, 1);
		v >>= 7;
	}
	b = (uint8_t)v;
	hb_put(h, &b, 1);
}

/* A .trm with one string "a.py", one frame a.py:1, one traceback of
 * depth frames of that frame, and the traces of sizes[0..n) (in the
 * order given: the deltas may be what a writer never writes), with a good
 * checksum.  *at[i] gets the offset of size i. */
static void hand_trm(struct hb *h, uint32_t depth, const uint64_t *sizes,
		     size_t n, size_t *at)
{
	static const uint8_t meta[] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	uint64_t prev = 0;
	uint32_t crc;
	uint8_t le[4];

	h->n = 0;
	hb_put(h, "TRMSNAP\0\x01\0\0\0\0\0\0\0", 16);
	hb_put(h, meta, sizeof(meta));
	hb_varint(h, 1); /* strings */
	hb_varint(h, 4);
	hb_put(h, "a.py", 4);
	hb_varint(h, 1); /* frames */
	hb_varint(h, 0);
	hb_varint(h, 1);
	hb_varint(h, 1); /* tracebacks */
	hb_varint(h, depth);
	hb_varint(h, 0);
	for (uint32_t k = 0; k < depth; k++)
		hb_varint(h, 0);
	hb_varint(h, n); /* traces: one run of domain 0 */
	hb_varint(h, 1);
	hb_varint(h, 0);
	hb_varint(h, n);
	for (size_t i = 0; i < n; i++) {
		at[i] = h->n;
		hb_varint(h, sizes[i] - prev);
		prev = sizes[i];
	}
	crc = snap_crc32(0, h->b, h->n);
	put_le32(le, crc);
	hb_put(h, le, 4);
	hb_put(h, "TEND", 4);
}

/* Sizes near 2^63 in a file: a total of 2^63 - 1 loads, one byte more is
 * refused at the byte of the trace that passes it (exit 4 in the CLI), as
 * is a size of 2^64 - 1. */
static void test_sizes_near_2_63(void **state)
{
	const uint64_t half = 1ull << 62;
	struct hb h;
	struct trm_err err = { 0 };
	struct snapshot *s;
	size_t at[3];
	char want[128];

	(void)state;
	hand_trm(&h, 1, (const uint64_t[]){ half - 1, half }, 2, at);
	s = snapshot_read_trm_mem(h.b, h.n, &err);
	assert_non_null(s);
	assert_true(snapshot_total_size(s) == SNAP_SIZE_MAX);
	snapshot_free(s);

	hand_trm(&h, 1, (const uint64_t[]){ half, half }, 2, at);
	assert_null(snapshot_read_trm_mem(h.b, h.n, &err));
	assert_int_equal(err.code, -TRM_EFORMAT);
	snprintf(want, sizeof(want), "the sizes add up to more than 2^63-1 bytes "
		 "at byte %zu: traces", at[1]);
	assert_string_equal(err.msg, want);

	trm_err_clear(&err);
	hand_trm(&h, 1, (const uint64_t[]){ 1, 2, UINT64_MAX }, 3, at);
	assert_null(snapshot_read_trm_mem(h.b, h.n, &err));
	snprintf(want, sizeof(want), "the sizes add up to more than 2^63-1 bytes "
		 "at byte %zu: traces", at[2]);
	assert_string_equal(err.msg, want);

	/* deltas that wrap past 2^64 */
	trm_err_clear(&err);
	hand_trm(&h, 1, (const uint64_t[]){ UINT64_MAX, 1 }, 2, at);
	assert_null(snapshot_read_trm_mem(h.b, h.n, &err));
	assert_int_equal(err.code, -TRM_EFORMAT);
}

/* A file that loads (total under 2^63) but whose cumulative statistics
 * would pass 2^63 - 1: statistics say so instead of wrapping. */
static void test_cumulative_too_large(void **state)
{
	struct hb h;
	struct trm_err err = { 0 };
	struct snapshot *s;
	struct snap_stats st;
	size_t at[1];

	(void)state;
	hand_trm(&h, 100, (const uint64_t[]){ 1ull << 61 }, 1, at);
	s = snapshot_read_trm_mem(h.b, h.n, &err);
	assert_non_null(s);
	assert_int_equal(snapshot_statistics(s, SNAP_KEY_LINENO, 0, &st), 0);
	assert_true(st.n == 1 && st.v[0].size == 1ull << 61);
	snap_stats_fini(&st);
	assert_int_equal(snapshot_statistics(s, SNAP_KEY_LINENO, 1, &st), -EOVERFLOW);
	snapshot_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupted),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_trailing),
		cmocka_unit_test(test_hostile_counts),
		cmocka_unit_test(test_sizes_near_2_63),
		cmocka_unit_test(test_cumulative_too_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
