/* test_util_hash.c - hashing (util.h, "Hashing"): util_mix64 is
 * MurmurHash3's finaliser (reference values, no collision over a range),
 * util_hash_bytes gives the values the snapshot model always had
 * (x86_64: little-endian words), does not depend on alignment, and tells
 * apart lengths and single-byte changes. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trmtop/util.h"

static void test_mix64_reference(void **state)
{
	(void)state;
	assert_true(util_mix64(0) == 0);
	assert_true(util_mix64(1) == 0xb456bcfc34c2cb2cull);
	assert_true(util_mix64(2) == 0x3abf2a20650683e7ull);
	assert_true(util_mix64(0xdeadbeef) == 0xd24bd59f862a1dacull);
	assert_true(util_mix64(UINT64_MAX) == 0x64b5720b4b825f21ull);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void test_mix64_no_collision(void **state)
{
	enum { N = 1 << 16 };
	uint64_t *v = malloc(N * sizeof(*v));
	size_t i;

	(void)state;
	assert_non_null(v);
	for (i = 0; i < N; i++)
		v[i] = util_mix64((uint64_t)i << 32 | (i * 7));
	qsort(v, N, sizeof(*v), cmp_u64);
	for (i = 1; i < N; i++)
		assert_true(v[i] != v[i - 1]);
	free(v);
}

static void test_hash_bytes_reference(void **state)
{
	unsigned char b[20];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(b); i++)
		b[i] = (unsigned char)i;
	assert_int_equal(util_hash_bytes(NULL, 0), 0xa4ab2eea);
	assert_int_equal(util_hash_bytes("a", 1), 0xf3733246);
	assert_int_equal(util_hash_bytes("abcdefgh", 8), 0x5fee0586);
	assert_int_equal(util_hash_bytes("hello, world!", 13), 0x834c382f);
	assert_int_equal(util_hash_bytes(b, sizeof(b)), 0xf444e881);
}

static void test_hash_bytes_alignment(void **state)
{
	static const char text[] = "/usr/lib/python3.12/asyncio/events.py";
	char buf[64];
	uint32_t h = util_hash_bytes(text, sizeof(text) - 1);

	(void)state;
	for (size_t off = 0; off < 8; off++) {
		memcpy(buf + off, text, sizeof(text) - 1);
		assert_int_equal(util_hash_bytes(buf + off, sizeof(text) - 1), h);
	}
}

static void test_hash_bytes_spread(void **state)
{
	unsigned char zeros[64] = { 0 }, s[24];
	uint32_t h[65], base;
	size_t i, j;

	(void)state;
	/* runs of NULs of every length differ (the length is hashed) */
	for (i = 0; i <= 64; i++) {
		h[i] = util_hash_bytes(zeros, i);
		for (j = 0; j < i; j++)
			assert_true(h[i] != h[j]);
	}
	/* one byte changed anywhere changes the hash */
	for (i = 0; i < sizeof(s); i++)
		s[i] = (unsigned char)('a' + i);
	base = util_hash_bytes(s, sizeof(s));
	for (i = 0; i < sizeof(s); i++) {
		s[i] ^= 1;
		assert_true(util_hash_bytes(s, sizeof(s)) != base);
		s[i] ^= 1;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mix64_reference),
		cmocka_unit_test(test_mix64_no_collision),
		cmocka_unit_test(test_hash_bytes_reference),
		cmocka_unit_test(test_hash_bytes_alignment),
		cmocka_unit_test(test_hash_bytes_spread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
