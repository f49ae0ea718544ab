/* render.c - the sinks of a report's rows (render.h): text
 * (tracemalloc's own formats), JSON and collapsed stacks.  They lay out
 * what snapshot's row model computed and compute nothing.  Every name and
 * source line came from a target: text goes through util's escaper, JSON
 * through render_json_str, collapsed stacks through the escaper's
 * collapsed form. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "trmtop/render.h"
#include "trmtop/util.h"

#define SZ 32

/* What text puts before an estimate: "" for an exact report; "≈", or
 * "~" where the terminal's charset is not UTF-8 (struct render_opts). */
static const char *approx(const struct snap_report *r,
			  const struct render_opts *o)
{
	if (!r->sample_size)
		return "";
	return o && o->ascii ? "~" : "\xe2\x89\x88";
}

const char *render_sample_note(uint64_t sample_size, enum snap_what what,
			       char *buf, size_t cap)
{
	char b[SZ];

	snprintf(buf, cap, "Sampled every %s: sizes and counts are estimates "
		 "of the memory %s",
		 util_format_size((int64_t)sample_size, 0, b, sizeof(b)),
		 what == SNAP_WHAT_ALLOC ? "allocated since sampling started"
					 : "in use");
	return buf;
}

/* The sampled report's first line, if sampled. */
static void print_sample_note(FILE *f, const struct snap_report *r)
{
	char note[128];

	if (!r->sample_size)
		return;
	fputs(render_sample_note(r->sample_size, r->what, note, sizeof(note)), f);
	fputc('\n', f);
}

/* "file:line", the name escaped (tracemalloc's Frame.__str__ prints the
 * lineno even when it is 0); "<unknown>:0" for no frame. */
static void print_frame(FILE *f, const struct snap_loc *loc)
{
	if (!loc) {
		fputs("<unknown>:0", f);
		return;
	}
	util_fputs_escaped(f, loc->filename, loc->filename_len, 0);
	fprintf(f, ":%" PRIu32, loc->lineno);
}

/* "    <line>" (escaped: the file's owner chose its bytes), if any. */
static void print_source(FILE *f, const char *src)
{
	if (!src)
		return;
	fputs("    ", f);
	util_fprint_escaped(f, src);
	fputc('\n', f);
}

void render_json_str(FILE *f, const char *s, size_t len)
{
	(void)util_fputs_json(f, s, len); /* a write error shows at ferror */
}

/* "<loc>: size=..., count=..., average=..." (a: before each estimate) */
static void print_stat_line(FILE *f, const struct snap_row *row, const char *a)
{
	char b1[SZ], b2[SZ];

	print_frame(f, row->loc);
	fprintf(f, ": size=%s%s, count=%s%" PRIu64, a,
		util_format_size((int64_t)row->size, 0, b1, sizeof(b1)), a,
		row->count);
	if (row->count)
		fprintf(f, ", average=%s%s", a,
			util_format_size_f(row->average, 0, b2, sizeof(b2)));
	fputc('\n', f);
}

/* "<loc>: size=... (+...), count=... (+...), average=..." */
static void print_diff_line(FILE *f, const struct snap_row *row, const char *a)
{
	char b1[SZ], b2[SZ], b3[SZ];

	print_frame(f, row->loc);
	fprintf(f, ": size=%s%s (%s%s), count=%s%" PRIu64 " (%s%+" PRId64 ")", a,
		util_format_size((int64_t)row->size, 0, b1, sizeof(b1)), a,
		util_format_size(row->size_diff, 1, b2, sizeof(b2)), a, row->count,
		a, row->count_diff);
	if (row->count)
		fprintf(f, ", average=%s%s", a,
			util_format_size_f(row->average, 0, b3, sizeof(b3)));
	fputc('\n', f);
}

static const char *source_of(const struct snap_row *row, uint32_t i)
{
	return row->sources ? row->sources[i] : NULL;
}

/* Traceback.format() of a row: oldest call first. */
static void print_traceback(FILE *f, const struct snap_row *row)
{
	uint32_t i;

	for (i = 0; i < row->nframe; i++) {
		fputs("  File \"", f);
		util_fputs_escaped(f, row->frames[i].filename,
				   row->frames[i].filename_len, 0);
		fprintf(f, "\", line %" PRIu32 "\n", row->frames[i].lineno);
		print_source(f, source_of(row, i));
	}
}

