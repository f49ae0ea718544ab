/* test_snapshot_sampled.c - sampled snapshots: the estimates beside the
 * traces, counted as blocks by statistics, compare, filters and every
 * report; in use or allocated (snapshot_set_what); kinds that do not
 * compare; the .trm file's sampled form (round trip byte for byte,
 * truncation and corruption at every byte, crafted estimates refused);
 * tracemalloc's dump refused. */
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

#include "fixture.h"
#include "snapshot_int.h"

/* Three tracebacks sampled every 64 KiB:
 *   A = [leak.py:4]   in use 4 MiB in 64 blocks, allocated the same
 *   B = [churn.py:9]  in use 1 MiB in 16 blocks, allocated 40 MiB in 640
 *   C = [gone.py:2]   in use 0, allocated 2 MiB in 32 blocks */
static struct snapshot *sampled(void)
{
	struct snapshot *s = snapshot_new();
	uint32_t a, b, c;
	struct snap_sample ea = { 64, 4u << 20, 64 };
	struct snap_sample eb = { 16, 40u << 20, 640 };
	struct snap_sample ec = { 0, 2u << 20, 32 };

	assert_non_null(s);
	assert_int_equal(snapshot_set_sampled(s, 64 << 10), 0);
	a = FX_TB(s, 1, { "leak.py", 4 });
	b = FX_TB(s, 1, { "churn.py", 9 });
	c = FX_TB(s, 1, { "gone.py", 2 });
	assert_int_equal(snapshot_add_sample(s, 0, 4u << 20, a, &ea), 0);
	assert_int_equal(snapshot_add_sample(s, 0, 1u << 20, b, &eb), 0);
	assert_int_equal(snapshot_add_sample(s, 0, 0, c, &ec), 0);
	snapshot_meta(s)->py_hexversion = 0x030b07f0;
	return s;
}

static void test_model(void **state)
{
	struct snapshot *s = sampled(), *e = snapshot_new();
	struct snap_sample bad = { 0, 10, 1 };
	uint32_t tb;

	(void)state;
	assert_int_equal(snapshot_sample_size(s), 64 << 10);
	assert_int_equal(snapshot_ntraces(s), 3);
	assert_int_equal(snapshot_total_size(s), 5u << 20);
	assert_int_equal(snapshot_total_count(s), 80);
	assert_non_null(snapshot_samples(s));
	/* an exact snapshot: no estimates, a trace is a block */
	tb = FX_TB(e, 1, { "x.py", 1 });
	assert_int_equal(snapshot_add_trace(e, 0, 7, tb), 0);
	assert_int_equal(snapshot_add_trace(e, 0, 9, tb), 0);
	assert_null(snapshot_samples(e));
	assert_int_equal(snapshot_sample_size(e), 0);
	assert_int_equal(snapshot_total_count(e), 2);
	assert_int_equal(snapshot_set_what(e, SNAP_WHAT_ALLOC), -EINVAL);
	assert_int_equal(snapshot_add_sample(e, 0, 1, tb, &bad), -EINVAL);
	assert_int_equal(snapshot_set_sampled(e, 4096), -EBUSY);
	/* a sampled one takes no exact trace, and no estimate that cannot be */
	tb = FX_TB(s, 1, { "x.py", 1 });
	assert_int_equal(snapshot_add_trace(s, 0, 1, tb), -EINVAL);
	assert_int_equal(snapshot_add_sample(s, 0, 10, tb, &bad), -EINVAL);
	bad = (struct snap_sample){ 1, 5, 1 }; /* allocated below in use */
	assert_int_equal(snapshot_add_sample(s, 0, 10, tb, &bad), -EINVAL);
	bad = (struct snap_sample){ 1, SNAP_SIZE_MAX, 1 };
	assert_int_equal(snapshot_add_sample(s, 0, 10, tb, &bad), -EOVERFLOW);
	assert_int_equal(snapshot_ntraces(s), 3);
	assert_int_equal(snapshot_set_sampled(s, 0), -EINVAL);
	snapshot_free(e);
	snapshot_free(s);
}

