/* test_live_model.c - the model of the live view (src/live/model.c) on
 * hand-made snapshots: differences since the baseline, growth rates,
 * trends, leak suspects, regrouping, sorting and filtering the view, the
 * native-memory verdict, interval stretching and sparklines. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "live_int.h"
#include "trmtop/live.h"
#include "trmtop/snapshot.h"

#define SEC 1000000000ull
#define MIB (1ull << 20)

/* A snapshot with `leak` blocks of 1000 bytes at /app/leak.py:7 (called
 * from /app/main.py:3), 5 blocks of 100 bytes at /app/flat.py:2, and
 * `other` blocks of 10 bytes at /lib/other.py:1. */
static struct snapshot *make(unsigned leak, unsigned other)
{
	struct snapshot *s = snapshot_new();
	uint32_t leakf, mainf, flatf, otherf, fr[2], tb_leak, tb_flat, tb_other;
	unsigned i;

	assert_non_null(s);
	leakf = snapshot_intern_str(s, "/app/leak.py", 12);
	mainf = snapshot_intern_str(s, "/app/main.py", 12);
	flatf = snapshot_intern_str(s, "/app/flat.py", 12);
	otherf = snapshot_intern_str(s, "/lib/other.py", 13);
	fr[0] = snapshot_intern_frame(s, leakf, 7);
	fr[1] = snapshot_intern_frame(s, mainf, 3);
	tb_leak = snapshot_intern_traceback(s, fr, 2, 2);
	fr[0] = snapshot_intern_frame(s, flatf, 2);
	tb_flat = snapshot_intern_traceback(s, fr, 2, 2);
	fr[0] = snapshot_intern_frame(s, otherf, 1);
	tb_other = snapshot_intern_traceback(s, fr, 1, 1);
	for (i = 0; i < leak; i++)
		assert_int_equal(snapshot_add_trace(s, 0, 1000, tb_leak), 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(snapshot_add_trace(s, 0, 100, tb_flat), 0);
	for (i = 0; i < other; i++)
		assert_int_equal(snapshot_add_trace(s, 0, 10, tb_other), 0);
	snapshot_meta(s)->traceback_limit = 2;
	return s;
}

static void push(struct live_model *m, unsigned leak, unsigned other, uint64_t t_s,
		 uint64_t rss)
{
	struct live_sample smp = { 0 };
	struct snapshot *s = make(leak, other);

	smp.t_ns = t_s * SEC;
	smp.traced = snapshot_total_size(s);
	smp.rss = rss;
	smp.blocks = snapshot_ntraces(s);
	assert_int_equal(live_model_push(m, s, &smp), 0);
}

static const struct live_row *find(struct live_model *m, const char *file)
{
	const struct live_row *const *rows;
	size_t n, i;

	n = live_model_view(m, LIVE_SORT_SIZE, 0, NULL, &rows);
	for (i = 0; i < n; i++)
		if (rows[i]->row->loc && strcmp(rows[i]->row->loc->filename, file) == 0)
			return rows[i];
	return NULL;
}

static void test_suspect_rule(void **state)
{
	static const uint64_t grow[] = { 1, 2, 3, 4 };
	static const uint64_t mostly[] = { 1, 2, 2, 3, 4 };
	static const uint64_t half[] = { 1, 2, 2, 2, 3 };
	static const uint64_t down[] = { 5, 6, 7, 1 };
	static const uint64_t flat[] = { 3, 3, 3, 3 };

	(void)state;
	assert_false(live_suspect(grow, 2)); /* too few refreshes */
	assert_true(live_suspect(grow, 3));
	assert_true(live_suspect(grow, 4));
	assert_true(live_suspect(mostly, 5));  /* 3 of 4 */
	assert_false(live_suspect(half, 5));   /* 2 of 4: not most */
	assert_false(live_suspect(down, 4));   /* smaller at the end */
	assert_false(live_suspect(flat, 4));
}

static void test_rate_and_stretch(void **state)
{
	(void)state;
	assert_true(live_rate(0, 0, 30 * SEC, 1000) == 2000.0);
	assert_true(live_rate(10 * SEC, 5000, 70 * SEC, 4000) == -1000.0);
	assert_true(live_rate(5, 0, 5, 100) == 0.0);
	/* held 1 ms: 20 ms; interval 2 s stays */
	assert_int_equal(live_stretch_ms(2000, 1000000), 2000);
	/* held 200 ms: 4 s, so that it is 5% */
	assert_int_equal(live_stretch_ms(2000, 200000000), 4000);
	/* a partial millisecond counts whole */
	assert_int_equal(live_stretch_ms(10, 1500000), 40);
}

static void test_native_verdict(void **state)
{
	struct live_native n;
	char buf[512];

	(void)state;
	live_native_judge(100 * MIB, 0, 0, 1, &n);
	assert_int_equal(n.verdict, LIVE_NATIVE_UNKNOWN);
	live_native_judge(3 * MIB, 0, 0, 3, &n);
	assert_int_equal(n.verdict, LIVE_NATIVE_STEADY);
	live_native_judge(40 * MIB, 0, 0, 3, &n);
	assert_int_equal(n.verdict, LIVE_NATIVE_UNTRACED);
	assert_int_equal(n.untraced, 40 * MIB);
	assert_non_null(strstr(live_native_text(&n, buf, sizeof(buf)),
			       "outside Python's allocators"));
	live_native_judge(40 * MIB, 36 * MIB, 2 * MIB, 3, &n);
	assert_int_equal(n.verdict, LIVE_NATIVE_TRACED);
	assert_int_equal(n.untraced, 2 * MIB);
	assert_null(strstr(live_native_text(&n, buf, sizeof(buf)), "outside"));
	/* traced memory falling does not make RSS growth traced */
	live_native_judge(10 * MIB, -50 * (int64_t)MIB, 0, 3, &n);
	assert_int_equal(n.verdict, LIVE_NATIVE_UNTRACED);
}

static void test_model_growth(void **state)
{
	struct live_model *m = live_model_new(SNAP_KEY_LINENO, NULL, NULL, 0);
	const struct live_row *leak, *flat;
	struct live_native nat;

	(void)state;
	assert_non_null(m);
	assert_null(live_model_last(m));
	push(m, 10, 3, 0, 100 * MIB);
	push(m, 20, 3, 30, 100 * MIB + 10000);
	push(m, 30, 3, 60, 100 * MIB + 20000);
	assert_int_equal(live_model_nrefresh(m), 3);
	assert_int_equal(live_model_nkeys(m), 3);
	leak = find(m, "/app/leak.py");
	assert_non_null(leak);
	assert_int_equal(leak->row->loc->lineno, 7);
	assert_int_equal(leak->row->size, 30000);
	assert_int_equal(leak->size_diff, 20000);
	assert_int_equal(leak->count_diff, 20);
	assert_int_equal(leak->nhist, 3);
	assert_int_equal(leak->hist[0], 10000);
	assert_int_equal(leak->hist[2], 30000);
	assert_true(leak->rate == 20000.0); /* 20000 B in one minute */
	assert_true(leak->suspect);
	flat = find(m, "/app/flat.py");
	assert_non_null(flat);
	assert_int_equal(flat->size_diff, 0);
	assert_false(flat->suspect);
	assert_true(flat->rate == 0.0);
	live_model_native(m, &nat);
	assert_int_equal(nat.traced_diff, 20000);
	assert_int_equal(nat.verdict, LIVE_NATIVE_STEADY);

	/* b: differences restart, the trend and rate stay */
	assert_int_equal(live_model_set_baseline(m), 0);
	leak = find(m, "/app/leak.py");
	assert_int_equal(leak->size_diff, 0);
	assert_true(leak->suspect);
	push(m, 35, 3, 90, 100 * MIB + 30000);
	leak = find(m, "/app/leak.py");
	assert_int_equal(leak->size_diff, 5000);
	assert_int_equal(live_model_since_baseline(m), 2);
	live_model_free(m);
}

static void test_model_new_rows_and_history(void **state)
{
	struct live_model *m = live_model_new(SNAP_KEY_LINENO, NULL, NULL, 0);
	const struct live_row *other;
	unsigned i;

	(void)state;
	push(m, 1, 0, 0, 0);
	push(m, 1, 4, 1, 0);  /* other.py appears: growth from 0 */
	other = find(m, "/lib/other.py");
	assert_non_null(other);
	assert_int_equal(other->size_diff, 40);
	assert_int_equal(other->hist[0], 0);
	/* the history keeps the last LIVE_HISTORY refreshes */
	for (i = 2; i < LIVE_HISTORY + 10; i++)
		push(m, 1 + i, 4, i, 0);
	other = find(m, "/app/leak.py");
	assert_int_equal(other->nhist, LIVE_HISTORY);
	assert_int_equal(other->hist[LIVE_HISTORY - 1], (LIVE_HISTORY + 10) * 1000);
	assert_int_equal(other->hist[0], (11 + 0) * 1000);
	assert_true(other->suspect);
	live_model_free(m);
}

/* A snapshot with 1000 bytes at /app/leak.py:7 and 10 bytes at a file
 * of its own, /gen/N.py:1 (a target compiling generated code). */
static struct snapshot *make_churn(unsigned n)
{
	struct snapshot *s = snapshot_new();
	char name[32];
	uint32_t f, fr, tb;

