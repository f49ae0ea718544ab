/* opt_merge.c - one argp option table from several groups (cli.h): the
 * report commands share their option groups this way, with no limit on
 * how many options the groups hold. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct argp_option *cli_merge_options(const struct argp_option *const *groups,
				      size_t ngroups)
{
	struct argp_option *all;
	size_t g, i, n = 0;

	for (g = 0; g < ngroups; g++)
		for (i = 0; groups[g] && groups[g][i].name; i++)
			n++;
	all = calloc(n + 1, sizeof(*all)); /* the zeroed terminator */
	if (!all)
		return NULL;
	n = 0;
	for (g = 0; g < ngroups; g++)
		for (i = 0; groups[g] && groups[g][i].name; i++)
			all[n++] = groups[g][i];
	return all;
}
