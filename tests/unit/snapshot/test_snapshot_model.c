/* test_snapshot_model.c - interning, ids, limits, borrowed pointers,
 * source lines, and the scale the model must handle (1M traces, 100k+
 * tracebacks). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fixture.h"
#include "snapshot_int.h"

static void test_intern(void **state)
{
	struct snapshot *s = snapshot_new();
	uint32_t a, b, a2, f1, f2, f3, t1, t2, t3, t4, fr[2], n, total;
	const char *p;
	size_t len;

	(void)state;
	assert_non_null(s);
	a = snapshot_intern_str(s, "a.py", 4);
	b = snapshot_intern_str(s, "b.py", 4);
	a2 = snapshot_intern_str(s, "a.pyXX", 4); /* len counts, not NUL */
	assert_int_equal(a, 0);
	assert_int_equal(b, 1);
	assert_int_equal(a2, a);
	assert_int_equal(snapshot_nstrs(s), 2);
	p = snapshot_str(s, a, &len);
	assert_string_equal(p, "a.py");
	assert_int_equal(len, 4);
	assert_null(snapshot_str(s, 99, &len));
	/* the empty string is a string */
	assert_int_equal(snapshot_intern_str(s, "", 0), 2);
	/* NUL bytes are bytes (a co_filename may hold them): "a\0b" is
	 * neither "a" nor "a\0c", and is kept whole */
	assert_int_equal(snapshot_intern_str(s, "a\0b", 3), 3);
	assert_int_equal(snapshot_intern_str(s, "a\0c", 3), 4);
	assert_int_equal(snapshot_intern_str(s, "a", 1), 5);
	assert_int_equal(snapshot_intern_str(s, "a\0b", 3), 3);
	p = snapshot_str(s, 3, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "a\0b", 4);
	/* refused: too long */
	assert_int_equal(snapshot_intern_str(s, "x", SNAP_STR_MAX + 1), SNAP_NONE);

	f1 = snapshot_intern_frame(s, a, 1);
	f2 = snapshot_intern_frame(s, a, 2);
	f3 = snapshot_intern_frame(s, a, 1);
	assert_int_equal(f1, f3);
	assert_int_not_equal(f1, f2);
	assert_int_equal(snapshot_intern_frame(s, 77, 1), SNAP_NONE);
	assert_int_equal(snapshot_nframes(s), 2);

	fr[0] = f1;
	fr[1] = f2;
	t1 = snapshot_intern_traceback(s, fr, 2, 2);
	t2 = snapshot_intern_traceback(s, fr, 2, 2);
	t3 = snapshot_intern_traceback(s, fr, 2, 5);
	t4 = snapshot_intern_traceback(s, fr, 1, 0); /* total < n: n */
	assert_int_equal(t1, t2);
	assert_int_not_equal(t1, t3);
	assert_int_not_equal(t1, t4);
	assert_non_null(snapshot_traceback(s, t3, &n, &total));
	assert_int_equal(n, 2);
	assert_int_equal(total, 5);
	snapshot_traceback(s, t4, &n, &total);
	assert_int_equal(n, 1);
	assert_int_equal(total, 1);
	fr[1] = 1000;
	assert_int_equal(snapshot_intern_traceback(s, fr, 2, 2), SNAP_NONE);
	assert_int_equal(snapshot_ntracebacks(s), 3);

	assert_int_equal(snapshot_add_trace(s, 0, 10, t1), 0);
	assert_int_equal(snapshot_add_trace(s, 2, 5, t3), 0);
	assert_int_equal(snapshot_add_trace(s, 0, 5, 42), -EINVAL);
	assert_int_equal(snapshot_ntraces(s), 2);
	assert_int_equal(snapshot_total_size(s), 15);
	assert_int_equal(snapshot_traces(s)[1].domain, 2);
	snapshot_free(s);
	snapshot_free(NULL);
}

/* Borrowed strings and frame arrays never move. */
static void test_stable_pointers(void **state)
{
	struct snapshot *s = snapshot_new();
	const char *p0;
	const uint32_t *fr0;
	uint32_t tb0, i, f;
	char name[32];

	(void)state;
	p0 = snapshot_str(s, snapshot_intern_str(s, "first.py", 8), NULL);
	f = snapshot_intern_frame(s, 0, 1);
	tb0 = snapshot_intern_traceback(s, &f, 1, 1);
	fr0 = snapshot_traceback(s, tb0, NULL, NULL);
	for (i = 0; i < 50000; i++) {
		int n = snprintf(name, sizeof(name), "file%u.py", i);
		uint32_t sid = snapshot_intern_str(s, name, (size_t)n);

		f = snapshot_intern_frame(s, sid, i);
		assert_int_not_equal(snapshot_intern_traceback(s, &f, 1, 1),
				     SNAP_NONE);
	}
	assert_ptr_equal(snapshot_str(s, 0, NULL), p0);
	assert_string_equal(p0, "first.py");
	assert_ptr_equal(snapshot_traceback(s, tb0, NULL, NULL), fr0);
	assert_int_equal(snapshot_intern_str(s, "file49999.py", 12), 50000);
	snapshot_free(s);
}

