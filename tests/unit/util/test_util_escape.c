/* test_util_escape.c - the escaper of text from a target (util.h,
 * "Escaping"): every control character, C1 control and invalid UTF-8 byte
 * escaped, valid printable UTF-8 kept, the collapsed-stack separators,
 * truncation into a small buffer, and the FILE form agreeing with the
 * buffer form; the saturating additions. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trmtop/util.h"

static char out[4096];

/* Escape s[0..len) into out; checks the FILE form gives the same. */
static const char *esc(const char *s, size_t len, unsigned flags)
{
	char *buf = NULL;
	size_t blen = 0, n;
	FILE *f = open_memstream(&buf, &blen);

	assert_non_null(f);
	n = util_escape(out, sizeof(out), s, len, flags);
	assert_true(n < sizeof(out));
	assert_int_equal(strlen(out), n);
	assert_int_equal(util_fputs_escaped(f, s, len, flags), 0);
	fclose(f);
	assert_int_equal(blen, n);
	assert_memory_equal(buf, out, n);
	free(buf);
	return out;
}

#define ESC(lit) esc(lit, sizeof(lit) - 1, 0)
#define ESCC(lit) esc(lit, sizeof(lit) - 1, UTIL_ESC_COLLAPSED)

/* No byte of s is a C0 control, DEL, or part of a C1 control or of an
 * invalid UTF-8 sequence. */
static void assert_clean(const char *s)
{
	size_t i = 0, len = strlen(s);

	while (i < len) {
		uint32_t cp;
		size_t n = util_utf8_seq(s + i, len - i, &cp);

		assert_true(n > 0);
		assert_true(cp >= 0x20 && cp != 0x7f && (cp < 0x80 || cp >= 0xa0));
		i += n;
	}
}

static void test_printable_kept(void **state)
{
	(void)state;
	assert_string_equal(ESC("/app/leak.py"), "/app/leak.py");
	assert_string_equal(ESC("a b;c\\d\"e'"), "a b;c\\d\"e'");
	/* é, U+00A0 (the first code point after C1), 日本, an emoji,
	 * U+FFFD, U+10FFFF */
	assert_string_equal(ESC("\xc3\xa9\xc2\xa0\xe6\x97\xa5\xe6\x9c\xac\xf0\x9f\x98\x80"
				"\xef\xbf\xbd\xf4\x8f\xbf\xbf"),
			    "\xc3\xa9\xc2\xa0\xe6\x97\xa5\xe6\x9c\xac\xf0\x9f\x98\x80"
			    "\xef\xbf\xbd\xf4\x8f\xbf\xbf");
	assert_string_equal(ESC(""), "");
}

static void test_controls(void **state)
{
	char s[1];

	(void)state;
	assert_string_equal(ESC("\x1b[2J\x1b]0;pwned\x07"), "\\x1b[2J\\x1b]0;pwned\\x07");
	assert_string_equal(ESC("a\nb\rc\td"), "a\\x0ab\\x0dc\\x09d");
	assert_string_equal(ESC("a\0b"), "a\\x00b");
	assert_string_equal(ESC("\x7f"), "\\x7f");
	for (int c = 0; c < 0x20; c++) {
		char want[8];

		s[0] = (char)c;
		snprintf(want, sizeof(want), "\\x%02x", c);
		assert_string_equal(esc(s, 1, 0), want);
	}
}

static void test_c1(void **state)
{
	(void)state;
	/* U+0080, U+0085 (NEL), U+009B (CSI), U+009F */
	assert_string_equal(ESC("\xc2\x80\xc2\x85\xc2\x9b" "31m\xc2\x9f"),
			    "\\u0080\\u0085\\u009b31m\\u009f");
}

