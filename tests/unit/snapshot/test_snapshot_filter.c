/* test_snapshot_filter.c - fnmatch semantics (per Python version) and
 * filter_traces against hand-computed tables. */
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

/* Each row: pattern, then one character per name of NAMES: 1 match,
 * 0 no match, E the pattern is refused (re.error in that version). */
static const char *const NAMES[] = { "a", "b", "c", "-", "!", "]", "[", "z", "^",
				     "\\", "*", "abc", "axbxc", "acb", "", "0",
				     "/" };
#define NNAMES (sizeof(NAMES) / sizeof(NAMES[0]))

struct row {
	const char *pat, *v38, *v310;
};

static const struct row ROWS[] = {
	{ "[z-a]*", "EEEEEEEEEEEEEEEEE", "00000000000000000" },
	{ "[!z-a]", "EEEEEEEEEEEEEEEEE", "11111111111000011" },
	{ "[z-a!]", "EEEEEEEEEEEEEEEEE", "11111111111000011" },
	{ "[z-ab]", "EEEEEEEEEEEEEEEEE", "01000000000000000" },
	{ "[b-a-c]", "EEEEEEEEEEEEEEEEE", "00110000000000000" },
	{ "[a--]", "EEEEEEEEEEEEEEEEE", "00000000000000000" },
	{ "[a-]", "10010000000000000", "10010000000000000" },
	{ "[-a]", "10010000000000000", "10010000000000000" },
	{ "[!-a]", "01101111111000011", "01101111111000011" },
	{ "[a-c-e]", "11110000000000000", "11110000000000000" },
	{ "[]]", "00000100000000000", "00000100000000000" },
	{ "[!]]", "11111011111000011", "11111011111000011" },
	{ "[!]", "00000000000000000", "00000000000000000" },
	{ "[", "00000010000000000", "00000010000000000" },
	{ "[[]", "00000010000000000", "00000010000000000" },
	{ "*", "11111111111111111", "11111111111111111" },
	{ "a*b*c", "00000000000110000", "00000000000110000" },
	{ "\\*", "00000000010000000", "00000000010000000" },
	{ "[^a]", "10000000100000000", "10000000100000000" },
	{ "[\\]", "00000000010000000", "00000000010000000" },
	{ "?", "11111111111000011", "11111111111000011" },
	{ "[--0]", "00010000000000011", "00010000000000011" },
};

static void check_rows(uint32_t version, int v310)
{
	size_t r, i;

	for (r = 0; r < sizeof(ROWS) / sizeof(ROWS[0]); r++) {
		const char *want = v310 ? ROWS[r].v310 : ROWS[r].v38;

		for (i = 0; i < NNAMES; i++) {
			int got = snap_fnmatch(ROWS[r].pat, NAMES[i], version);
			char c = got == -EINVAL ? 'E' : got == 1 ? '1' : got == 0 ? '0' : '?';

			if (c != want[i])
				fail_msg("fnmatch(%s, %s) in %08x: %c, want %c",
					 NAMES[i], ROWS[r].pat, version, c, want[i]);
		}
	}
}

static void test_fnmatch_versions(void **state)
{
	(void)state;
	check_rows(0x03080000, 0);
	check_rows(0x030912f0, 0);
	check_rows(0x030a0df0, 1);
	check_rows(0x030e00f0, 1);
	check_rows(0, 1); /* unknown version: the newest semantics */
}

