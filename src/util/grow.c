/* grow.c - growable arrays: util_grow_max (util.h, "Growable arrays"), the
 * one capacity policy of every array that grows by appending (interning
 * tables, the snapshot model, the tracemalloc dump reader).  libc only:
 * the agent compiles it too. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "trmtop/util.h"

int util_grow_max(void **arr, size_t *cap, size_t need, size_t elem,
		  size_t first, size_t max)
{
	size_t ncap = *cap ? *cap : first;
	void *p;

	if (need <= *cap)
		return 0;
	if (need > max || elem == 0)
		return -ENOMEM;
	if (ncap == 0)
		ncap = 1;
	while (ncap < need) {
		if (ncap > max / 2) {
			ncap = max;
			break;
		}
		ncap *= 2;
	}
	if (ncap > max)
		ncap = max; /* first above max */
	if (ncap > SIZE_MAX / elem)
		return -ENOMEM;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}
