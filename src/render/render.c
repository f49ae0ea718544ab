/* render.c - the sinks of snapshot results: text (tracemalloc's own
 * formats), JSON and collapsed stacks.  Every name and source line came
 * from a target: text goes through util's escaper, JSON through
 * render_json_str, collapsed stacks through the escaper's collapsed
 * form. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "trmtop/render.h"
#include "trmtop/util.h"

#define SZ 32

static const char *key_name(enum snap_key k)
{
	switch (k) {
	case SNAP_KEY_FILENAME:
		return "filename";
	case SNAP_KEY_TRACEBACK:
		return "traceback";
	default:
		return "lineno";
	}
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

/* The frame a "top" row names: for the traceback key, the most recent
 * call (the last of the oldest-first frames), as the pretty top shows. */
static const struct snap_loc *row_frame(const struct snap_loc *frames,
					uint32_t n, enum snap_key key)
{
	if (n == 0)
		return NULL;
	return key == SNAP_KEY_TRACEBACK ? &frames[n - 1] : &frames[0];
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

static const char *lookup_source(const struct render_opts *o,
				 const struct snap_loc *loc)
{
	const char *line;

	if (!o->source || !loc || loc->lineno == 0)
		return NULL;
	line = o->source(o->source_arg, loc->filename, loc->filename_len,
			 loc->lineno);
	return line && *line ? line : NULL;
}

void render_json_str(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	fputc('"', f);
	while (s && i < len) {
		uint32_t cp;
		size_t n = util_utf8_seq(p + i, len - i, &cp);

		if (n == 0) /* a byte of no valid sequence: Python's name for it */
			fprintf(f, "\\u%04x", 0xDC00u + p[i]);
		else if (cp == '"')
			fputs("\\\"", f);
		else if (cp == '\\')
			fputs("\\\\", f);
		else if (cp == '\n')
			fputs("\\n", f);
		else if (cp == '\t')
			fputs("\\t", f);
		else if (cp == '\r')
			fputs("\\r", f);
		else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
			fprintf(f, "\\u%04x", cp); /* C0, DEL, C1 */
		else
			fwrite(p + i, 1, n, f);
		i += n ? n : 1;
	}
	fputc('"', f);
}

static void print_stat_line(FILE *f, const struct snap_loc *frames, uint32_t n,
			    enum snap_key key, uint64_t size, uint64_t count)
{
	char b1[SZ], b2[SZ];

	print_frame(f, row_frame(frames, n, key));
	fprintf(f, ": size=%s, count=%" PRIu64,
		util_format_size((int64_t)size, 0, b1, sizeof(b1)), count);
	if (count)
		fprintf(f, ", average=%s",
			util_format_size_f((double)size / (double)count, 0, b2,
					   sizeof(b2)));
	fputc('\n', f);
}

/* The "other" row sums the rows not shown: at most the snapshot's total
 * (SNAP_SIZE_MAX) for non-cumulative keys; cumulative rows count a trace
 * once per frame, and their sum saturates at SNAP_SIZE_MAX (the rows
 * themselves are exact). */
static uint64_t other_add(uint64_t a, uint64_t b)
{
	return b > SNAP_SIZE_MAX - a ? SNAP_SIZE_MAX : a + b;
}

static size_t shown(size_t n, size_t limit)
{
	return limit && limit < n ? limit : n;
}

int render_top_text(FILE *f, const struct snap_stats *st,
		    const struct render_opts *o)
{
	size_t i, n = shown(st->n, o->limit);
	uint64_t osize = 0, ocount = 0;
	char b1[SZ];

	fprintf(f, "Top %zu %s%s\n", n,
		o->key == SNAP_KEY_TRACEBACK ? "tracebacks"
		: o->key == SNAP_KEY_FILENAME ? "files" : "lines",
		o->cumulative ? " (cumulative)" : "");
	for (i = 0; i < n; i++) {
		const struct snap_stat *s = &st->v[i];

		fprintf(f, "#%zu: ", i + 1);
		print_stat_line(f, s->frames, s->nframe, o->key, s->size, s->count);
		if (o->key == SNAP_KEY_TRACEBACK) {
			render_traceback_text(f, s->frames, s->nframe, o);
		} else {
			print_source(f, lookup_source(o, row_frame(s->frames, s->nframe,
								   o->key)));
		}
	}
	for (; i < st->n; i++) {
		osize = other_add(osize, st->v[i].size);
		ocount = other_add(ocount, st->v[i].count);
	}
	if (n < st->n)
		fprintf(f, "%zu other: size=%s, count=%" PRIu64 "\n", st->n - n,
			util_format_size((int64_t)osize, 0, b1, sizeof(b1)), ocount);
	fprintf(f, "Total: size=%s, count=%" PRIu64 "\n",
		util_format_size((int64_t)st->total_size, 0, b1, sizeof(b1)),
		st->total_count);
	return ferror(f) ? -EIO : 0;
}

static void json_frames(FILE *f, const struct snap_loc *frames, uint32_t n,
			const struct render_opts *o)
{
	uint32_t j;

	fputs("\"frames\": [", f);
	for (j = 0; j < n; j++) {
		const char *src = lookup_source(o, &frames[j]);

		fputs(j ? ", {\"filename\": " : "{\"filename\": ", f);
		render_json_str(f, frames[j].filename, frames[j].filename_len);
		fprintf(f, ", \"lineno\": %" PRIu32, frames[j].lineno);
		if (src) {
			fputs(", \"source\": ", f);
			render_json_str(f, src, strlen(src));
		}
		fputc('}', f);
	}
	fputc(']', f);
}

int render_top_json(FILE *f, const struct snap_stats *st,
		    const struct render_opts *o)
{
	size_t i, n = shown(st->n, o->limit);
	uint64_t osize = 0, ocount = 0;

	fprintf(f, "{\"key\": \"%s\", \"cumulative\": %s, \"total_size\": %" PRIu64
		", \"total_count\": %" PRIu64 ", \"stats\": [",
		key_name(o->key), o->cumulative ? "true" : "false", st->total_size,
		st->total_count);
	for (i = 0; i < n; i++) {
		const struct snap_stat *s = &st->v[i];

		fprintf(f, "%s\n  {\"rank\": %zu, \"size\": %" PRIu64 ", \"count\": %" PRIu64
			", \"average\": %.1f, ",
			i ? "," : "", i + 1, s->size, s->count,
			s->count ? (double)s->size / (double)s->count : 0.0);
		json_frames(f, s->frames, s->nframe, o);
		fputc('}', f);
	}
	for (; i < st->n; i++) {
		osize = other_add(osize, st->v[i].size);
		ocount = other_add(ocount, st->v[i].count);
	}
	fprintf(f, "%s], \"other\": {\"entries\": %zu, \"size\": %" PRIu64
		", \"count\": %" PRIu64 "}}\n",
		n ? "\n" : "", st->n - n, osize, ocount);
	return ferror(f) ? -EIO : 0;
}

static void print_diff_line(FILE *f, const struct snap_diff *d, enum snap_key key)
{
	char b1[SZ], b2[SZ], b3[SZ];

	print_frame(f, row_frame(d->frames, d->nframe, key));
	fprintf(f, ": size=%s (%s), count=%" PRIu64 " (%+" PRId64 ")",
		util_format_size((int64_t)d->size, 0, b1, sizeof(b1)),
		util_format_size(d->size_diff, 1, b2, sizeof(b2)), d->count,
		d->count_diff);
	if (d->count)
		fprintf(f, ", average=%s",
			util_format_size_f((double)d->size / (double)d->count, 0, b3,
					   sizeof(b3)));
	fputc('\n', f);
}

int render_diff_text(FILE *f, const struct snap_diffs *d,
		     const struct render_opts *o)
{
	size_t i, n = shown(d->n, o->limit);
	int64_t odiff = 0;
	char b1[SZ];

	fprintf(f, "Top %zu differences by %s%s\n", n, key_name(o->key),
		o->cumulative ? " (cumulative)" : "");
	for (i = 0; i < n; i++) {
		const struct snap_diff *e = &d->v[i];

		fprintf(f, "#%zu: ", i + 1);
		print_diff_line(f, e, o->key);
		if (o->key == SNAP_KEY_TRACEBACK) {
			render_traceback_text(f, e->frames, e->nframe, o);
		} else {
			print_source(f, lookup_source(o, row_frame(e->frames, e->nframe,
								   o->key)));
		}
	}
	for (; i < d->n; i++)
		odiff = util_sat_add_i64(odiff, d->v[i].size_diff);
	if (n < d->n)
		fprintf(f, "%zu other: %s\n", d->n - n,
			util_format_size(odiff, 1, b1, sizeof(b1)));
	fprintf(f, "Total growth: %s\n",
		util_format_size(d->total_size_diff, 1, b1, sizeof(b1)));
	return ferror(f) ? -EIO : 0;
}

int render_diff_json(FILE *f, const struct snap_diffs *d,
		     const struct render_opts *o)
{
	size_t i, n = shown(d->n, o->limit);
	int64_t odiff = 0;

	fprintf(f, "{\"key\": \"%s\", \"cumulative\": %s, \"total_size_diff\": %" PRId64
		", \"diffs\": [",
		key_name(o->key), o->cumulative ? "true" : "false", d->total_size_diff);
	for (i = 0; i < n; i++) {
		const struct snap_diff *e = &d->v[i];

		fprintf(f, "%s\n  {\"rank\": %zu, \"size\": %" PRIu64 ", \"size_diff\": %" PRId64
			", \"count\": %" PRIu64 ", \"count_diff\": %" PRId64 ", ",
			i ? "," : "", i + 1, e->size, e->size_diff, e->count,
			e->count_diff);
		json_frames(f, e->frames, e->nframe, o);
		fputc('}', f);
	}
	for (; i < d->n; i++)
		odiff = util_sat_add_i64(odiff, d->v[i].size_diff);
	fprintf(f, "%s], \"other\": {\"entries\": %zu, \"size_diff\": %" PRId64 "}}\n",
		n ? "\n" : "", d->n - n, odiff);
	return ferror(f) ? -EIO : 0;
}

int render_traceback_text(FILE *f, const struct snap_loc *frames,
			  uint32_t nframe, const struct render_opts *o)
{
	uint32_t i;

	for (i = 0; i < nframe; i++) {
		fputs("  File \"", f);
		util_fputs_escaped(f, frames[i].filename, frames[i].filename_len, 0);
		fprintf(f, "\", line %" PRIu32 "\n", frames[i].lineno);
		print_source(f, lookup_source(o, &frames[i]));
	}
	return ferror(f) ? -EIO : 0;
}

/* ---- collapsed stacks ------------------------------------------------ */

struct tb_size {
	uint32_t tb;
	uint64_t size;
};

int render_collapsed(FILE *f, const struct snapshot *s)
{
	const struct snap_trace *tr = snapshot_traces(s);
	size_t n = snapshot_ntraces(s), i;
	uint64_t *sizes = NULL;
	uint32_t maxtb = 0;
	int rc = 0;

	/* sum per traceback id (tracebacks are interned: same stack, same id) */
	for (i = 0; i < n; i++)
		if (tr[i].traceback + 1 > maxtb)
			maxtb = tr[i].traceback + 1;
	if (maxtb) {
		sizes = calloc(maxtb, sizeof(*sizes));
		if (!sizes)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		sizes[tr[i].traceback] += tr[i].size;
	for (i = 0; i < maxtb; i++) {
		const uint32_t *frames;
		uint32_t nf, total, j;

		if (!sizes[i])
			continue;
		frames = snapshot_traceback(s, (uint32_t)i, &nf, &total);
		if (nf == 0)
			fputs("<unknown>", f);
		/* oldest first: the stored order is most recent first */
		for (j = nf; j > 0; j--) {
			uint32_t fid, line;
			const char *name;
			size_t len;

			snapshot_frame(s, frames[j - 1], &fid, &line);
			name = snapshot_str(s, fid, &len);
			if (j != nf)
				fputc(';', f);
			if (name)
				util_fputs_escaped(f, name, len, UTIL_ESC_COLLAPSED);
			else
				fputc('?', f);
			fprintf(f, ":%" PRIu32, line);
		}
		fprintf(f, " %" PRIu64 "\n", sizes[i]);
	}
	free(sizes);
	if (ferror(f))
		rc = -EIO;
	return rc;
}