static void test_statistics(void **state)
{
	struct snapshot *s = sampled();
	struct snap_stats st;

	(void)state;
	assert_int_equal(snapshot_statistics(s, SNAP_KEY_LINENO, 0, &st), 0);
	/* in use: gone.py holds nothing and is no row */
	assert_int_equal(st.n, 2);
	assert_int_equal(st.v[0].size, 4u << 20);
	assert_int_equal(st.v[0].count, 64);
	assert_int_equal(st.v[1].count, 16);
	assert_int_equal(st.total_count, 80);
	snap_stats_fini(&st);

	assert_int_equal(snapshot_set_what(s, SNAP_WHAT_ALLOC), 0);
	assert_int_equal(snapshot_what(s), SNAP_WHAT_ALLOC);
	assert_int_equal(snapshot_total_size(s), 46u << 20);
	assert_int_equal(snapshot_total_count(s), 736);
	assert_int_equal(snapshot_statistics(s, SNAP_KEY_LINENO, 0, &st), 0);
	assert_int_equal(st.n, 3);
	assert_string_equal(st.v[0].frames[0].filename, "churn.py");
	assert_int_equal(st.v[0].size, 40u << 20);
	assert_int_equal(st.v[0].count, 640);
	assert_string_equal(st.v[2].frames[0].filename, "gone.py");
	assert_int_equal(st.total_size, 46u << 20);
	snap_stats_fini(&st);
	snapshot_free(s);
}

static void test_reports(void **state)
{
	struct snapshot *s = sampled(), *f;
	struct snap_report_opts o = { SNAP_KEY_LINENO, 0, 1, NULL, NULL };
	struct snap_filter flt = { .inclusive = 0, .pattern = "churn.py" };
	struct snap_report r;

	(void)state;
	assert_int_equal(snapshot_report_top(s, &o, &r), 0);
	assert_int_equal(r.sample_size, 64 << 10);
	assert_int_equal(r.what, SNAP_WHAT_INUSE);
	assert_int_equal(r.rows[0].count, 64);
	assert_int_equal(r.other_count, 16);
	assert_int_equal(r.total_count, 80);
	snap_report_fini(&r);

	assert_int_equal(snapshot_report_stacks(s, &r), 0);
	assert_int_equal(r.nrows, 2);
	assert_int_equal(r.total_count, 80);
	assert_int_equal(r.rows[0].count + r.rows[1].count, 80);
	snap_report_fini(&r);

	/* a filtered copy keeps the estimates and the choice */
	assert_int_equal(snapshot_set_what(s, SNAP_WHAT_ALLOC), 0);
	f = snapshot_filter(s, &flt, 1);
	assert_non_null(f);
	assert_int_equal(snapshot_sample_size(f), 64 << 10);
	assert_int_equal(snapshot_what(f), SNAP_WHAT_ALLOC);
	assert_int_equal(snapshot_total_size(f), 6u << 20);
	assert_int_equal(snapshot_total_count(f), 96);
	assert_int_equal(snapshot_report_traceback(f, &(struct snap_pick){ 1, NULL, 0 },
						   &o, &r), 0);
	assert_int_equal(r.rows[0].count, 64);
	assert_int_equal(r.what, SNAP_WHAT_ALLOC);
	snap_report_fini(&r);
	snapshot_free(f);
	snapshot_free(s);
}

