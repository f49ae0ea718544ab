/* fixture.h - builds the small snapshots the snapshot unit tests share.
 * Included by one test file each (all functions static). */
#ifndef TRMTOP_TEST_SNAPSHOT_FIXTURE_H
#define TRMTOP_TEST_SNAPSHOT_FIXTURE_H

#include <string.h>

#include "trmtop/snapshot.h"

/* Intern "file:line" frames, most recent first, and return the traceback. */
static inline uint32_t fx_tb(struct snapshot *s, const char *const *files,
			     const uint32_t *lines, uint32_t n, uint32_t total)
{
	uint32_t fr[16], i;

	for (i = 0; i < n && i < 16; i++) {
		uint32_t sid = snapshot_intern_str(s, files[i], strlen(files[i]));

		fr[i] = snapshot_intern_frame(s, sid, lines[i]);
	}
	return snapshot_intern_traceback(s, fr, n, total);
}

#define FX_TB(s, total, ...)                                               \
	fx_tb_pairs((s), (total),                                          \
		    (const struct fx_frame[]){ __VA_ARGS__ },                  \
		    sizeof((const struct fx_frame[]){ __VA_ARGS__ }) /         \
			    sizeof(struct fx_frame))

struct fx_frame {
	const char *file;
	uint32_t line;
};

static inline uint32_t fx_tb_pairs(struct snapshot *s, uint32_t total,
				   const struct fx_frame *f, size_t n)
{
	const char *files[16];
	uint32_t lines[16];
	size_t i;

	for (i = 0; i < n && i < 16; i++) {
		files[i] = f[i].file;
		lines[i] = f[i].line;
	}
	return fx_tb(s, files, lines, (uint32_t)n, total);
}

/* The reference snapshot of the hand-computed tables:
 *   T1 = [a.py:1, b.py:1]        (most recent first)
 *   T2 = [a.py:2, b.py:1]
 *   T3 = [b.py:1]
 *   T4 = [a.py:1, a.py:1, c.py:5] (recursion)
 * traces, in order:
 *   t1 T1 100   t2 T1 50   t3 T2 30   t4 T3 200   t5 T4 10   t6 T4 10 (domain 1)
 */
static inline struct snapshot *fx_reference(uint32_t hexversion)
{
	struct snapshot *s = snapshot_new();
	uint32_t t1, t2, t3, t4;

	if (!s)
		return NULL;
	snapshot_meta(s)->py_hexversion = hexversion;
	snapshot_meta(s)->traceback_limit = 10;
	t1 = FX_TB(s, 2, { "a.py", 1 }, { "b.py", 1 });
	t2 = FX_TB(s, 2, { "a.py", 2 }, { "b.py", 1 });
	t3 = FX_TB(s, 1, { "b.py", 1 });
	t4 = FX_TB(s, 7, { "a.py", 1 }, { "a.py", 1 }, { "c.py", 5 });
	if (snapshot_add_trace(s, 0, 100, t1) || snapshot_add_trace(s, 0, 50, t1) ||
	    snapshot_add_trace(s, 0, 30, t2) || snapshot_add_trace(s, 0, 200, t3) ||
	    snapshot_add_trace(s, 0, 10, t4) || snapshot_add_trace(s, 1, 10, t4)) {
		snapshot_free(s);
		return NULL;
	}
	return s;
}

#endif
