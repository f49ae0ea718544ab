/* test_snapshot_stats.c - statistics and compare against hand-computed
 * tables (see fixture.h for the reference snapshot). */
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
#include "trmtop/snapshot.h"

/* "size count file:line,file:line" (frames oldest first) */
static void fmt_stat(const struct snap_stat *st, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "%" PRIu64 " %" PRIu64, st->size,
				    st->count);
	uint32_t i;

	for (i = 0; i < st->nframe && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%c%s:%" PRIu32,
				      i ? ',' : ' ', st->frames[i].filename,
				      st->frames[i].lineno);
}

static void check_stats(const struct snapshot *s, enum snap_key key, int cum,
			const char *const *want, size_t nwant)
{
	struct snap_stats st;
	char buf[512];
	size_t i;

	assert_int_equal(snapshot_statistics(s, key, cum, &st), 0);
	for (i = 0; i < st.n && i < nwant; i++) {
		fmt_stat(&st.v[i], buf, sizeof(buf));
		assert_string_equal(buf, want[i]);
	}
	assert_int_equal(st.n, nwant);
	snap_stats_fini(&st);
}

#define CHECK(s, key, cum, ...)                                          \
	check_stats((s), (key), (cum), (const char *const[]){ __VA_ARGS__ }, \
		    sizeof((const char *const[]){ __VA_ARGS__ }) /           \
			    sizeof(const char *))

static void test_traceback(void **state)
{
	struct snapshot *s = fx_reference(0x030b07f0);
	struct snap_stats st;

	(void)state;
	assert_non_null(s);
	/* oldest frame first, as tracemalloc.Traceback holds them */
	CHECK(s, SNAP_KEY_TRACEBACK, 0, "200 1 b.py:1", "150 2 b.py:1,a.py:1",
	      "30 1 b.py:1,a.py:2", "20 2 c.py:5,a.py:1,a.py:1");
	assert_int_equal(snapshot_statistics(s, SNAP_KEY_TRACEBACK, 0, &st), 0);
	assert_int_equal(st.total_size, 400);
	assert_int_equal(st.total_count, 6);
	assert_int_not_equal(st.v[0].traceback, SNAP_NONE);
	snap_stats_fini(&st);
	/* cumulative is refused for the traceback key, like tracemalloc */
	assert_int_equal(snapshot_statistics(s, SNAP_KEY_TRACEBACK, 1, &st),
			 -EINVAL);
	snap_stats_fini(&st);
	snapshot_free(s);
}

static void test_lineno(void **state)
{
	struct snapshot *s = fx_reference(0x030b07f0);

	(void)state;
	CHECK(s, SNAP_KEY_LINENO, 0, "200 1 b.py:1", "170 4 a.py:1",
	      "30 1 a.py:2");
	/* cumulative: once per frame, the recursive a.py:1 twice */
	CHECK(s, SNAP_KEY_LINENO, 1, "380 4 b.py:1", "190 6 a.py:1",
	      "30 1 a.py:2", "20 2 c.py:5");
	snapshot_free(s);
}

static void test_filename(void **state)
{
	struct snapshot *s = fx_reference(0x03080000);

	(void)state;
	/* equal sizes: the count decides */
	CHECK(s, SNAP_KEY_FILENAME, 0, "200 5 a.py:0", "200 1 b.py:0");
	CHECK(s, SNAP_KEY_FILENAME, 1, "380 4 b.py:0", "220 7 a.py:0",
	      "20 2 c.py:0");
	snapshot_free(s);
}

