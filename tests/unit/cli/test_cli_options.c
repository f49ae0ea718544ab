/* test_cli_options.c - cli_merge_options: every option of every group, in
 * order, however many (the report commands once merged theirs into a
 * fixed table of 48 that cut the rest silently). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"

#define PER_GROUP 40

static char names[3][PER_GROUP][16];

static void fill(struct argp_option *g, int which)
{
	int i;

	memset(g, 0, (PER_GROUP + 1) * sizeof(*g));
	for (i = 0; i < PER_GROUP; i++) {
		snprintf(names[which][i], sizeof(names[which][i]), "opt-%d-%d", which, i);
		g[i].name = names[which][i];
		g[i].key = 0x1000 + which * PER_GROUP + i;
	}
}

static void test_many(void **state)
{
	static struct argp_option a[PER_GROUP + 1], b[PER_GROUP + 1], c[PER_GROUP + 1];
	const struct argp_option *groups[4] = { a, NULL, b, c };
	struct argp_option *all;
	int i;

	(void)state;
	fill(a, 0);
	fill(b, 1);
	fill(c, 2);
	all = cli_merge_options(groups, 4);
	assert_non_null(all);
	for (i = 0; i < 3 * PER_GROUP; i++)
		assert_int_equal(all[i].key, 0x1000 + i);
	assert_string_equal(all[3 * PER_GROUP - 1].name, "opt-2-39");
	assert_null(all[3 * PER_GROUP].name);
	assert_int_equal(all[3 * PER_GROUP].key, 0);
	free(all);
}

static void test_none(void **state)
{
	static const struct argp_option empty[] = { { 0 } };
	const struct argp_option *groups[2] = { NULL, empty };
	struct argp_option *all;

	(void)state;
	all = cli_merge_options(groups, 2);
	assert_non_null(all);
	assert_null(all[0].name);
	assert_int_equal(all[0].key, 0);
	free(all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_none),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