static void test_bidi(void **state)
{
	(void)state;
	/* "Trojan Source": RLO makes "gnp.exe.py" read "yp.exe.png" */
	assert_string_equal(ESC("\xe2\x80\xaegnp.exe.py"), "\\u202egnp.exe.py");
	/* LRM, RLM, ALM, LRE..RLO, LRI..PDI */
	assert_string_equal(ESC("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c"),
			    "\\u200e\\u200f\\u061c");
	assert_string_equal(ESC("\xe2\x80\xaa\xe2\x80\xac\xe2\x81\xa6\xe2\x81\xa9"),
			    "\\u202a\\u202c\\u2066\\u2069");
	/* their neighbours are printable and kept: U+2029, U+202F, U+206A */
	assert_string_equal(ESC("\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\xaa"),
			    "\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\xaa");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	assert_string_equal(ESC("a\xff" "b"), "a\\xffb");
	/* a lone continuation byte, a C1 control's bytes apart */
	assert_string_equal(ESC("\x9b"), "\\x9b");
	assert_string_equal(ESC("\xc2"), "\\xc2");
	/* overlong forms */
	assert_string_equal(ESC("\xc0\xaf"), "\\xc0\\xaf");
	assert_string_equal(ESC("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");
	assert_string_equal(ESC("\xf0\x80\x80\xaf"), "\\xf0\\x80\\x80\\xaf");
	/* a surrogate, above U+10FFFF, F5 */
	assert_string_equal(ESC("\xed\xa0\x80"), "\\xed\\xa0\\x80");
	assert_string_equal(ESC("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
	assert_string_equal(ESC("\xf5\x80\x80\x80"), "\\xf5\\x80\\x80\\x80");
	/* truncated, then a valid sequence right after */
	assert_string_equal(ESC("\xe2\x82\xc3\xa9"), "\\xe2\\x82\xc3\xa9");
	assert_string_equal(ESC("x\xf0\x9f\x98"), "x\\xf0\\x9f\\x98");
}

static void test_every_byte_pair_is_clean(void **state)
{
	unsigned char s[3];

	(void)state;
	for (int a = 0; a < 256; a++)
		for (int b = 0; b < 256; b++) {
			s[0] = (unsigned char)a;
			s[1] = (unsigned char)b;
			s[2] = 0x80;
			assert_clean(esc((const char *)s, 3, 0));
			assert_clean(esc((const char *)s, 3, UTIL_ESC_COLLAPSED));
			assert_null(strpbrk(out, "; "));
		}
}

static void test_collapsed(void **state)
{
	(void)state;
	assert_string_equal(ESCC("a b;c\\d\ne"), "a\\x20b\\x3bc\\x5cd\\x0ae");
	assert_string_equal(ESCC("/app/x.py"), "/app/x.py");
	assert_string_equal(ESCC("\xc3\xa9\xc2\x85"), "\xc3\xa9\\u0085");
}

static void test_truncation(void **state)
{
	char small[8];
	const char *s = "ab\x1b" "cdef";

	(void)state;
	/* the whole needs 10 bytes: "ab\x1bcdef" */
	assert_int_equal(util_escape(small, sizeof(small), s, strlen(s), 0), 10);
	assert_string_equal(small, "ab\\x1bc");
	/* never half an escape */
	assert_int_equal(util_escape(small, 5, s, strlen(s), 0), 10);
	assert_string_equal(small, "ab");
	/* never half a UTF-8 sequence */
	assert_int_equal(util_escape(small, 4, "a\xe6\x97\xa5", 4, 0), 4);
	assert_string_equal(small, "a");
	assert_int_equal(util_escape(small, 5, "a\xe6\x97\xa5", 4, 0), 4);
	assert_string_equal(small, "a\xe6\x97\xa5");
	assert_int_equal(util_escape(NULL, 0, s, strlen(s), 0), 10);
	assert_int_equal(util_escape(small, 1, s, strlen(s), 0), 10);
	assert_string_equal(small, "");
}

static void test_saturating(void **state)
{
	(void)state;
	assert_int_equal(util_sat_add_u64(1, 2), 3);
	assert_true(util_sat_add_u64(UINT64_MAX - 1, 1) == UINT64_MAX);
	assert_true(util_sat_add_u64(UINT64_MAX - 1, 2) == UINT64_MAX);
	assert_true(util_sat_add_u64(1ull << 63, 1ull << 63) == UINT64_MAX);
	assert_true(util_sat_add_i64(INT64_MAX, 1) == INT64_MAX);
	assert_true(util_sat_add_i64(INT64_MIN, -1) == INT64_MIN);
	assert_true(util_sat_add_i64(INT64_MAX, INT64_MIN) == -1);
	assert_true(util_sat_add_i64(-5, 3) == -2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_printable_kept),
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_c1),
		cmocka_unit_test(test_bidi),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_every_byte_pair_is_clean),
		cmocka_unit_test(test_collapsed),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_saturating),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