/* Equal size and count: the traceback decides, descending. */
static void test_tie_order(void **state)
{
	struct snapshot *s = snapshot_new();
	static const char *const tb_order[] = {
		"8 1 \xc3\xa9.py:1",         /* U+00E9 > 'z' */
		"8 1 z.py:1",
		"8 1 b.py:10",               /* 10 > 9: numbers, not text */
		"8 1 b.py:9",
		"8 1 b.py:2,a.py:1",         /* longer > its prefix */
		"8 1 b.py:2",
		"8 1 b.py:1,x.py:1",         /* oldest frame compared first */
		"8 1 a.py:3,z.py:1",
	};

	(void)state;
	assert_non_null(s);
	assert_int_equal(snapshot_add_trace(s, 0, 8, FX_TB(s, 1, { "z.py", 1 })), 0);
	assert_int_equal(snapshot_add_trace(s, 0, 8, FX_TB(s, 1, { "b.py", 9 })), 0);
	assert_int_equal(snapshot_add_trace(s, 0, 8, FX_TB(s, 1, { "\xc3\xa9.py", 1 })), 0);
	assert_int_equal(snapshot_add_trace(s, 0, 8, FX_TB(s, 1, { "b.py", 10 })), 0);
	assert_int_equal(snapshot_add_trace(s, 0, 8, FX_TB(s, 1, { "b.py", 2 })), 0);
	assert_int_equal(snapshot_add_trace(s, 0, 8,
		FX_TB(s, 2, { "a.py", 1 }, { "b.py", 2 })), 0);
	assert_int_equal(snapshot_add_trace(s, 0, 8,
		FX_TB(s, 2, { "x.py", 1 }, { "b.py", 1 })), 0);
	assert_int_equal(snapshot_add_trace(s, 0, 8,
		FX_TB(s, 2, { "z.py", 1 }, { "a.py", 3 })), 0);
	assert_int_equal(snapshot_add_trace(s, 0, 8,
		FX_TB(s, 1, { "\xf0\x9f\x98\x80.py", 1 })), 0);
	/* U+1F600 is the greatest: first */
	CHECK(s, SNAP_KEY_TRACEBACK, 0, "8 1 \xf0\x9f\x98\x80.py:1",
	      tb_order[0], tb_order[1], tb_order[2], tb_order[3], tb_order[4],
	      tb_order[5], tb_order[6], tb_order[7]);
	snapshot_free(s);
}

/* total_nframe is not part of the key (Traceback equality ignores it). */
static void test_total_nframe_ignored(void **state)
{
	struct snapshot *s = snapshot_new();
	uint32_t a, b;

	(void)state;
	a = FX_TB(s, 1, { "a.py", 1 });
	b = FX_TB(s, 9, { "a.py", 1 });
	assert_int_not_equal(a, b);
	assert_int_equal(snapshot_add_trace(s, 0, 5, a), 0);
	assert_int_equal(snapshot_add_trace(s, 0, 7, b), 0);
	CHECK(s, SNAP_KEY_TRACEBACK, 0, "12 2 a.py:1");
	snapshot_free(s);
}

static void test_empty(void **state)
{
	struct snapshot *s = snapshot_new();
	struct snap_stats st;

	(void)state;
	assert_int_equal(snapshot_statistics(s, SNAP_KEY_LINENO, 1, &st), 0);
	assert_int_equal(st.n, 0);
	snap_stats_fini(&st);
	/* an empty traceback: no frame for cumulative keys; its own empty
	 * key otherwise (tracemalloc raises IndexError there) */
	assert_int_equal(snapshot_add_trace(s, 0, 3,
					    snapshot_intern_traceback(s, NULL, 0, 0)),
			 0);
	check_stats(s, SNAP_KEY_LINENO, 1, NULL, 0);
	CHECK(s, SNAP_KEY_LINENO, 0, "3 1");
	CHECK(s, SNAP_KEY_TRACEBACK, 0, "3 1");
	snapshot_free(s);
}

/* "size size_diff count count_diff frames" */
static void check_diffs(const struct snapshot *n, const struct snapshot *o,
			enum snap_key key, int cum, const char *const *want,
			size_t nwant)
{
	struct snap_diffs d;
	char buf[512];
	size_t i, k;
	uint32_t j;

	assert_int_equal(snapshot_compare(n, o, key, cum, &d), 0);
	for (i = 0; i < d.n && i < nwant; i++) {
		k = (size_t)snprintf(buf, sizeof(buf),
				     "%" PRIu64 " %+" PRId64 " %" PRIu64 " %+" PRId64,
				     d.v[i].size, d.v[i].size_diff, d.v[i].count,
				     d.v[i].count_diff);
		for (j = 0; j < d.v[i].nframe && k < sizeof(buf); j++)
			k += (size_t)snprintf(buf + k, sizeof(buf) - k,
					      "%c%s:%" PRIu32, j ? ',' : ' ',
					      d.v[i].frames[j].filename,
					      d.v[i].frames[j].lineno);
		assert_string_equal(buf, want[i]);
	}
	assert_int_equal(d.n, nwant);
	snap_diffs_fini(&d);
}