	assert_non_null(s);
	f = snapshot_intern_str(s, "/app/leak.py", 12);
	fr = snapshot_intern_frame(s, f, 7);
	tb = snapshot_intern_traceback(s, &fr, 1, 1);
	assert_int_equal(snapshot_add_trace(s, 0, 1000, tb), 0);
	snprintf(name, sizeof(name), "/gen/%u.py", n);
	f = snapshot_intern_str(s, name, strlen(name));
	fr = snapshot_intern_frame(s, f, 1);
	tb = snapshot_intern_traceback(s, &fr, 1, 1);
	assert_int_equal(snapshot_add_trace(s, 0, 10, tb), 0);
	return s;
}

/* Keys churned by the target (a new file name at each refresh) do not
 * grow the model without bound; a key of the baseline that comes back
 * after a long absence is still compared with its baseline. */
static void test_model_churn_bounded(void **state)
{
	struct live_model *m = live_model_new(SNAP_KEY_LINENO, NULL, NULL, 0);
	struct live_sample smp = { 0 };
	const struct live_row *r;
	unsigned i;

	(void)state;
	for (i = 0; i < 5000; i++) {
		smp.t_ns = i * SEC;
		/* /gen/0.py is the baseline's, back at the end */
		assert_int_equal(live_model_push(m, make_churn(i == 4999 ? 0 : i), &smp), 0);
		assert_true(live_model_nentries(m) <= 2 * (LIVE_HISTORY + 2) + 1024);
	}
	r = find(m, "/gen/0.py");
	assert_non_null(r);
	assert_int_equal(r->size_diff, 0);
	r = find(m, "/app/leak.py");
	assert_int_equal(r->size_diff, 0);
	assert_int_equal(r->nhist, LIVE_HISTORY);
	live_model_free(m);
}

/* A trace without frames (a 0-frame traceback the wire allows): its row
 * has no location; its cells say <unknown>:0 (render_row_loc returns
 * that text without writing the buffer: the cell used to hold whatever
 * the stack had). */
static void test_row_without_frames(void **state)
{
	struct live_model *m = live_model_new(SNAP_KEY_LINENO, NULL, NULL, 0);
	struct snapshot *s = snapshot_new();
	struct live_sample smp = { 0 };
	const struct live_row *const *rows;
	struct live_cells c;
	uint32_t tb;

	(void)state;
	tb = snapshot_intern_traceback(s, NULL, 0, 0);
	assert_int_equal(snapshot_add_trace(s, 0, 100, tb), 0);
	assert_int_equal(live_model_push(m, s, &smp), 0);
	assert_int_equal(live_model_view(m, LIVE_SORT_SIZE, 0, NULL, &rows), 1);
	assert_null(rows[0]->row->loc);
	memset(&c, 'A', sizeof(c));
	live_row_cells(rows[0], &c);
	assert_string_equal(c.loc, "<unknown>:0");
	live_model_free(m);
}

static void test_model_view(void **state)
{
	struct live_model *m = live_model_new(SNAP_KEY_LINENO, NULL, NULL, 0);
	const struct live_row *const *rows;
	size_t n;

	(void)state;
	push(m, 1, 100, 0, 0);   /* other: 1000 B, leak 1000 B, flat 500 B */
	push(m, 2, 100, 10, 0);
	push(m, 3, 100, 20, 0);
	n = live_model_view(m, LIVE_SORT_COUNT, 0, NULL, &rows);
	assert_int_equal(n, 3);
	assert_string_equal(rows[0]->row->loc->filename, "/lib/other.py");
	n = live_model_view(m, LIVE_SORT_DSIZE, 0, NULL, &rows);
	assert_string_equal(rows[0]->row->loc->filename, "/app/leak.py");
	n = live_model_view(m, LIVE_SORT_SIZE, 1, NULL, &rows);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0]->row->loc->filename, "/app/leak.py");
	n = live_model_view(m, LIVE_SORT_SIZE, 0, "/app/*", &rows);
	assert_int_equal(n, 2);
	n = live_model_view(m, LIVE_SORT_SIZE, 0, "*flat*", &rows);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0]->row->loc->filename, "/app/flat.py");

	/* regroup: by filename, then by traceback (the most recent frame) */
	assert_int_equal(live_model_set_key(m, SNAP_KEY_FILENAME), 0);
	assert_int_equal(live_model_key(m), SNAP_KEY_FILENAME);
	n = live_model_view(m, LIVE_SORT_SIZE, 0, NULL, &rows);
	assert_int_equal(n, 3);
	assert_string_equal(rows[0]->row->loc->filename, "/app/leak.py");
	assert_int_equal(rows[0]->size_diff, 2000); /* against the baseline */
	assert_int_equal(rows[0]->nhist, 1);        /* history restarted */
	assert_int_equal(live_model_set_key(m, SNAP_KEY_TRACEBACK), 0);
	n = live_model_view(m, LIVE_SORT_SIZE, 0, "/app/leak.py", &rows);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0]->row->nframe, 2);
	assert_int_equal(rows[0]->row->loc->lineno, 7);
	push(m, 4, 100, 30, 0);
	n = live_model_view(m, LIVE_SORT_SIZE, 0, "/app/leak.py", &rows);
	assert_int_equal(rows[0]->size_diff, 3000);
	assert_int_equal(rows[0]->nhist, 2);
	live_model_free(m);
}

