/* test_util_grow.c - growable arrays (util.h, "Growable arrays"): the
 * first capacity, doubling, the contents kept, nothing done when there is
 * room, the limit (max), and every overflow refused before realloc with
 * the array unchanged; UTIL_GROW on a typed array. */
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

static void test_first_and_doubling(void **state)
{
	void *p = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(util_grow(&p, &cap, 1, 4, 16), 0);
	assert_non_null(p);
	assert_int_equal(cap, 16);
	assert_int_equal(util_grow(&p, &cap, 17, 4, 16), 0);
	assert_int_equal(cap, 32);
	/* several doublings at once */
	assert_int_equal(util_grow(&p, &cap, 100, 4, 16), 0);
	assert_int_equal(cap, 128);
	free(p);

	/* a first capacity of 0 starts at 1 */
	p = NULL;
	cap = 0;
	assert_int_equal(util_grow(&p, &cap, 3, 1, 0), 0);
	assert_int_equal(cap, 4);
	free(p);

	/* need 0 on an empty array: nothing */
	p = NULL;
	cap = 0;
	assert_int_equal(util_grow(&p, &cap, 0, 8, 64), 0);
	assert_null(p);
	assert_int_equal(cap, 0);
}

static void test_room_left_is_a_no_op(void **state)
{
	void *p = NULL, *before;
	size_t cap = 0;

	(void)state;
	assert_int_equal(util_grow(&p, &cap, 10, 8, 64), 0);
	before = p;
	assert_int_equal(util_grow(&p, &cap, 64, 8, 64), 0);
	assert_ptr_equal(p, before);
	assert_int_equal(cap, 64);
	free(p);
}

static void test_contents_kept(void **state)
{
	uint32_t *v = NULL;
	size_t cap = 0, n;

	(void)state;
	for (n = 0; n < 10000; n++) {
		assert_int_equal(UTIL_GROW(v, cap, n + 1, 16), 0);
		assert_true(cap >= n + 1);
		v[n] = (uint32_t)(n * 2654435761u);
	}
	for (n = 0; n < 10000; n++)
		assert_int_equal(v[n], (uint32_t)(n * 2654435761u));
	assert_int_equal(cap, 16384);
	free(v);
}

static void test_max(void **state)
{
	void *p = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(util_grow_max(&p, &cap, 20, 1, 16, 50), 0);
	assert_int_equal(cap, 32);
	/* the next doubling would pass max: max it is */
	assert_int_equal(util_grow_max(&p, &cap, 40, 1, 16, 50), 0);
	assert_int_equal(cap, 50);
	assert_int_equal(util_grow_max(&p, &cap, 50, 1, 16, 50), 0);
	assert_int_equal(cap, 50);
	/* beyond max: refused, unchanged */
	assert_int_equal(util_grow_max(&p, &cap, 51, 1, 16, 50), -ENOMEM);
	assert_non_null(p);
	assert_int_equal(cap, 50);
	free(p);

	/* a first capacity above max is cut to it */
	p = NULL;
	cap = 0;
	assert_int_equal(util_grow_max(&p, &cap, 1, 4, 16, 10), 0);
	assert_int_equal(cap, 10);
	free(p);

	/* below max, doubling as usual */
	p = NULL;
	cap = 0;
	assert_int_equal(util_grow_max(&p, &cap, 40, 1, 16, 100), 0);
	assert_int_equal(cap, 64);
	free(p);
}

static void test_overflow_refused(void **state)
{
	void *p = NULL;
	size_t cap = 0;

	(void)state;
	/* 16 elements of SIZE_MAX / 8 bytes */
	assert_int_equal(util_grow(&p, &cap, 1, SIZE_MAX / 8, 16), -ENOMEM);
	assert_null(p);
	assert_int_equal(cap, 0);
	/* the element count itself would wrap */
	assert_int_equal(util_grow(&p, &cap, 8, 1, 8), 0);
	assert_int_equal(util_grow(&p, &cap, SIZE_MAX / 2 + 2, 2, 8), -ENOMEM);
	assert_non_null(p);
	assert_int_equal(cap, 8);
	/* no element size */
	assert_int_equal(util_grow(&p, &cap, 9, 0, 8), -ENOMEM);
	assert_int_equal(cap, 8);
	free(p);
}

struct pair {
	uint64_t a, b;
};

static void test_typed_macro(void **state)
{
	struct pair *v = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(UTIL_GROW(v, cap, 5, 4), 0);
	assert_int_equal(cap, 8);
	v[7] = (struct pair){ 1, 2 };
	assert_int_equal(UTIL_GROW(v, cap, 9, 4), 0);
	assert_int_equal(cap, 16);
	assert_int_equal(v[7].b, 2);
	assert_int_equal(UTIL_GROW(v, cap, SIZE_MAX / 8, 4), -ENOMEM);
	assert_int_equal(cap, 16);
	assert_int_equal(v[7].a, 1);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_and_doubling),
		cmocka_unit_test(test_room_left_is_a_no_op),
		cmocka_unit_test(test_contents_kept),
		cmocka_unit_test(test_max),
		cmocka_unit_test(test_overflow_refused),
		cmocka_unit_test(test_typed_macro),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
