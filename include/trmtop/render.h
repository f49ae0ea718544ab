/* render.h - text, JSON and collapsed-stack output of snapshot results.
 *
 * Computes nothing itself: it prints what the snapshot module computed, in
 * tracemalloc's own formats (str(Statistic), str(StatisticDiff),
 * Traceback.format()) so users recognise them.
 *
 * Names and source lines come from the target: the text sinks print them
 * through util_fputs_escaped (util.h, "Escaping": no control character,
 * C1 control or invalid UTF-8 byte reaches the terminal), JSON through
 * render_json_str, collapsed stacks through the escaper's collapsed form
 * (docs/FORMATS.md). */
#ifndef TRMTOP_RENDER_H
#define TRMTOP_RENDER_H

#include <stdio.h>

#include "trmtop/snapshot.h"

/* Source line lookup: the stripped text of filename:lineno, or NULL
 * (filename: filename_len bytes, which may hold NULs). */
typedef const char *(*render_source_fn)(void *arg, const char *filename,
					size_t filename_len, uint32_t lineno);

struct render_opts {
	enum snap_key key;
	int cumulative;
	size_t limit;            /* rows shown; 0 = all */
	render_source_fn source; /* may be NULL */
	void *source_arg;
};

/* "Top N lines" like the tracemalloc documentation's pretty top:
 *   #1: app.py:12: size=1536 KiB, count=3, average=512 KiB
 *       source line
 *   N other: size=..., count=...
 *   Total: size=..., count=... */
int render_top_text(FILE *f, const struct snap_stats *st,
		    const struct render_opts *o);
int render_top_json(FILE *f, const struct snap_stats *st,
		    const struct render_opts *o);

/* The same for compare_to results (str(StatisticDiff) lines). */
int render_diff_text(FILE *f, const struct snap_diffs *d,
		     const struct render_opts *o);
int render_diff_json(FILE *f, const struct snap_diffs *d,
		     const struct render_opts *o);

/* Traceback.format(): oldest call first, '  File "f", line n' and the
 * source line indented by four. frames as in struct snap_stat. */
int render_traceback_text(FILE *f, const struct snap_loc *frames,
			  uint32_t nframe, const struct render_opts *o);

/* Collapsed stacks for flame graph tools: one line per distinct stack,
 * "file:line;file:line size" (oldest frame first), sizes summed; file
 * names escaped with UTIL_ESC_COLLAPSED, so that ';', ' ' and newlines in
 * a name cannot forge frames, sizes or lines. */
int render_collapsed(FILE *f, const struct snapshot *s);

/* A JSON string literal of s[0..len), which may hold NULs and invalid
 * UTF-8: '"', '\\', and every C0, DEL and C1 control escaped (\n, \t,
 * \r, else \u00XX); each byte of an invalid UTF-8 sequence as \udcXX
 * (the lone surrogate Python's surrogateescape gives it, so that
 * json.loads returns Python's own str); valid UTF-8 as it is.  The same
 * bytes always give the same text. */
void render_json_str(FILE *f, const char *s, size_t len);

#endif
