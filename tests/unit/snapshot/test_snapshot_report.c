/* test_snapshot_report.c - the row model of every report (snapshot.h,
 * "report rows") against hand-computed tables of the reference snapshot
 * (fixture.h): the frame each row names, averages, the limit and the
 * "other" sums, source lines for the rows shown only, the traceback pick
 * and the stacks. */
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
#include "trmtop/snapshot.h"

static int nlookups;

/* "src a.py:1" for a.py's lines, nothing for the others */
static const char *source(void *arg, const char *name, size_t len, uint32_t lineno)
{
	static char buf[64];

	(void)arg;
	nlookups++;
	if (len != 4 || memcmp(name, "a.py", 4) != 0)
		return NULL;
	snprintf(buf, sizeof(buf), "src a.py:%u", lineno);
	return lineno == 2 ? buf : "src a.py:1";
}

static void assert_loc(const struct snap_loc *l, const char *file, uint32_t line)
{
	assert_non_null(l);
	assert_int_equal(l->filename_len, strlen(file));
	assert_memory_equal(l->filename, file, strlen(file));
	assert_int_equal(l->lineno, line);
}

static void test_top_traceback(void **state)
{
	struct snapshot *s = fx_reference(0x030b07f0);
	struct snap_report_opts o = { SNAP_KEY_TRACEBACK, 0, 2, source, NULL };
	struct snap_report r;

	(void)state;
	nlookups = 0;
	assert_int_equal(snapshot_report_top(s, &o, &r), 0);
	assert_int_equal(r.kind, SNAP_REPORT_TOP);
	assert_int_equal(r.nrows, 4);
	assert_int_equal(r.nkeys, 4);
	assert_int_equal(r.nshown, 2);
	/* 200 1 b.py:1 | 150 2 b.py:1,a.py:1 | 30 1 b.py:1,a.py:2 | 20 2 c.py:5,a.py:1,a.py:1 */
	assert_int_equal(r.rows[0].rank, 1);
	assert_int_equal(r.rows[1].rank, 2);
	assert_int_equal(r.rows[1].size, 150);
	assert_int_equal(r.rows[1].count, 2);
	assert_true(r.rows[1].average == 75.0);
	/* the traceback key names the most recent call */
	assert_loc(r.rows[1].loc, "a.py", 1);
	assert_ptr_equal(r.rows[1].loc, &r.rows[1].frames[1]);
	assert_string_equal(r.rows[1].source, "src a.py:1");
	assert_null(r.rows[1].sources[0]);
	assert_null(r.rows[0].source);
	/* sources looked up for the rows shown only: 1 + 2 frames */
	assert_int_equal(nlookups, 3);
	assert_null(r.rows[2].sources);
	assert_null(r.rows[3].sources);
	assert_int_equal(r.nother, 2);
	assert_int_equal(r.other_size, 50);
	assert_int_equal(r.other_count, 3);
	assert_int_equal(r.total_size, 400);
	assert_int_equal(r.total_count, 6);
	snap_report_fini(&r);
	snap_report_fini(&r); /* safe twice */
	snapshot_free(s);
}

static void test_top_lineno_all(void **state)
{
	struct snapshot *s = fx_reference(0x030b07f0);
	struct snap_report_opts o = { SNAP_KEY_LINENO, 0, 0, NULL, NULL };
	struct snap_report r;

	(void)state;
	assert_int_equal(snapshot_report_top(s, &o, &r), 0);
	/* b.py:1 200 1 | a.py:1 170 4 | a.py:2 30 1 */
	assert_int_equal(r.nrows, 3);
	assert_int_equal(r.nshown, 3);
	assert_int_equal(r.nother, 0);
	assert_int_equal(r.other_size, 0);
	assert_loc(r.rows[1].loc, "a.py", 1);
	assert_int_equal(r.rows[1].size, 170);
	assert_true(r.rows[1].average == 42.5);
	assert_null(r.rows[1].source); /* no source function */
	assert_non_null(r.rows[1].sources);
	snap_report_fini(&r);
	/* cumulative traceback: refused, as statistics refuses it */
	o.key = SNAP_KEY_TRACEBACK;
	o.cumulative = 1;
	assert_int_equal(snapshot_report_top(s, &o, &r), -EINVAL);
	assert_null(r.rows);
	snap_report_fini(&r);
	snapshot_free(s);
}