#define CHECKD(n, o, key, cum, ...)                                        \
	check_diffs((n), (o), (key), (cum),                                \
		    (const char *const[]){ __VA_ARGS__ },                  \
		    sizeof((const char *const[]){ __VA_ARGS__ }) /         \
			    sizeof(const char *))

/* old: strings interned in another order, so ids differ from new's */
static struct snapshot *old_snapshot(void)
{
	struct snapshot *s = snapshot_new();

	if (!s)
		return NULL;
	FX_TB(s, 1, { "c.py", 5 });
	if (snapshot_add_trace(s, 0, 100,
			       FX_TB(s, 3, { "a.py", 1 }, { "b.py", 1 })) ||
	    snapshot_add_trace(s, 0, 200, FX_TB(s, 1, { "b.py", 1 })) ||
	    snapshot_add_trace(s, 0, 40, FX_TB(s, 1, { "c.py", 5 }))) {
		snapshot_free(s);
		return NULL;
	}
	return s;
}

static void test_compare(void **state)
{
	struct snapshot *n = fx_reference(0x030b07f0), *o = old_snapshot();
	struct snap_diffs d;

	(void)state;
	assert_non_null(n);
	assert_non_null(o);
	/* sorted by abs(size_diff), size, abs(count_diff), count, traceback */
	CHECKD(n, o, SNAP_KEY_LINENO, 0, "170 +70 4 +3 a.py:1",
	       "0 -40 0 -1 c.py:5", "30 +30 1 +1 a.py:2", "200 +0 1 +0 b.py:1");
	CHECKD(n, o, SNAP_KEY_FILENAME, 0, "200 +100 5 +4 a.py:0",
	       "0 -40 0 -1 c.py:0", "200 +0 1 +0 b.py:0");
	/* cumulative: old a.py:1 100/1, b.py:1 300/2, c.py:5 40/1 */
	CHECKD(n, o, SNAP_KEY_LINENO, 1, "190 +90 6 +5 a.py:1",
	       "380 +80 4 +2 b.py:1", "30 +30 1 +1 a.py:2",
	       "20 -20 2 +1 c.py:5");
	/* traceback: T1 matches although total_nframe differs (2 vs 3) */
	CHECKD(n, o, SNAP_KEY_TRACEBACK, 0, "150 +50 2 +1 b.py:1,a.py:1",
	       "0 -40 0 -1 c.py:5", "30 +30 1 +1 b.py:1,a.py:2",
	       "20 +20 2 +2 c.py:5,a.py:1,a.py:1", "200 +0 1 +0 b.py:1");
	/* with itself: everything +0, sorted by size */
	CHECKD(o, o, SNAP_KEY_LINENO, 0, "200 +0 1 +0 b.py:1",
	       "100 +0 1 +0 a.py:1", "40 +0 1 +0 c.py:5");
	assert_int_equal(snapshot_compare(n, o, SNAP_KEY_LINENO, 0, &d), 0);
	assert_int_equal(d.total_size_diff, 400 - 340);
	snap_diffs_fini(&d);
	assert_int_equal(snapshot_compare(n, o, SNAP_KEY_TRACEBACK, 1, &d),
			 -EINVAL);
	snapshot_free(n);
	snapshot_free(o);
}

/* Sizes near 2^63: the model keeps the total at most SNAP_SIZE_MAX, and
 * every statistic and difference is exact or refused, never wrapped. */