static void test_fnmatch_unicode(void **state)
{
	(void)state;
	/* '?' and sets work on code points, not bytes */
	assert_int_equal(snap_fnmatch("?.py", "\xc3\xa9.py", 0), 1);
	assert_int_equal(snap_fnmatch("??.py", "\xc3\xa9.py", 0), 0);
	assert_int_equal(snap_fnmatch("[\xc3\xa0-\xc3\xaf]*", "\xc3\xa9t\xc3\xa9", 0), 1);
	assert_int_equal(snap_fnmatch("?", "\xf0\x9f\x98\x80", 0), 1);
	/* an invalid byte is one (surrogate-escaped) character */
	assert_int_equal(snap_fnmatch("?.py", "\xff.py", 0), 1);
	/* '*' crosses '/' and newlines; case-sensitive; whole string */
	assert_int_equal(snap_fnmatch("*.py", "a/b/c.py", 0), 1);
	assert_int_equal(snap_fnmatch("a*", "a\nb", 0), 1);
	assert_int_equal(snap_fnmatch("*.PY", "a.py", 0), 0);
	assert_int_equal(snap_fnmatch("a.py", "a.pyx", 0), 0);
	assert_int_equal(snap_fnmatch("*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0), 0);
}

/* snap_strcmp of two string literals, NULs included. */
#define STRCMP(a, b) snap_strcmp(a, sizeof(a) - 1, b, sizeof(b) - 1)

static void test_strcmp(void **state)
{
	(void)state;
	assert_true(STRCMP("a", "b") < 0);
	assert_true(STRCMP("ab", "a") > 0);
	assert_int_equal(STRCMP("x", "x"), 0);
	/* U+FFFF < U+1F600: UTF-8 byte order is code point order */
	assert_true(STRCMP("\xef\xbf\xbf", "\xf0\x9f\x98\x80") < 0);
	/* U+D7FF < escaped byte 0xFF (U+DCFF) < U+E000 */
	assert_true(STRCMP("\xed\x9f\xbf", "\xff") < 0);
	assert_true(STRCMP("\xff", "\xee\x80\x80") < 0);
	/* NUL is U+0000, not the end: "a" < "a\0" < "a\0b" < "a\1" */
	assert_true(STRCMP("a", "a\0") < 0);
	assert_true(STRCMP("a\0", "a\0b") < 0);
	assert_true(STRCMP("a\0b", "a\1") < 0);
	assert_true(STRCMP("a\0b", "a") > 0);
	assert_int_equal(STRCMP("a\0b", "a\0b"), 0);
	assert_true(STRCMP("a\0\xc3\xa9", "a\0\xc3\xa8") > 0);
}

/* Indexes (1-based, into the reference snapshot) of the traces kept. */
static void check_filter(const struct snapshot *s, const struct snap_filter *f,
			 size_t nf, const char *want)
{
	struct snapshot *r = snapshot_filter(s, f, nf);
	const struct snap_trace *in = snapshot_traces(s), *out;
	char got[64];
	size_t i, j, n = 0;

	assert_non_null(r);
	out = snapshot_traces(r);
	for (i = 0; i < snapshot_ntraces(r); i++) {
		/* find the trace (sizes and domains are distinct enough) */
		for (j = n ? (size_t)(got[n - 1] - '0') : 0;
		     j < snapshot_ntraces(s); j++)
			if (in[j].size == out[i].size &&
			    in[j].domain == out[i].domain)
				break;
		assert_true(j < snapshot_ntraces(s));
		got[n++] = (char)('1' + j);
	}
	got[n] = '\0';
	assert_string_equal(got, want);
	assert_int_equal(snapshot_cmeta(r)->traceback_limit,
			 snapshot_cmeta(s)->traceback_limit);
	snapshot_free(r);
}

#define F(incl, pat) { .inclusive = (incl), .pattern = (pat) }

static void test_filters(void **state)
{
	struct snapshot *s = fx_reference(0x030b07f0);
	struct snap_filter f[3];

	(void)state;
	assert_non_null(s);
	/* traces: 1 T1 100, 2 T1 50, 3 T2 30, 4 T3 200, 5 T4 10, 6 T4 10 dom 1 */
	check_filter(s, NULL, 0, "123456");
	f[0] = (struct snap_filter)F(1, "a.py"); /* most recent frame */
	check_filter(s, f, 1, "12356");
	f[0] = (struct snap_filter)F(0, "a.py");
	check_filter(s, f, 1, "4");
	f[0] = (struct snap_filter)F(1, "c.py");
	check_filter(s, f, 1, "");
	f[0].all_frames = 1;
	check_filter(s, f, 1, "56");
	f[0].inclusive = 0;
	check_filter(s, f, 1, "1234");
	f[0] = (struct snap_filter)F(1, "a.py");
	f[0].has_lineno = 1;
	f[0].lineno = 2;
	check_filter(s, f, 1, "3");
	f[0] = (struct snap_filter){ .inclusive = 1, .is_domain_filter = 1,
				     .domain = 1 };
	check_filter(s, f, 1, "6");
	f[0].inclusive = 0;
	check_filter(s, f, 1, "12345");
	/* Filter(True, "*.py", domain=1) */
	f[0] = (struct snap_filter)F(1, "*.py");
	f[0].has_domain = 1;
	f[0].domain = 1;
	check_filter(s, f, 1, "6");
	/* Filter(False, "a.py", domain=0): res or domain != 0 */
	f[0] = (struct snap_filter)F(0, "a.py");
	f[0].has_domain = 1;
	check_filter(s, f, 1, "46");
	/* includes: any; excludes: all */
	f[0] = (struct snap_filter)F(1, "b.py");
	f[1] = (struct snap_filter)F(1, "c.py");
	f[1].all_frames = 1;
	check_filter(s, f, 2, "456");
	f[2] = (struct snap_filter){ .inclusive = 0, .is_domain_filter = 1,
				     .domain = 1 };
	check_filter(s, f, 3, "45");
	/* .pyc in the pattern is normalised to .py */
	f[0] = (struct snap_filter)F(1, "b.pyc");
	check_filter(s, f, 1, "4");
	f[0] = (struct snap_filter)F(1, "[ab].py?");
	check_filter(s, f, 1, "");
	snapshot_free(s);
}

static void test_filter_pyc_filename(void **state)
{
	struct snapshot *s = snapshot_new(), *r;
	struct snap_filter f = F(1, "x.py");

	(void)state;
	assert_int_equal(snapshot_add_trace(s, 0, 1, FX_TB(s, 1, { "x.pyc", 1 })), 0);
	assert_int_equal(snapshot_add_trace(s, 0, 2, FX_TB(s, 1, { "x.pyx", 1 })), 0);
	r = snapshot_filter(s, &f, 1);
	assert_non_null(r);
	assert_int_equal(snapshot_ntraces(r), 1);
	assert_int_equal(snapshot_traces(r)[0].size, 1);
	snapshot_free(r);
	/* a refused pattern (before 3.10) fails the whole filter */
	snapshot_meta(s)->py_hexversion = 0x030912f0;
	f.pattern = "[z-a]";
	errno = 0;
	assert_null(snapshot_filter(s, &f, 1));
	assert_int_equal(errno, EINVAL);
	snapshot_meta(s)->py_hexversion = 0x030a00f0;
	r = snapshot_filter(s, &f, 1);
	assert_non_null(r);
	assert_int_equal(snapshot_ntraces(r), 0);
	snapshot_free(r);
	snapshot_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fnmatch_versions),
		cmocka_unit_test(test_fnmatch_unicode),
		cmocka_unit_test(test_strcmp),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_filter_pyc_filename),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
