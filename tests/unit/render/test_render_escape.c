/* test_render_escape.c - what a hostile file name or source line becomes
 * in every sink: text reports (top, diff, traceback) and collapsed stacks
 * carry no control character, C1 control or invalid UTF-8 byte, collapsed
 * lines cannot be forged, and JSON strings are exact and deterministic. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trmtop/render.h"
#include "trmtop/snapshot.h"
#include "trmtop/util.h"

/* Escapes, C1 controls (CSI, NEL), separators, a newline, an invalid
 * byte, a NUL, and valid UTF-8 that must stay. */
static const char EVIL[] = "/x/\x1b[2J\x1b]0;pwned\x07;a b\nc\x7f\xc2\x9b\xc2\x85"
			   "\xff\x00z\xc3\xa9.py";
#define EVIL_LEN (sizeof(EVIL) - 1)
static const char SRC[] = "x = 1  # \x1b]0;title\x07\xc2\x9b" "31m";

static struct snapshot *hostile(void)
{
	struct snapshot *s = snapshot_new();
	uint32_t evil, ok, fr[3], tb, tb2;

	assert_non_null(s);
	evil = snapshot_intern_str(s, EVIL, EVIL_LEN);
	ok = snapshot_intern_str(s, "/app/ok.py", 10);
	fr[0] = snapshot_intern_frame(s, evil, 2);  /* most recent */
	fr[1] = snapshot_intern_frame(s, evil, 5);
	fr[2] = snapshot_intern_frame(s, ok, 9);
	tb = snapshot_intern_traceback(s, fr, 3, 3);
	tb2 = snapshot_intern_traceback(s, fr + 2, 1, 1);
	assert_int_equal(snapshot_add_trace(s, 0, 1000, tb), 0);
	assert_int_equal(snapshot_add_trace(s, 0, 24, tb2), 0);
	assert_int_equal(snapshot_set_source(s, evil, 2, SRC, sizeof(SRC) - 1), 0);
	return s;
}

static const char *source(void *arg, const char *name, size_t len,
			  uint32_t lineno)
{
	return snapshot_source(arg, name, len, lineno);
}

/* Every byte of buf[0..len) is printable ASCII, '\n', or part of a valid
 * UTF-8 sequence of a code point >= U+00A0. */
static void assert_clean(const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = util_utf8_seq(buf + i, len - i, &cp);

		assert_true(n > 0);
		assert_true(cp == '\n' || (cp >= 0x20 && cp != 0x7f &&
					   (cp < 0x80 || cp >= 0xa0)));
		i += n;
	}
}

typedef int (*sink_fn)(FILE *f, void *arg);