static void test_diff(void **state)
{
	struct snapshot *s = fx_reference(0x030b07f0), *empty = snapshot_new();
	struct snap_report_opts o = { SNAP_KEY_LINENO, 0, 1, source, NULL };
	struct snap_report r;

	(void)state;
	assert_non_null(empty);
	assert_int_equal(snapshot_report_diff(s, empty, &o, &r), 0);
	assert_int_equal(r.kind, SNAP_REPORT_DIFF);
	assert_int_equal(r.nrows, 3);
	assert_int_equal(r.nshown, 1);
	assert_int_equal(r.rows[0].size_diff, 200);
	assert_int_equal(r.rows[0].count_diff, 1);
	assert_int_equal(r.nother, 2);
	assert_int_equal(r.other_size_diff, 200);
	assert_int_equal(r.total_size_diff, 400);
	snap_report_fini(&r);
	/* the other way round: everything shrinks */
	assert_int_equal(snapshot_report_diff(empty, s, &o, &r), 0);
	assert_int_equal(r.rows[0].size, 0);
	assert_int_equal(r.rows[0].size_diff, -200);
	assert_true(r.rows[0].average == 0.0);
	assert_int_equal(r.other_size_diff, -200);
	assert_int_equal(r.total_size_diff, -400);
	snap_report_fini(&r);
	snapshot_free(empty);
	snapshot_free(s);
}

static void test_traceback_pick(void **state)
{
	struct snapshot *s = fx_reference(0x030b07f0);
	struct snap_report_opts o = { SNAP_KEY_LINENO, 1, 5, source, NULL };
	struct snap_pick pick = { 2, NULL, 0 };
	struct snap_report r;

	(void)state;
	assert_int_equal(snapshot_report_traceback(s, &pick, &o, &r), 0);
	assert_int_equal(r.kind, SNAP_REPORT_TRACEBACK);
	assert_int_equal(r.key, SNAP_KEY_TRACEBACK);
	assert_int_equal(r.cumulative, 0);
	assert_int_equal(r.nrows, 1);
	assert_int_equal(r.nshown, 1);
	assert_int_equal(r.nkeys, 4);
	assert_int_equal(r.rows[0].rank, 1);
	assert_int_equal(r.rows[0].size, 150);
	assert_int_equal(r.total_size, 150);
	assert_int_equal(r.total_count, 2);
	assert_int_equal(r.nother, 0);
	snap_report_fini(&r);
	/* by location: the name's part after a '/' or the whole name */
	pick.file = "a.py";
	pick.line = 2;
	assert_int_equal(snapshot_report_traceback(s, &pick, &o, &r), 0);
	assert_int_equal(r.rows[0].size, 30);
	assert_string_equal(r.rows[0].source, "src a.py:2");
	snap_report_fini(&r);
	pick.file = "x/a.py";
	assert_int_equal(snapshot_report_traceback(s, &pick, &o, &r), -ENOENT);
	assert_int_equal(r.nkeys, 4);
	assert_null(r.rows);
	snap_report_fini(&r);
	pick.file = NULL;
	pick.rank = 5;
	assert_int_equal(snapshot_report_traceback(s, &pick, &o, &r), -ENOENT);
	assert_int_equal(r.nkeys, 4);
	snap_report_fini(&r);
	snapshot_free(s);
}

static void test_stacks(void **state)
{
	struct snapshot *s = fx_reference(0x030b07f0), *empty = snapshot_new();
	struct snap_report r;

	(void)state;
	assert_non_null(empty);
	assert_int_equal(snapshot_report_stacks(s, &r), 0);
	assert_int_equal(r.kind, SNAP_REPORT_STACKS);
	/* in traceback id order: T1 150, T2 30, T3 200, T4 20 */
	assert_int_equal(r.nrows, 4);
	assert_int_equal(r.nshown, 4);
	assert_int_equal(r.rows[0].size, 150);
	assert_int_equal(r.rows[0].count, 2);
	assert_int_equal(r.rows[0].nframe, 2);
	assert_loc(&r.rows[0].frames[0], "b.py", 1); /* oldest first */
	assert_loc(&r.rows[0].frames[1], "a.py", 1);
	assert_int_equal(r.rows[2].size, 200);
	assert_int_equal(r.rows[3].nframe, 3);
	assert_loc(&r.rows[3].frames[0], "c.py", 5);
	assert_null(r.rows[0].sources);
	assert_int_equal(r.total_size, 400);
	snap_report_fini(&r);
	assert_int_equal(snapshot_report_stacks(empty, &r), 0);
	assert_int_equal(r.nrows, 0);
	snap_report_fini(&r);
	snapshot_free(empty);
	snapshot_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_top_traceback),
		cmocka_unit_test(test_top_lineno_all),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_traceback_pick),
		cmocka_unit_test(test_stacks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