static void test_sizes_near_2_63(void **state)
{
	const uint64_t half = 1ull << 62;
	struct snapshot *big = snapshot_new(), *empty = snapshot_new();
	struct snap_stats st;
	struct snap_diffs d;
	uint32_t a, b;

	(void)state;
	assert_non_null(big);
	assert_non_null(empty);
	a = FX_TB(big, 1, { "a.py", 1 });
	b = FX_TB(big, 1, { "b.py", 2 });
	assert_int_equal(snapshot_add_trace(big, 0, half, a), 0);
	assert_int_equal(snapshot_add_trace(big, 0, half - 1, b), 0);
	assert_true(snapshot_total_size(big) == SNAP_SIZE_MAX);
	/* one byte more is refused, and leaves the snapshot as it was */
	assert_int_equal(snapshot_add_trace(big, 0, 1, a), -EOVERFLOW);
	assert_int_equal(snapshot_add_trace(big, 0, UINT64_MAX, b), -EOVERFLOW);
	assert_int_equal(snapshot_ntraces(big), 2);
	assert_true(snapshot_total_size(big) == SNAP_SIZE_MAX);

	CHECK(big, SNAP_KEY_LINENO, 0, "4611686018427387904 1 a.py:1",
	      "4611686018427387903 1 b.py:2");
	assert_int_equal(snapshot_statistics(big, SNAP_KEY_FILENAME, 1, &st), 0);
	assert_true(st.total_size == SNAP_SIZE_MAX);
	snap_stats_fini(&st);

	/* the growth from nothing to everything, and back: exact */
	assert_int_equal(snapshot_compare(big, empty, SNAP_KEY_LINENO, 0, &d), 0);
	assert_true(d.total_size_diff == INT64_MAX);
	assert_int_equal(d.n, 2);
	assert_true(d.v[0].size_diff == (int64_t)half);
	assert_true(d.v[1].size_diff == (int64_t)(half - 1));
	snap_diffs_fini(&d);
	assert_int_equal(snapshot_compare(empty, big, SNAP_KEY_LINENO, 1, &d), 0);
	assert_true(d.total_size_diff == -INT64_MAX);
	assert_true(d.v[0].size_diff == -(int64_t)half);
	assert_true(d.v[0].size == 0);
	snap_diffs_fini(&d);
	snapshot_free(big);
	snapshot_free(empty);
}

/* Cumulative sums count a trace once per frame: with a recursive
 * traceback they can pass 2^63 - 1 even though the total cannot.  That is
 * -EOVERFLOW, not a wrapped size; just under the limit is exact. */
static void test_cumulative_overflow(void **state)
{
	struct snapshot *s = snapshot_new(), *t = snapshot_new();
	struct snap_stats st;
	struct snap_diffs d;
	uint32_t rec, rec2;

	(void)state;
	assert_non_null(s);
	assert_non_null(t);
	rec = FX_TB(s, 3, { "r.py", 7 }, { "r.py", 7 }, { "r.py", 7 });
	assert_int_equal(snapshot_add_trace(s, 0, 1ull << 62, rec), 0);
	assert_int_equal(snapshot_statistics(s, SNAP_KEY_LINENO, 1, &st), -EOVERFLOW);
	assert_null(st.v);
	assert_int_equal(snapshot_statistics(s, SNAP_KEY_FILENAME, 1, &st), -EOVERFLOW);
	assert_int_equal(snapshot_compare(s, t, SNAP_KEY_LINENO, 1, &d), -EOVERFLOW);
	assert_null(d.v);
	assert_int_equal(snapshot_compare(t, s, SNAP_KEY_FILENAME, 1, &d), -EOVERFLOW);
	/* non-cumulative: one key, exact */
	CHECK(s, SNAP_KEY_LINENO, 0, "4611686018427387904 1 r.py:7");
	CHECK(s, SNAP_KEY_TRACEBACK, 0,
	      "4611686018427387904 1 r.py:7,r.py:7,r.py:7");

	/* two frames of (2^62 - 1): 2^63 - 2, exact */
	rec2 = FX_TB(t, 2, { "r.py", 7 }, { "r.py", 7 });
	assert_int_equal(snapshot_add_trace(t, 0, (1ull << 62) - 1, rec2), 0);
	CHECK(t, SNAP_KEY_LINENO, 1, "9223372036854775806 2 r.py:7");
	snapshot_free(s);
	snapshot_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_traceback),
		cmocka_unit_test(test_lineno),
		cmocka_unit_test(test_filename),
		cmocka_unit_test(test_tie_order),
		cmocka_unit_test(test_total_nframe_ignored),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_compare),
		cmocka_unit_test(test_sizes_near_2_63),
		cmocka_unit_test(test_cumulative_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