static void test_compare(void **state)
{
	struct snapshot *old = sampled(), *nw = sampled(), *ex = snapshot_new();
	struct snap_sample more = { 128, 8u << 20, 128 };
	struct snap_diffs d;
	uint32_t tb;

	(void)state;
	tb = FX_TB(nw, 1, { "leak.py", 4 });
	assert_int_equal(snapshot_add_sample(nw, 0, 8u << 20, tb, &more), 0);
	assert_int_equal(snapshot_compare(nw, old, SNAP_KEY_LINENO, 0, &d), 0);
	assert_string_equal(d.v[0].frames[0].filename, "leak.py");
	assert_int_equal(d.v[0].size_diff, 8u << 20);
	assert_int_equal(d.v[0].count_diff, 128);
	assert_int_equal(d.total_size_diff, 8u << 20);
	snap_diffs_fini(&d);
	/* kinds that do not subtract */
	assert_int_equal(snapshot_compare(nw, ex, SNAP_KEY_LINENO, 0, &d), -EXDEV);
	snap_diffs_fini(&d);
	assert_int_equal(snapshot_set_what(nw, SNAP_WHAT_ALLOC), 0);
	assert_int_equal(snapshot_compare(nw, old, SNAP_KEY_LINENO, 0, &d), -EXDEV);
	snap_diffs_fini(&d);
	snapshot_meta(old)->sample_size = 4096; /* another size */
	assert_int_equal(snapshot_set_what(old, SNAP_WHAT_ALLOC), 0);
	assert_int_equal(snapshot_compare(nw, old, SNAP_KEY_LINENO, 0, &d), -EXDEV);
	snap_diffs_fini(&d);
	snapshot_free(ex);
	snapshot_free(old);
	snapshot_free(nw);
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

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void test_trm_roundtrip(void **state)
{
	struct snapshot *s = sampled(), *r, *e = snapshot_new();
	size_t len, len2, i;
	uint8_t *buf, *buf2;
	const struct snap_sample *a, *b;
	struct trm_err err = { 0 };

	(void)state;
	/* the choice of figures is not the file's: all four are kept */
	assert_int_equal(snapshot_set_what(s, SNAP_WHAT_ALLOC), 0);
	buf = to_trm(s, &len);
	assert_int_equal(le32(buf + 8), 2);       /* version */
	assert_int_equal(le32(buf + 12), 0x2);    /* sampled */
	r = snapshot_read_trm_mem(buf, len, &err);
	assert_non_null(r);
	assert_int_equal(snapshot_sample_size(r), 64 << 10);
	assert_int_equal(snapshot_what(r), SNAP_WHAT_INUSE);
	assert_int_equal(snapshot_ntraces(r), 3);
	a = snapshot_samples(s);
	b = snapshot_samples(r);
	assert_non_null(b);
	for (i = 0; i < 3; i++) {
		/* one trace per traceback, in the same traceback order */
		assert_int_equal(snapshot_traces(r)[i].size, snapshot_traces(s)[i].size);
		assert_memory_equal(&a[i], &b[i], sizeof(*a));
	}
	buf2 = to_trm(r, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);
	free(buf2);
	snapshot_free(r);
	/* an exact snapshot is still written as version 1 */
	free(buf);
	buf = to_trm(e, &len);
	assert_int_equal(le32(buf + 8), 1);
	assert_int_equal(le32(buf + 12), 0);
	free(buf);
	snapshot_free(e);
	snapshot_free(s);
}

static void test_trm_hostile(void **state)
{
	struct snapshot *s = sampled(), *r;
	struct trm_err err = { 0 };
	size_t len, i, bit;
	uint8_t *buf, *cp;

	(void)state;
	buf = to_trm(s, &len);
	cp = malloc(len);
	assert_non_null(cp);
	for (i = 0; i < len; i++) {
		r = snapshot_read_trm_mem(buf, i, &err);
		assert_null(r);
	}
	for (i = 0; i < len; i++)
		for (bit = 0; bit < 8; bit += 3) {
			memcpy(cp, buf, len);
			cp[i] ^= (uint8_t)(1u << bit);
			r = snapshot_read_trm_mem(cp, len, &err);
			assert_null(r);
			assert_true(err.msg[0] != '\0');
		}
	/* a sampled file that says version 1 */
	memcpy(cp, buf, len);
	cp[8] = 1;
	trm_err_clear(&err);
	r = snapshot_read_trm_mem(cp, len, &err);
	assert_null(r);
	assert_non_null(strstr(err.msg, "unknown flags 0x2"));
	free(cp);
	free(buf);
	snapshot_free(s);
}

/* A hand-made sampled file whose CRC is right but whose estimates are not:
 * the reader says which, never loads it. */
struct hb {
	uint8_t b[512];
	size_t n;
};

static void hb_put(struct hb *h, const void *p, size_t n)
{
	memcpy(h->b + h->n, p, n);
	h->n += n;
}

static void hb_varint(struct hb *h, uint64_t v)
{
	while (v >= 0x80) {
		h->b[h->n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	h->b[h->n++] = (uint8_t)v;
}

static void hb_u32(struct hb *h, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			 (uint8_t)(v >> 24) };

	hb_put(h, b, 4);
}

static void hand_sampled(struct hb *h, uint64_t size_field, uint64_t sz,
			 uint64_t count, uint64_t dsz, uint64_t dcount)
{
	h->n = 0;
	hb_put(h, "TRMSNAP\0", 8);
	hb_u32(h, 2);
	hb_u32(h, 0x2);
	hb_varint(h, 0);                  /* pid */
	hb_varint(h, 0x030b07f0);
	hb_varint(h, 1);
	hb_varint(h, 0);
	for (int i = 0; i < 4; i++)
		hb_varint(h, 0);
	for (int i = 0; i < 3; i++)
		hb_varint(h, 0);          /* empty strings */
	hb_varint(h, size_field);         /* sampled every */
	hb_varint(h, 1);
	hb_varint(h, 4);
	hb_put(h, "a.py", 4);
	hb_varint(h, 1);                  /* a frame */
	hb_varint(h, 0);
	hb_varint(h, 3);
	hb_varint(h, 1);                  /* a traceback */
	hb_varint(h, 1);
	hb_varint(h, 0);
	hb_varint(h, 0);
	hb_varint(h, 1);                  /* one trace */
	hb_varint(h, 1);                  /* one run */
	hb_varint(h, 0);
	hb_varint(h, 1);
	hb_varint(h, sz);
	hb_varint(h, count);
	hb_varint(h, dsz);
	hb_varint(h, dcount);
	hb_u32(h, snap_crc32(0, h->b, h->n));
	hb_put(h, "TEND", 4);
}

static void test_trm_crafted(void **state)
{
	struct trm_err err = { 0 };
	struct snapshot *r;
	struct hb h;

	(void)state;
	hand_sampled(&h, 65536, 1000, 3, 24, 5);
	r = snapshot_read_trm_mem(h.b, h.n, &err);
	assert_non_null(r);
	assert_int_equal(snapshot_samples(r)[0].alloc_size, 1024);
	assert_int_equal(snapshot_samples(r)[0].alloc_count, 8);
	snapshot_free(r);

	hand_sampled(&h, 0, 1000, 3, 24, 5);
	trm_err_clear(&err);
	assert_null(snapshot_read_trm_mem(h.b, h.n, &err));
	assert_non_null(strstr(err.msg, "sampled every 0 bytes"));

	hand_sampled(&h, 65536, 1000, 0, 24, 5);
	trm_err_clear(&err);
	assert_null(snapshot_read_trm_mem(h.b, h.n, &err));
	assert_non_null(strstr(err.msg, "bytes without blocks"));

	hand_sampled(&h, 65536, 1000, 3, UINT64_MAX - 10, 5);
	trm_err_clear(&err);
	assert_null(snapshot_read_trm_mem(h.b, h.n, &err));
	assert_non_null(strstr(err.msg, "estimate overflow"));

	hand_sampled(&h, 65536, 1000, 3, SNAP_SIZE_MAX, 5);
	trm_err_clear(&err);
	assert_null(snapshot_read_trm_mem(h.b, h.n, &err));
	assert_non_null(strstr(err.msg, "more than 2^63-1"));
}

static void test_tmdump_refused(void **state)
{
	struct snapshot *s = sampled();
	struct trm_err err = { 0 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_int_equal(snapshot_write_tracemalloc(s, f, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "sampled"));
	fclose(f);
	free(buf);
	snapshot_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_statistics),
		cmocka_unit_test(test_reports),
		cmocka_unit_test(test_compare),
		cmocka_unit_test(test_trm_roundtrip),
		cmocka_unit_test(test_trm_hostile),
		cmocka_unit_test(test_trm_crafted),
		cmocka_unit_test(test_tmdump_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
