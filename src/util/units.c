/* units.c - sizes and durations as people type them (util_parse_size,
 * util_parse_duration), sizes as tracemalloc prints them, and the
 * monotonic clock. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "trmtop/util.h"

/* Split "1.5 MiB" into a finite non-negative decimal number (digits
 * with at most one point: no sign, exponent, hex or "inf") and a unit
 * suffix. */
static int split_number(const char *s, double *num, const char **unit)
{
	char digits[64], *end;
	size_t len, ndig = 0, i;

	while (isspace((unsigned char)*s))
		s++;
	len = strspn(s, "0123456789.");
	if (len == 0 || len >= sizeof(digits))
		return -EINVAL;
	for (i = 0; i < len; i++)
		ndig += s[i] != '.';
	if (ndig == 0 || len - ndig > 1)
		return -EINVAL;
	memcpy(digits, s, len);
	digits[len] = '\0';
	errno = 0;
	*num = strtod(digits, &end);
	if (errno || *end || !isfinite(*num))
		return -EINVAL;
	end = (char *)s + len;
	while (isspace((unsigned char)*end))
		end++;
	*unit = end;
	return 0;
}

struct unit {
	const char *name;
	double mult;
};

/* s as a number and one of units[0..n) (its name matched regardless of
 * case), the product below max, rounded into *out.  0 or -EINVAL. */
static int parse_with_units(const char *s, const struct unit *units, size_t n,
			    double max, uint64_t *out)
{
	double num, v;
	const char *unit;
	size_t i;

	if (!s || split_number(s, &num, &unit) < 0)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (strcasecmp(unit, units[i].name) != 0)
			continue;
		v = num * units[i].mult;
		if (v >= max)
			return -EINVAL;
		*out = (uint64_t)llround(v);
		return 0;
	}
	return -EINVAL;
}

int util_parse_size(const char *s, uint64_t *out)
{
	/* "kb" is decimal, "KiB"/"k" binary: case matters only for b */
	static const struct unit units[] = {
		{ "", 1 },
		{ "b", 1 },
		{ "k", 1024.0 },
		{ "kib", 1024.0 },
		{ "kb", 1000.0 },
		{ "m", 1048576.0 },
		{ "mib", 1048576.0 },
		{ "mb", 1e6 },
		{ "g", 1073741824.0 },
		{ "gib", 1073741824.0 },
		{ "gb", 1e9 },
		{ "t", 1099511627776.0 },
		{ "tib", 1099511627776.0 },
		{ "tb", 1e12 },
	};

	/* below 2^63: no size is larger (SNAP_SIZE_MAX), and llround stays
	 * within its long long */
	return parse_with_units(s, units, sizeof(units) / sizeof(units[0]),
				9223372036854775808.0, out);
}

int util_parse_duration(const char *s, uint64_t *ms)
{
	static const struct unit units[] = {
		{ "", 1000.0 },     { "s", 1000.0 },     { "sec", 1000.0 },
		{ "ms", 1.0 },      { "m", 60000.0 },    { "min", 60000.0 },
		{ "h", 3600000.0 },
	};

	return parse_with_units(s, units, sizeof(units) / sizeof(units[0]),
				1e15, ms);
}

const char *util_format_size(int64_t size, int sign, char *buf, size_t len)
{
	return util_format_size_f((double)size, sign, buf, len);
}

const char *util_format_size_f(double v, int sign, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t i;

	/* tracemalloc._format_size */
	for (i = 0; i < 5; i++) {
		if (fabs(v) < 100 && i != 0) {
			snprintf(buf, len, sign ? "%+.1f %s" : "%.1f %s", v,
				 units[i]);
			return buf;
		}
		if (fabs(v) < 10 * 1024 || i == 4) {
			snprintf(buf, len, sign ? "%+.0f %s" : "%.0f %s", v,
				 units[i]);
			return buf;
		}
		v /= 1024;
	}
	return buf;
}

uint64_t util_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