/* What follows a row's line: its traceback, or its source line. */
static void print_row_detail(FILE *f, const struct snap_report *r,
			     const struct snap_row *row)
{
	if (r->key == SNAP_KEY_TRACEBACK)
		print_traceback(f, row);
	else
		print_source(f, row->source);
}

static void text_top(FILE *f, const struct snap_report *r, const char *a)
{
	char b1[SZ];
	size_t i;

	print_sample_note(f, r);
	fprintf(f, "Top %zu %s%s\n", r->nshown,
		r->key == SNAP_KEY_TRACEBACK ? "tracebacks"
		: r->key == SNAP_KEY_FILENAME ? "files" : "lines",
		r->cumulative ? " (cumulative)" : "");
	for (i = 0; i < r->nshown; i++) {
		fprintf(f, "#%zu: ", r->rows[i].rank);
		print_stat_line(f, &r->rows[i], a);
		print_row_detail(f, r, &r->rows[i]);
	}
	if (r->nother)
		fprintf(f, "%zu other: size=%s%s, count=%s%" PRIu64 "\n", r->nother, a,
			util_format_size((int64_t)r->other_size, 0, b1, sizeof(b1)),
			a, r->other_count);
	fprintf(f, "Total: size=%s%s, count=%s%" PRIu64 "\n", a,
		util_format_size((int64_t)r->total_size, 0, b1, sizeof(b1)), a,
		r->total_count);
}

static void text_diff(FILE *f, const struct snap_report *r, const char *a)
{
	char b1[SZ];
	size_t i;

	print_sample_note(f, r);
	fprintf(f, "Top %zu differences by %s%s\n", r->nshown, snap_key_name(r->key),
		r->cumulative ? " (cumulative)" : "");
	for (i = 0; i < r->nshown; i++) {
		fprintf(f, "#%zu: ", r->rows[i].rank);
		print_diff_line(f, &r->rows[i], a);
		print_row_detail(f, r, &r->rows[i]);
	}
	if (r->nother)
		fprintf(f, "%zu other: %s%s\n", r->nother, a,
			util_format_size(r->other_size_diff, 1, b1, sizeof(b1)));
	fprintf(f, "Total growth: %s%s\n", a,
		util_format_size(r->total_size_diff, 1, b1, sizeof(b1)));
}

/* "N memory blocks: SIZE (average SIZE)" and the traceback. */
static void text_traceback(FILE *f, const struct snap_report *r, const char *a)
{
	char b1[SZ], b2[SZ];
	size_t i;

	print_sample_note(f, r);
	for (i = 0; i < r->nshown; i++) {
		const struct snap_row *row = &r->rows[i];

		fprintf(f, "%s%" PRIu64 " memory block%s: %s%s (average %s%s)\n", a,
			row->count, row->count == 1 ? "" : "s", a,
			util_format_size((int64_t)row->size, 0, b1, sizeof(b1)), a,
			util_format_size_f(row->average, 0, b2, sizeof(b2)));
		print_traceback(f, row);
	}
}

int render_text_with(FILE *f, const struct snap_report *r,
		     const struct render_opts *o)
{
	const char *a = approx(r, o);

	switch (r->kind) {
	case SNAP_REPORT_TOP:
		text_top(f, r, a);
		break;
	case SNAP_REPORT_DIFF:
		text_diff(f, r, a);
		break;
	case SNAP_REPORT_TRACEBACK:
		text_traceback(f, r, a);
		break;
	default:
		return -EINVAL;
	}
	return ferror(f) ? -EIO : 0;
}

int render_text(FILE *f, const struct snap_report *r)
{
	return render_text_with(f, r, NULL);
}

static void json_frames(FILE *f, const struct snap_row *row)
{
	uint32_t j;

	fputs("\"frames\": [", f);
	for (j = 0; j < row->nframe; j++) {
		const char *src = source_of(row, j);

		fputs(j ? ", {\"filename\": " : "{\"filename\": ", f);
		render_json_str(f, row->frames[j].filename, row->frames[j].filename_len);
		fprintf(f, ", \"lineno\": %" PRIu32, row->frames[j].lineno);
		if (src) {
			fputs(", \"source\": ", f);
			render_json_str(f, src, strlen(src));
		}
		fputc('}', f);
	}
	fputc(']', f);
}

/* ", \"sampled\": {...}" for a sampled report (FORMATS.md); nothing for
 * an exact one. */
static void json_sampled(FILE *f, const struct snap_report *r)
{
	if (r->sample_size)
		fprintf(f, ", \"sampled\": {\"size\": %" PRIu64 ", \"what\": \"%s\"}",
			r->sample_size, snap_what_name(r->what));
}