static void test_sparkline_and_text(void **state)
{
	static const uint64_t v[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	char buf[64];

	(void)state;
	assert_string_equal(live_sparkline(v, 8, 0, buf, sizeof(buf)), " .:-=+*#");
	assert_string_equal(live_sparkline(v, 2, 1, buf, sizeof(buf)),
			    "\u2581\u2588");
	assert_string_equal(live_sparkline(v, 1, 0, buf, sizeof(buf)), " ");
	assert_string_equal(live_format_rate(0.2, buf, sizeof(buf)), "0 B/min");
	assert_string_equal(live_format_rate(2048, buf, sizeof(buf)), "+2048 B/min");
	assert_string_equal(live_shorten_left("/very/long/path/app.py:12", 13, buf,
					      sizeof(buf)), ".../app.py:12");
	assert_string_equal(live_format_ms(1500, buf, sizeof(buf)), "1.5s");
	assert_string_equal(live_format_ms(120000, buf, sizeof(buf)), "2m");
	assert_string_equal(live_format_ms(500, buf, sizeof(buf)), "500ms");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suspect_rule),
		cmocka_unit_test(test_rate_and_stretch),
		cmocka_unit_test(test_native_verdict),
		cmocka_unit_test(test_model_growth),
		cmocka_unit_test(test_model_new_rows_and_history),
		cmocka_unit_test(test_model_view),
		cmocka_unit_test(test_model_churn_bounded),
		cmocka_unit_test(test_row_without_frames),
		cmocka_unit_test(test_sparkline_and_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
