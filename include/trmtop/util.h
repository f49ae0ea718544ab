/* util.h - small helpers shared by the CLI-side modules: sizes, durations,
 * monotonic time. */
#ifndef TRMTOP_UTIL_H
#define TRMTOP_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parse a size: "5MiB", "512k", "1.5 MB", "100" (bytes).  Binary units
 * (k, KiB, M, MiB, G, GiB: powers of 1024) and decimal ones (kB, MB, GB).
 * 0 or -EINVAL. */
int util_parse_size(const char *s, uint64_t *out);

/* Parse a duration: "30s", "1.5s", "250ms", "2m", "1h", "10" (seconds).
 * Result in milliseconds.  0 or -EINVAL. */
int util_parse_duration(const char *s, uint64_t *ms);

/* Format a size as tracemalloc does (B, KiB, MiB, GiB; "%.1f" below 10,
 * integer otherwise), into buf; returns buf. */
const char *util_format_size(int64_t size, int sign, char *buf, size_t len);

/* The same for a fractional size (tracemalloc's average column). */
const char *util_format_size_f(double size, int sign, char *buf, size_t len);

/* Monotonic clock in nanoseconds. */
uint64_t util_now_ns(void);

#endif