static void json_top(FILE *f, const struct snap_report *r)
{
	size_t i;

	fprintf(f, "{\"key\": \"%s\", \"cumulative\": %s", snap_key_name(r->key),
		r->cumulative ? "true" : "false");
	json_sampled(f, r);
	fprintf(f, ", \"total_size\": %" PRIu64 ", \"total_count\": %" PRIu64
		", \"stats\": [", r->total_size, r->total_count);
	for (i = 0; i < r->nshown; i++) {
		const struct snap_row *row = &r->rows[i];

		fprintf(f, "%s\n  {\"rank\": %zu, \"size\": %" PRIu64 ", \"count\": %" PRIu64
			", \"average\": %.1f, ",
			i ? "," : "", row->rank, row->size, row->count, row->average);
		json_frames(f, row);
		fputc('}', f);
	}
	fprintf(f, "%s], \"other\": {\"entries\": %zu, \"size\": %" PRIu64
		", \"count\": %" PRIu64 "}}\n",
		r->nshown ? "\n" : "", r->nother, r->other_size, r->other_count);
}

static void json_diff(FILE *f, const struct snap_report *r)
{
	size_t i;

	fprintf(f, "{\"key\": \"%s\", \"cumulative\": %s", snap_key_name(r->key),
		r->cumulative ? "true" : "false");
	json_sampled(f, r);
	fprintf(f, ", \"total_size_diff\": %" PRId64 ", \"diffs\": [",
		r->total_size_diff);
	for (i = 0; i < r->nshown; i++) {
		const struct snap_row *row = &r->rows[i];

		fprintf(f, "%s\n  {\"rank\": %zu, \"size\": %" PRIu64 ", \"size_diff\": %" PRId64
			", \"count\": %" PRIu64 ", \"count_diff\": %" PRId64 ", ",
			i ? "," : "", row->rank, row->size, row->size_diff, row->count,
			row->count_diff);
		json_frames(f, row);
		fputc('}', f);
	}
	fprintf(f, "%s], \"other\": {\"entries\": %zu, \"size_diff\": %" PRId64 "}}\n",
		r->nshown ? "\n" : "", r->nother, r->other_size_diff);
}

int render_json(FILE *f, const struct snap_report *r)
{
	switch (r->kind) {
	case SNAP_REPORT_TOP:
	case SNAP_REPORT_TRACEBACK:
		json_top(f, r);
		break;
	case SNAP_REPORT_DIFF:
		json_diff(f, r);
		break;
	default:
		return -EINVAL;
	}
	return ferror(f) ? -EIO : 0;
}

int render_collapsed(FILE *f, const struct snap_report *r)
{
	size_t i;
	uint32_t j;

	for (i = 0; i < r->nshown; i++) {
		const struct snap_row *row = &r->rows[i];

		if (row->nframe == 0)
			fputs("<unknown>", f);
		for (j = 0; j < row->nframe; j++) {
			const struct snap_loc *l = &row->frames[j];

			if (j)
				fputc(';', f);
			if (l->filename)
				util_fputs_escaped(f, l->filename, l->filename_len,
						   UTIL_ESC_COLLAPSED);
			else
				fputc('?', f);
			fprintf(f, ":%" PRIu32, l->lineno);
		}
		fprintf(f, " %" PRIu64 "\n", row->size);
	}
	return ferror(f) ? -EIO : 0;
}

int render_report(FILE *f, enum render_format fmt, const struct snap_report *r)
{
	return render_report_with(f, fmt, r, NULL);
}

int render_report_with(FILE *f, enum render_format fmt,
		       const struct snap_report *r, const struct render_opts *o)
{
	switch (fmt) {
	case RENDER_TEXT:
		return render_text_with(f, r, o);
	case RENDER_JSON:
		return render_json(f, r);
	case RENDER_COLLAPSED:
		return render_collapsed(f, r);
	}
	return -EINVAL;
}

const char *render_row_loc(const struct snap_row *row, char *buf, size_t cap)
{
	const struct snap_loc *l = row->loc;
	size_t want, n;

	if (!l || cap < 32)
		return "<unknown>:0";
	/* room for "...:" and the line number */
	want = util_escape(buf, cap - 16, l->filename, l->filename_len, 0);
	n = strlen(buf);
	snprintf(buf + n, cap - n, "%s:%" PRIu32, want > n ? "..." : "",
		 l->lineno);
	return buf;
}
