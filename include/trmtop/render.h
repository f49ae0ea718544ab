/* render.h - the sinks of a report's rows: text, JSON and collapsed
 * stacks.
 *
 * Computes nothing itself: snapshot computes the rows (snapshot.h,
 * "report rows": sizes, counts, differences, averages, the frame each row
 * names, its source lines, the "other" and total lines), and a sink only
 * lays them out, in tracemalloc's own formats for text (str(Statistic),
 * str(StatisticDiff), Traceback.format()) so users recognise them, and as
 * docs/FORMATS.md documents for JSON and collapsed stacks.  A terminal
 * view draws the same rows, with render_row_loc for the cell that names
 * a row.
 *
 * Names and source lines come from the target: the text sinks print them
 * through util_fputs_escaped (util.h, "Escaping": no control character,
 * C1 control or invalid UTF-8 byte reaches the terminal), JSON through
 * render_json_str, collapsed stacks through the escaper's collapsed form
 * (docs/FORMATS.md). */
#ifndef TRMTOP_RENDER_H
#define TRMTOP_RENDER_H

#include <stddef.h>
#include <stdio.h>

#include "trmtop/snapshot.h"

enum render_format { RENDER_TEXT, RENDER_JSON, RENDER_COLLAPSED };

/* Text:
 *   top (SNAP_REPORT_TOP), like the tracemalloc documentation's pretty top:
 *     Top N lines
 *     #1: app.py:12: size=1536 KiB, count=3, average=512 KiB
 *         source line
 *     N other: size=..., count=...
 *     Total: size=..., count=...
 *   (for the traceback key, each row's traceback instead of its line);
 *   diff (SNAP_REPORT_DIFF): the same with str(StatisticDiff) lines,
 *     "N other: +SIZE" and "Total growth: SIZE";
 *   traceback (SNAP_REPORT_TRACEBACK): "N memory blocks: SIZE (average
 *     SIZE)", then Traceback.format(): oldest call first, '  File "f",
 *     line n' and the source line indented by four.
 * Sampled reports (snap_report.sample_size): every text report starts
 *   with render_sample_note's line, and each estimated size, count,
 *   average and difference is marked "\xe2\x89\x88" (U+2248; "~" with
 *   render_opts.ascii): "size=\xe2\x89\x88512 KiB, count=\xe2\x89\x881".
 * JSON: top and traceback reports as {"key", "cumulative", "total_size",
 *   "total_count", "stats": [...], "other"}, diffs as {"key",
 *   "cumulative", "total_size_diff", "diffs": [...], "other"}, each row
 *   with its frames (and their source lines); a sampled report has
 *   "sampled": {"size": N, "what": "inuse"|"alloc"} after "cumulative"
 *   (absent when exact).
 * Collapsed stacks, for flame graph tools: one line per row, "file:line;
 *   file:line size" (oldest frame first); file names escaped with
 *   UTIL_ESC_COLLAPSED, so that ';', ' ' and newlines in a name cannot
 *   forge frames, sizes or lines (meant for SNAP_REPORT_STACKS).
 * 0, -EIO when f has an error, -EINVAL for a format the report has no
 * form in (text or JSON of stacks). */
int render_report(FILE *f, enum render_format fmt, const struct snap_report *r);
int render_text(FILE *f, const struct snap_report *r);

/* How the text sink writes what is not the report's (NULL: defaults). */
struct render_opts {
	int ascii; /* the terminal's charset is not UTF-8: "~" marks an
		      estimate, not "\xe2\x89\x88" (U+2248) */
};
int render_report_with(FILE *f, enum render_format fmt,
		       const struct snap_report *r, const struct render_opts *o);
int render_text_with(FILE *f, const struct snap_report *r,
		     const struct render_opts *o);

/* The line a text report of a sampled snapshot starts with, into buf
 * (returned): "Sampled every 512 KiB: sizes and counts are estimates of
 * the memory in use" (or "... allocated since sampling started"). */
const char *render_sample_note(uint64_t sample_size, enum snap_what what,
			       char *buf, size_t cap);
int render_json(FILE *f, const struct snap_report *r);
int render_collapsed(FILE *f, const struct snap_report *r);

/* "file:line" of the frame row names, escaped (util_escape) into buf, cut
 * with "..." before the ":line" when long, or "<unknown>:0" for a row with
 * no frame.  Returns buf (or that constant).  cap >= 32. */
const char *render_row_loc(const struct snap_row *row, char *buf, size_t cap);

/* A JSON string literal of s[0..len), which may hold NULs and invalid
 * UTF-8: '"', '\\', and every C0, DEL and C1 control escaped (\n, \t,
 * \r, else \u00XX); each byte of an invalid UTF-8 sequence as \udcXX
 * (the lone surrogate Python's surrogateescape gives it, so that
 * json.loads returns Python's own str); valid UTF-8 as it is.  The same
 * bytes always give the same text. */
void render_json_str(FILE *f, const char *s, size_t len);

#endif
