/* test_util_json.c - JSON string literals of hostile bytes
 * (util_fputs_json): whatever the input (NULs, quotes, backslashes, C0 and
 * C1 controls, DEL, invalid UTF-8 of every kind), the output is one valid
 * JSON string with no raw control character, and decoding it as Python
 * does (json.loads, then surrogateescape) gives the input back.  The
 * checker below is written from RFC 8259 and RFC 3629, not from the
 * escaper. */
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

/* util_fputs_json of s[0..len) into a malloc'ed buffer (*outlen bytes). */
static char *json_of(const void *s, size_t len, size_t *outlen)
{
	char *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);

	assert_non_null(f);
	assert_int_equal(util_fputs_json(f, s, len), 0);
	assert_int_equal(fclose(f), 0);
	*outlen = blen;
	return buf;
}

/* Length of the strict UTF-8 sequence at p[0..len) (RFC 3629: no overlong
 * form, no surrogate, nothing above U+10FFFF), its code point in *cp; 0
 * for none. */
static size_t utf8_len(const unsigned char *p, size_t len, uint32_t *cp)
{
	size_t n, i;
	uint32_t v, min;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xE0) == 0xC0) {
		n = 2;
		v = p[0] & 0x1F;
		min = 0x80;
	} else if ((p[0] & 0xF0) == 0xE0) {
		n = 3;
		v = p[0] & 0x0F;
		min = 0x800;
	} else if ((p[0] & 0xF8) == 0xF0) {
		n = 4;
		v = p[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return n;
}

static size_t put_utf8(unsigned char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
	o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
	o[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

static int hex4(const char *p, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

/* Parse j[0..jlen) as exactly one JSON string and decode it into out (the
 * bytes Python's surrogateescape gives back for it); its length, or -1
 * when j is no valid JSON string, holds a raw control character (C0, DEL,
 * C1), or a code point that no byte string decodes to. */
static long decode(const char *j, size_t jlen, unsigned char *out)
{
	const unsigned char *p = (const unsigned char *)j;
	size_t i = 1, o = 0;

	if (jlen < 2 || p[0] != '"' || p[jlen - 1] != '"')
		return -1;
	while (i < jlen - 1) {
		unsigned c = p[i];
		uint32_t cp, lo;
		size_t n;

		if (c == '"' || c < 0x20 || c == 0x7f)
			return -1; /* an unescaped quote or control */
		if (c != '\\') {
			n = utf8_len(p + i, jlen - 1 - i, &cp);
			if (n == 0 || (cp >= 0x80 && cp < 0xa0))
				return -1; /* invalid UTF-8 or a raw C1 */
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
			continue;
		}
		if (i + 1 >= jlen - 1)
			return -1;
		switch (p[i + 1]) {
		case '"': out[o++] = '"'; break;
		case '\\': out[o++] = '\\'; break;
		case '/': out[o++] = '/'; break;
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u':
			if (i + 6 > jlen - 1 || hex4(j + i + 2, &cp) < 0)
				return -1;
			if (cp >= 0xD800 && cp <= 0xDBFF) { /* a pair */
				if (i + 12 > jlen - 1 || p[i + 6] != '\\' ||
				    p[i + 7] != 'u' || hex4(j + i + 8, &lo) < 0 ||
				    lo < 0xDC00 || lo > 0xDFFF)
					return -1;
				o += put_utf8(out + o, 0x10000 + ((cp - 0xD800) << 10) +
								(lo - 0xDC00));
				i += 12;
				continue;
			}
			if (cp >= 0xDC80 && cp <= 0xDCFF)
				out[o++] = (unsigned char)(cp - 0xDC00); /* surrogateescape */
			else if (cp >= 0xDC00 && cp <= 0xDFFF)
				return -1; /* no byte string gives it */
			else
				o += put_utf8(out + o, cp);
			i += 6;
			continue;
		default:
			return -1;
		}
		i += 2;
	}
	return (long)o;
}

/* s[0..len) comes out as valid JSON that decodes back to s. */
static void check(const void *s, size_t len)
{
	size_t jlen;
	char *j = json_of(s, len, &jlen);
	unsigned char *back = malloc(jlen + 1);
	long n;

	assert_non_null(back);
	n = decode(j, jlen, back);
	if (n != (long)len || (len && memcmp(back, s, len) != 0))
		fail_msg("not a faithful JSON string: %.*s", (int)jlen, j);
	free(back);
	free(j);
}

#define CHECK(lit) check(lit, sizeof(lit) - 1)

static void test_hostile_strings(void **state)
{
	(void)state;
	CHECK("");
	CHECK("app.py");
	CHECK("\"");
	CHECK("\\");
	CHECK("\\\"");
	CHECK("\"\\\"\\\\\"");
	CHECK("a\0b");
	CHECK("\0");
	CHECK("\n\r\t\b\f\v\x1b[31m\x07\x7f");
	CHECK("\x1b]0;owned\x07");
	CHECK("\xc2\x80\xc2\x9b\xc2\x9f\xc2\xa0");          /* C1, then NBSP */
	CHECK("\xff\xfe\xc0\xaf\xc1\xbf");                   /* never valid */
	CHECK("\xe0\x80\xaf\xf0\x80\x80\xaf");               /* overlong */
	CHECK("\xed\xa0\x80\xed\xbf\xbf\xed\xb2\x80");       /* surrogates */
	CHECK("\xf4\x90\x80\x80\xf5\x80\x80\x80");           /* > U+10FFFF */
	CHECK("a\xc3");                                      /* cut short */
	CHECK("\xe6\x97");
	CHECK("\xf0\x9f\x98");
	CHECK("\x80\xbf");                                   /* lone trail */
	CHECK("\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf");
	CHECK("\xef\xbb\xbf\xe2\x80\xae\xe2\x80\xa8\xe2\x80\xa9"); /* BOM, RLO, LS, PS */
	CHECK("</script>\"},{\"filename\": \"x\"}");
}

/* The exact text for a few, as render's JSON always wrote it. */
static void test_exact_text(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		{ "q\"b\\s/", 6, "\"q\\\"b\\\\s/\"" },
		{ "\n\t\r\x1b\x7f", 5, "\"\\n\\t\\r\\u001b\\u007f\"" },
		{ "a\0b", 3, "\"a\\u0000b\"" },
		{ "\xc2\x9b", 2, "\"\\u009b\"" },
		{ "\xff" "a\xc3", 3, "\"\\udcffa\\udcc3\"" },
		{ "\xc3\xa9", 2, "\"\xc3\xa9\"" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t jlen;
		char *j = json_of(cases[i].in, cases[i].len, &jlen);

		assert_int_equal(jlen, strlen(cases[i].out));
		assert_memory_equal(j, cases[i].out, jlen);
		free(j);
	}
}

static void test_every_short_string(void **state)
{
	unsigned char s[3];

	(void)state;
	for (unsigned a = 0; a < 256; a++) {
		s[0] = (unsigned char)a;
		check(s, 1);
		for (unsigned b = 0; b < 256; b++) {
			s[1] = (unsigned char)b;
			check(s, 2);
		}
	}
	/* every lead byte of 3 and 4 with every second byte, and a third
	 * that continues or does not */
	for (unsigned a = 0xE0; a < 0x100; a++)
		for (unsigned b = 0x70; b < 0xD0; b++)
			for (unsigned c = 0x7f; c < 0xC1; c += 0x41) {
				s[0] = (unsigned char)a;
				s[1] = (unsigned char)b;
				s[2] = (unsigned char)c;
				check(s, 3);
			}
}

static void test_random_strings(void **state)
{
	/* bytes biased towards what needs care */
	static const unsigned char pool[] = {
		0x00, 0x07, 0x0a, 0x1b, 0x1f, '"', '\\', '/', 'a', 0x7f, 0x80,
		0x9b, 0xa0, 0xbf, 0xc0, 0xc2, 0xc3, 0xdf, 0xe0, 0xe6, 0xed,
		0xef, 0xf0, 0xf4, 0xf5, 0xff,
	};
	unsigned char s[32];
	uint64_t x = 0x2545F4914F6CDD1Dull;

	(void)state;
	for (int k = 0; k < 20000; k++) {
		size_t len;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		len = x % sizeof(s);
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			s[i] = pool[(x >> 11) % sizeof(pool)];
		}
		check(s, len);
	}
}

static void test_write_error(void **state)
{
	FILE *f = fopen("/dev/null", "r");

	(void)state;
	assert_non_null(f);
	assert_int_equal(util_fputs_json(f, "x", 1), -1);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_strings),
		cmocka_unit_test(test_exact_text),
		cmocka_unit_test(test_every_short_string),
		cmocka_unit_test(test_random_strings),
		cmocka_unit_test(test_write_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
