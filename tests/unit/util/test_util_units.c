/* test_util_units.c - sizes and durations as people type them
 * (util_parse_size, util_parse_duration): the units and their case,
 * decimal numbers only (no sign, exponent, hex float, inf or nan: "0x1p3"
 * used to be 8 s), the bounds; and sizes printed as tracemalloc prints
 * them (util_format_size). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trmtop/util.h"

static uint64_t dur(const char *s)
{
	uint64_t ms = 12345;

	assert_int_equal(util_parse_duration(s, &ms), 0);
	return ms;
}

static uint64_t size(const char *s)
{
	uint64_t v = 12345;

	assert_int_equal(util_parse_size(s, &v), 0);
	return v;
}

static void test_durations(void **state)
{
	(void)state;
	assert_true(dur("2") == 2000);
	assert_true(dur("1.5") == 1500);
	assert_true(dur(".5s") == 500);
	assert_true(dur("500ms") == 500);
	assert_true(dur("500 ms") == 500);
	assert_true(dur("2s") == 2000 && dur("2sec") == 2000);
	assert_true(dur("1m") == 60000 && dur("1MIN") == 60000);
	assert_true(dur("1h") == 3600000);
	assert_true(dur("0") == 0);
}

static void test_durations_refused(void **state)
{
	static const char *const bad[] = {
		"", " ", "s", "-1", "+1", "1e3", "0x10", "0x1p3", "inf", "nan",
		"1..5", ".", "1.2.3", "1 d", "1ms2", "1e400",
		"99999999999999999999999", /* at or past 1e15 ms */
	};
	uint64_t ms = 7;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(util_parse_duration(bad[i], &ms), -EINVAL);
		assert_true(ms == 7);
	}
	assert_int_equal(util_parse_duration(NULL, &ms), -EINVAL);
}

static void test_sizes(void **state)
{
	(void)state;
	assert_true(size("64KiB") == 65536 && size("64k") == 65536 &&
		    size("64K") == 65536);
	assert_true(size("1kb") == 1000 && size("1KB") == 1000);
	assert_true(size("1M") == 1048576 && size("1mb") == 1000000);
	assert_true(size("1.5 MiB") == 1572864);
	assert_true(size("1G") == 1073741824ull && size("1T") == 1099511627776ull);
	assert_true(size("100") == 100 && size("100b") == 100);
}

static void test_sizes_refused(void **state)
{
	static const char *const bad[] = {
		"", "k", "-1k", "0x40", "1e3", "inf", "1..2k", "1 x",
		"8388608TiB", /* 2^63 */
	};
	uint64_t v = 7;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(util_parse_size(bad[i], &v), -EINVAL);
		assert_true(v == 7);
	}
}

static void test_format_size(void **state)
{
	char b[32];

	(void)state;
	assert_string_equal(util_format_size(0, 0, b, sizeof(b)), "0 B");
	assert_string_equal(util_format_size(10239, 0, b, sizeof(b)), "10239 B");
	assert_string_equal(util_format_size(10240, 0, b, sizeof(b)), "10.0 KiB");
	assert_string_equal(util_format_size(524288, 0, b, sizeof(b)), "512 KiB");
	assert_string_equal(util_format_size(-2048, 1, b, sizeof(b)), "-2048 B");
	assert_string_equal(util_format_size(3 << 20, 1, b, sizeof(b)), "+3072 KiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_durations_refused),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_sizes_refused),
		cmocka_unit_test(test_format_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