static void test_source(void **state)
{
	struct snapshot *s = snapshot_new();
	uint32_t a = snapshot_intern_str(s, "a.py", 4);

	(void)state;
	assert_null(snapshot_source(s, "a.py", 4, 1));
	assert_int_equal(snapshot_set_source(s, a, 1, "x = []", 6), 0);
	assert_int_equal(snapshot_set_source(s, a, 2, "", 0), 0);
	assert_string_equal(snapshot_source(s, "a.py", 4, 1), "x = []");
	assert_string_equal(snapshot_source(s, "a.py", 4, 2), "");
	assert_null(snapshot_source(s, "a.py", 4, 3));
	assert_null(snapshot_source(s, "b.py", 4, 1));
	assert_int_equal(snapshot_set_source(s, a, 1, "y = {}", 6), 0);
	assert_string_equal(snapshot_source(s, "a.py", 4, 1), "y = {}");
	assert_int_equal(snapshot_set_source(s, 9, 1, "z", 1), -EINVAL);
	snapshot_free(s);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1,000,000 traces over 120,000 tracebacks of depth 1-16: build,
 * statistics with every key, compare, filter, .trm round trip.  The limits
 * are generous (sanitizer builds); the times are printed. */
static void test_scale(void **state)
{
	struct snapshot *s = snapshot_new(), *r;
	struct snap_stats st;
	struct snap_diffs d;
	struct snap_filter f = { .inclusive = 1, .pattern = "*/mod1*" };
	uint32_t *tbs = malloc(120000 * sizeof(*tbs)), fr[16], i, k;
	uint64_t x = 88172645463325252ULL;
	char name[64], *buf = NULL;
	size_t len = 0;
	double t0 = now(), t1, t2, t3;
	FILE *mf;

	(void)state;
	assert_non_null(s);
	assert_non_null(tbs);
	for (i = 0; i < 2000; i++) {
		int n = snprintf(name, sizeof(name), "/usr/lib/python3/pkg%u/mod%u.py",
				 i / 50, i);
		assert_int_not_equal(snapshot_intern_str(s, name, (size_t)n),
				     SNAP_NONE);
	}
	for (i = 0; i < 120000; i++) {
		uint32_t depth = 1 + i % 16;

		for (k = 0; k < depth; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			fr[k] = snapshot_intern_frame(s, (uint32_t)(x % 2000),
						      (uint32_t)(x >> 40) % 500);
		}
		fr[0] = snapshot_intern_frame(s, i % 2000, i / 2000);
		tbs[i] = snapshot_intern_traceback(s, fr, depth, depth);
		assert_int_not_equal(tbs[i], SNAP_NONE);
	}
	for (i = 0; i < 1000000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		assert_int_equal(snapshot_add_trace(s, (x >> 60) == 0,
						    (x >> 20) % 4096,
						    tbs[x % 120000]),
				 0);
	}
	t1 = now();
	assert_int_equal(snapshot_statistics(s, SNAP_KEY_TRACEBACK, 0, &st), 0);
	assert_true(st.n > 100000);
	snap_stats_fini(&st);
	assert_int_equal(snapshot_statistics(s, SNAP_KEY_LINENO, 1, &st), 0);
	snap_stats_fini(&st);
	assert_int_equal(snapshot_statistics(s, SNAP_KEY_FILENAME, 0, &st), 0);
	assert_int_equal(st.total_count, 1000000);
	snap_stats_fini(&st);
	r = snapshot_filter(s, &f, 1);
	assert_non_null(r);
	assert_int_equal(snapshot_compare(s, r, SNAP_KEY_TRACEBACK, 0, &d), 0);
	snap_diffs_fini(&d);
	t2 = now();
	mf = open_memstream(&buf, &len);
	assert_non_null(mf);
	assert_int_equal(snapshot_write_trm(s, mf, NULL), 0);
	fclose(mf);
	snapshot_free(r);
	r = snapshot_read_trm_mem((const uint8_t *)buf, len, NULL);
	assert_non_null(r);
	assert_int_equal(snapshot_ntraces(r), 1000000);
	t3 = now();
	printf("# scale: build %.2fs, 3 stats + filter + compare %.2fs, "
	       ".trm %zu bytes write+read %.2fs\n",
	       t1 - t0, t2 - t1, len, t3 - t2);
	assert_true(t3 - t0 < 60);
	snapshot_free(r);
	free(buf);
	free(tbs);
	snapshot_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intern),
		cmocka_unit_test(test_stable_pointers),
		cmocka_unit_test(test_source),
		cmocka_unit_test(test_scale),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