static char *capture(sink_fn fn, void *arg, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	assert_non_null(f);
	assert_int_equal(fn(f, arg), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static struct snap_report_opts opts(enum snap_key key, struct snapshot *s)
{
	struct snap_report_opts o = { key, 0, 0, source, s };

	return o;
}

static int top_text(FILE *f, void *arg)
{
	struct snapshot *s = arg;
	struct snap_report r;
	struct snap_pick pick = { 1, NULL, 0 };
	int rc = 0;

	for (int key = SNAP_KEY_FILENAME; key <= SNAP_KEY_TRACEBACK; key++) {
		struct snap_report_opts o = opts((enum snap_key)key, s);

		assert_int_equal(snapshot_report_top(s, &o, &r), 0);
		rc |= render_text(f, &r);
		snap_report_fini(&r);
	}
	{
		struct snap_report_opts o = opts(SNAP_KEY_TRACEBACK, s);

		assert_int_equal(snapshot_report_traceback(s, &pick, &o, &r), 0);
		rc |= render_text(f, &r);
		snap_report_fini(&r);
	}
	return rc;
}

static int diff_text(FILE *f, void *arg)
{
	struct snapshot *s = arg, *empty = snapshot_new();
	struct snap_report r;
	int rc = 0;

	assert_non_null(empty);
	for (int key = SNAP_KEY_FILENAME; key <= SNAP_KEY_TRACEBACK; key++) {
		struct snap_report_opts o = opts((enum snap_key)key, s);

		assert_int_equal(snapshot_report_diff(s, empty, &o, &r), 0);
		rc |= render_text(f, &r);
		snap_report_fini(&r);
	}
	snapshot_free(empty);
	return rc;
}

static int collapsed(FILE *f, void *arg)
{
	struct snap_report r;
	int rc;

	assert_int_equal(snapshot_report_stacks(arg, &r), 0);
	rc = render_collapsed(f, &r);
	snap_report_fini(&r);
	return rc;
}

static void test_text_sinks_clean(void **state)
{
	struct snapshot *s = hostile();
	size_t len;
	char *out;

	(void)state;
	out = capture(top_text, s, &len);
	assert_clean(out, len);
	/* the name and the source line are there, escaped */
	assert_non_null(strstr(out, "#1: /x/\\x1b[2J\\x1b]0;pwned\\x07;a b\\x0ac\\x7f"
				    "\\u009b\\u0085\\xff\\x00z\xc3\xa9.py:2: size=1000 B"));
	assert_non_null(strstr(out, "  File \"/x/\\x1b[2J"));
	assert_non_null(strstr(out, "    x = 1  # \\x1b]0;title\\x07\\u009b31m\n"));
	free(out);
	out = capture(diff_text, s, &len);
	assert_clean(out, len);
	assert_non_null(strstr(out, "\\x00z\xc3\xa9.py:2: size=1000 B (+1000 B)"));
	free(out);
	snapshot_free(s);
}

static void test_collapsed_not_forged(void **state)
{
	struct snapshot *s = hostile();
	size_t len, lines = 0;
	char *out, *line, *save = NULL;

	(void)state;
	out = capture(collapsed, s, &len);
	assert_clean(out, len);
	/* two stacks: two lines, 3 and 1 frames, each "frames size" */
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t semis = 0, spaces = 0;

		for (char *p = line; *p; p++) {
			semis += *p == ';';
			spaces += *p == ' ';
		}
		assert_int_equal(spaces, 1);
		if (strstr(line, "\\x3b")) {
			assert_int_equal(semis, 2);
			assert_non_null(strstr(line, "/app/ok.py:9;/x/\\x1b[2J\\x1b]0\\x3bpwned"
						     "\\x07\\x3ba\\x20b\\x0ac\\x7f\\u009b\\u0085"
						     "\\xff\\x00z\xc3\xa9.py:5;"));
			assert_non_null(strstr(line, ".py:2 1000"));
		} else {
			assert_int_equal(semis, 0);
			assert_string_equal(line, "/app/ok.py:9 24");
		}
		lines++;
	}
	assert_int_equal(lines, 2);
	free(out);
	snapshot_free(s);
}

static char *json_of(const char *s, size_t len)
{
	char *buf = NULL;
	size_t blen;
	FILE *f = open_memstream(&buf, &blen);

	assert_non_null(f);
	render_json_str(f, s, len);
	fclose(f);
	return buf;
}

#define JSON_IS(lit, want)                                          \
	do {                                                        \
		char *j_ = json_of(lit, sizeof(lit) - 1);           \
		assert_string_equal(j_, want);                      \
		free(j_);                                           \
	} while (0)

static void test_json_strings(void **state)
{
	(void)state;
	JSON_IS("a.py", "\"a.py\"");
	JSON_IS("q\"b\\s/", "\"q\\\"b\\\\s/\"");
	JSON_IS("\n\t\r\x1b\x07\x7f", "\"\\n\\t\\r\\u001b\\u0007\\u007f\"");
	JSON_IS("a\0b", "\"a\\u0000b\"");
	/* C1 controls escaped, the next code point kept */
	JSON_IS("\xc2\x80\xc2\x9b\xc2\x9f\xc2\xa0", "\"\\u0080\\u009b\\u009f\xc2\xa0\"");
	/* invalid bytes: Python's surrogateescape names, one per byte */
	JSON_IS("\xff" "a\xc3", "\"\\udcffa\\udcc3\"");
	JSON_IS("\xed\xa0\x80", "\"\\udced\\udca0\\udc80\"");
	JSON_IS("\xc0\xaf", "\"\\udcc0\\udcaf\"");
	/* valid UTF-8 kept */
	JSON_IS("\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80", "\"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\"");
	JSON_IS("", "\"\"");
}

static int top_json(FILE *f, void *arg)
{
	struct snapshot *s = arg;
	struct snap_report r;
	struct snap_report_opts o = opts(SNAP_KEY_TRACEBACK, s);
	int rc;

	assert_int_equal(snapshot_report_top(s, &o, &r), 0);
	rc = render_json(f, &r);
	snap_report_fini(&r);
	return rc;
}

static void test_json_report(void **state)
{
	struct snapshot *s = hostile();
	size_t len;
	char *out;

	(void)state;
	out = capture(top_json, s, &len);
	/* JSON text: no raw control byte at all, and the exact name */
	for (size_t i = 0; i < len; i++)
		assert_true((unsigned char)out[i] >= 0x20 || out[i] == '\n');
	assert_non_null(strstr(out, "\"filename\": \"/x/\\u001b[2J\\u001b]0;pwned\\u0007;a b"
				    "\\nc\\u007f\\u009b\\u0085\\udcff\\u0000z\xc3\xa9.py\""));
	assert_non_null(strstr(out, "\"source\": \"x = 1  # \\u001b]0;title\\u0007\\u009b31m\""));
	free(out);
	snapshot_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_sinks_clean),
		cmocka_unit_test(test_collapsed_not_forged),
		cmocka_unit_test(test_json_strings),
		cmocka_unit_test(test_json_report),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
