/* util.h - small helpers shared by the other modules: sizes, durations,
 * monotonic time, saturating arithmetic, growable arrays, hashing, and the
 * escaping of text that came from a target before it reaches a terminal
 * or a JSON document.  Growable arrays and hashing (grow.c, hash.c) are
 * libc only: the agent compiles them into itself. */
#ifndef TRMTOP_UTIL_H
#define TRMTOP_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Parse a size: "5MiB", "512k", "1.5 MB", "100" (bytes).  Binary units
 * (k, KiB, M, MiB, G, GiB: powers of 1024) and decimal ones (kB, MB, GB).
 * 0 or -EINVAL (also for 2^63 bytes or more). */
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

/* ---- saturating arithmetic ------------------------------------------- */

/* a + b, or UINT64_MAX when it would not fit. */
static inline uint64_t util_sat_add_u64(uint64_t a, uint64_t b)
{
	uint64_t r;

	return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* a + b, clamped to [INT64_MIN, INT64_MAX]. */
static inline int64_t util_sat_add_i64(int64_t a, int64_t b)
{
	int64_t r;

	if (!__builtin_add_overflow(a, b, &r))
		return r;
	return b > 0 ? INT64_MAX : INT64_MIN;
}

/* ---- growable arrays ------------------------------------------------
 *
 * An array that grows by appending keeps its elements in *arr and its
 * capacity, in elements, in *cap (0 with *arr NULL to start; free(*arr)
 * when done).  Before appending, ask for room for `need` elements: */

/* Make *arr (elements of elem bytes, room for *cap of them) hold at least
 * need.  Nothing changes when need <= *cap; otherwise the capacity, `first`
 * for an empty array, doubles until it reaches need, never beyond max
 * elements, and *arr is realloc'ed to it.  0, or -ENOMEM (need above max,
 * a size in bytes beyond SIZE_MAX, or realloc failed: *arr and *cap are
 * then unchanged, and *arr still valid). */
int util_grow_max(void **arr, size_t *cap, size_t need, size_t elem,
		  size_t first, size_t max);

/* The same with no limit but the size of memory. */
static inline int util_grow(void **arr, size_t *cap, size_t need,
			    size_t elem, size_t first)
{
	return util_grow_max(arr, cap, need, elem, first, SIZE_MAX);
}

/* util_grow for a typed array (T *arr; size_t cap, both lvalues, arr
 * evaluated twice): no cast at the call, and the new pointer is stored
 * through its own type.  0 or -ENOMEM, as util_grow. */
#define UTIL_GROW(arr, cap, need, first)                                 \
	__extension__({                                                  \
		void *p_ = (arr);                                        \
		int rc_ = util_grow(&p_, &(cap), (need), sizeof(*(arr)), \
				    (first));                            \
		(arr) = p_;                                              \
		rc_;                                                     \
	})

/* ---- hashing ---------------------------------------------------------
 *
 * For open-addressing tables in memory (interning): fast, well spread in
 * the low bits, not cryptographic, and not stable across versions (never
 * store or send a hash). */

/* MurmurHash3's 64-bit finaliser: every input bit changes each output bit
 * with probability about 1/2.  A bijection; util_mix64(0) == 0. */
static inline uint64_t util_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* The hash of p[0..len) (any alignment; p may be NULL when len is 0). */
uint32_t util_hash_bytes(const void *p, size_t len);

/* ---- escaping --------------------------------------------------------
 *
 * Everything a target hands us (file names, source lines, its messages) is
 * hostile: a name like "\x1b]0;...\x07" would set a terminal's title.
 * Every text sink prints such text through this escaper, which keeps
 * valid printable UTF-8 as it is and replaces
 *
 *   a C0 control (0x00-0x1f) or DEL (0x7f)    by \xHH      (ESC: \x1b)
 *   a C1 control (U+0080-U+009F, 2 bytes)     by \u00HH    (U+009B: \u009b)
 *   a bidirectional formatting character      by \uHHHH    (U+202E: \u202e)
 *     (LRM, RLM, ALM, U+202A-U+202E, U+2066-U+2069: they reorder what a
 *     terminal shows around them, so a name could read backwards)
 *   each byte of an invalid UTF-8 sequence    by \xHH      (0xff: \xff)
 *     (overlong forms, surrogates, above U+10FFFF, truncated sequences:
 *     as CPython's strict decoder; the bytes are those Python shows as
 *     U+DC80-U+DCFF with surrogateescape)
 *
 * HH is lower-case hex.  A backslash is kept, so the text form is for
 * people, not reversible.  UTIL_ESC_COLLAPSED also escapes ';', ' ' and
 * '\\' (\x3b, \x20, \x5c): a name in collapsed stacks can then neither
 * forge a frame, a size nor a line, and the escaping is reversible. */
#define UTIL_ESC_COLLAPSED 1u

/* Length (1-4) of the valid UTF-8 sequence at s[0..len), with its code
 * point in *cp; 0 when s[0] starts none (strict, as above). */
size_t util_utf8_seq(const void *s, size_t len, uint32_t *cp);

/* Escape s[0..len) into out (cap bytes, always NUL-terminated when cap >
 * 0; cut only between two escapes or UTF-8 sequences).  Returns the length
 * of the whole escaped text (without its NUL), as snprintf does: the text
 * was cut when the result is >= cap. */
size_t util_escape(char *out, size_t cap, const void *s, size_t len,
		   unsigned flags);

/* Write the escaped s[0..len) to f.  0, or -1 on a write error. */
int util_fputs_escaped(FILE *f, const void *s, size_t len, unsigned flags);
/* The same for a NUL-terminated s (NULL prints nothing). */
int util_fprint_escaped(FILE *f, const char *s);

/* Write s[0..len), which may hold NULs and invalid UTF-8, to f as a JSON
 * string literal (quotes included): '"', '\\', and every C0, DEL and C1
 * control escaped (\n, \t, \r, else \u00XX); each byte of an invalid
 * UTF-8 sequence as \udcXX (the lone surrogate Python's surrogateescape
 * gives it, so that json.loads returns Python's own str); valid UTF-8 as
 * it is.  Always valid JSON; the same bytes always give the same text, and
 * the bytes can be had back from it.  0, or -1 on a write error. */
int util_fputs_json(FILE *f, const void *s, size_t len);

#endif
