/* batch.c - the batch sinks of the live view (`--batch`, or standard
 * output not a terminal): after each refresh, the header and the first
 * LIVE_BATCH_ROWS rows as a text block, like `top -b`, or as one JSON
 * object on one line (docs/FORMATS.md, "Live view").  Nothing is read
 * from the terminal. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "live_int.h"
#include "trmtop/render.h"
#include "trmtop/util.h"

struct batch {
	FILE *f;
	int json;
	int utf8; /* the locale's: sampled titles marked with U+2248 or ~ */
};

/* s right-aligned in width columns (UTF-8: a column a character). */
static void put_right(FILE *f, const char *s, int width)
{
	int cols = 0;
	const char *p;

	for (p = s; *p; p++)
		cols += ((unsigned char)*p & 0xc0) != 0x80;
	fprintf(f, "%*s%s", width > cols ? width - cols : 0, "", s);
}

static void text_block(struct batch *b, struct live_state *st)
{
	static const char *const titles[] = { "SIZE", "DSIZE", "COUNT", "DCOUNT",
		"AVG", "GROWTH" };
	static const int widths[] = { 10, 11, 9, 9, 10, 14 };
	const struct live_row *const *rows;
	FILE *f = b->f;
	size_t n, i, k;
	char line[2048], title[32];
	int h;

	n = live_model_view(st->model, st->sort, st->suspects_only,
			    st->glob[0] ? st->glob : NULL, &rows);
	for (h = 0; h < LIVE_HEADER_LINES; h++) {
		live_header_line(st, h, line, sizeof(line));
		fprintf(f, "%s\n", line);
	}
	/* sampled: the estimated columns' titles say so */
	fprintf(f, "\n%5s %1s", "#", "!");
	for (k = 0; k < sizeof(titles) / sizeof(titles[0]); k++) {
		snprintf(title, sizeof(title), "%s%s", !st->sample_size ? ""
			 : b->utf8 ? "\u2248" : "~", titles[k]);
		fputc(' ', f);
		put_right(f, title, widths[k]);
	}
	fprintf(f, "  %s (by %s)\n", "LOCATION", snap_key_name(live_model_key(st->model)));
	for (i = 0; i < n && i < LIVE_BATCH_ROWS; i++) {
		struct live_cells c;

		live_row_cells(rows[i], &c);
		fprintf(f, "%5s %1s %10s %11s %9s %9s %10s %14s  %s%s%s\n", c.rank,
			rows[i]->suspect ? "!" : "", c.size, c.dsize, c.count, c.dcount,
			c.avg, c.rate, c.loc, c.source[0] ? "  " : "", c.source);
	}
	if (n > LIVE_BATCH_ROWS)
		fprintf(f, "%zu other\n", n - LIVE_BATCH_ROWS);
	fputc('\n', f);
}

static void json_u64(FILE *f, const char *name, uint64_t v)
{
	fprintf(f, "\"%s\": %" PRIu64 ", ", name, v);
}

static void json_i64(FILE *f, const char *name, int64_t v)
{
	fprintf(f, "\"%s\": %" PRId64 ", ", name, v);
}

static void json_str(FILE *f, const char *name, const char *s, size_t len)
{
	fprintf(f, "\"%s\": ", name);
	if (s)
		render_json_str(f, s, len);
	else
		fputs("null", f);
	fputs(", ", f);
}

static const char *verdict_name(enum live_native_verdict v)
{
	switch (v) {
	case LIVE_NATIVE_STEADY:
		return "steady";
	case LIVE_NATIVE_TRACED:
		return "traced";
	case LIVE_NATIVE_UNTRACED:
		return "untraced";
	default:
		return "unknown";
	}
}

static void json_row(FILE *f, const struct live_row *r)
{
	const struct snap_row *row = r->row;
	char rate[32];
	uint32_t i;

	fputc('{', f);
	json_u64(f, "rank", row->rank);
	json_str(f, "filename", row->loc ? row->loc->filename : "<unknown>",
		 row->loc ? row->loc->filename_len : 9);
	json_u64(f, "lineno", row->loc ? row->loc->lineno : 0);
	json_str(f, "source", row->source, row->source ? strlen(row->source) : 0);
	json_u64(f, "size", row->size);
	json_i64(f, "size_diff", r->size_diff);
	json_u64(f, "count", row->count);
	json_i64(f, "count_diff", r->count_diff);
	snprintf(rate, sizeof(rate), "%.1f", r->rate);
	fprintf(f, "\"average\": %.1f, \"rate_per_min\": %s, ", row->average, rate);
	fputs("\"trend\": [", f);
	for (i = 0; i < r->nhist; i++)
		fprintf(f, "%s%" PRIu64, i ? ", " : "", r->hist[i]);
	fputs("], \"frames\": [", f);
	for (i = 0; i < row->nframe; i++) {
		fputs(i ? ", {" : "{", f);
		json_str(f, "filename", row->frames[i].filename, row->frames[i].filename_len);
		fprintf(f, "\"lineno\": %" PRIu32 "}", row->frames[i].lineno);
	}
	fprintf(f, "], \"suspect\": %s}", r->suspect ? "true" : "false");
}

static void json_object(FILE *f, struct live_state *st)
{
	const struct live_sample *l = live_model_last(st->model);
	const struct snapshot *s = live_model_snapshot(st->model);
	const struct live_row *const *rows;
	struct live_native nat;
	char text[512];
	size_t n, i;

	n = live_model_view(st->model, st->sort, st->suspects_only,
			    st->glob[0] ? st->glob : NULL, &rows);
	live_model_native(st->model, &nat);
	fputc('{', f);
	json_u64(f, "refresh", live_model_nrefresh(st->model));
	json_u64(f, "since_baseline", live_model_since_baseline(st->model));
	fprintf(f, "\"time_ns\": %" PRId64 ", ", snapshot_cmeta(s)->time_ns);
	fprintf(f, "\"pid\": %d, ", (int)st->pid);
	json_str(f, "executable", st->exe, strlen(st->exe));
	json_str(f, "python_version", st->python_version, strlen(st->python_version));
	fprintf(f, "\"tracing\": \"%s\", ", live_tracing_name(st->tracing));
	json_u64(f, "traceback_limit", st->traceback_limit);
	if (st->sample_size)
		fprintf(f, "\"sampled\": {\"size\": %" PRIu64 "}, ", st->sample_size);
	else
		fputs("\"sampled\": null, ", f);
	json_u64(f, "traced", l->traced);
	json_u64(f, "peak", l->peak);
	json_u64(f, "rss", l->rss);
	json_u64(f, "tracemalloc_memory", l->tm_mem);
	json_u64(f, "blocks", l->blocks);
	json_u64(f, "interval_ms", st->interval_ms);
	json_u64(f, "effective_interval_ms", st->effective_ms);
	json_u64(f, "hold_ns", l->gil_ns);
	json_u64(f, "hold_max_ns", l->gil_max_ns);
	fprintf(f, "\"native\": {\"verdict\": \"%s\", ", verdict_name(nat.verdict));
	json_i64(f, "rss_diff", nat.rss_diff);
	json_i64(f, "traced_diff", nat.traced_diff);
	json_i64(f, "tracemalloc_diff", nat.tm_diff);
	json_i64(f, "untraced", nat.untraced);
	live_native_text(&nat, text, sizeof(text));
	fputs("\"text\": ", f);
	render_json_str(f, text, strlen(text));
	fputs("}, ", f);
	fprintf(f, "\"key\": \"%s\", ", snap_key_name(live_model_key(st->model)));
	json_u64(f, "nrows", n);
	fputs("\"rows\": [", f);
	for (i = 0; i < n && i < LIVE_BATCH_ROWS; i++) {
		if (i)
			fputs(", ", f);
		json_row(f, rows[i]);
	}
	fputs("]}\n", f);
}

static int batch_begin(void *arg, struct live_state *st)
{
	struct batch *b = arg;
	const char *cs;

	(void)st;
	setlocale(LC_CTYPE, "");
	cs = nl_langinfo(CODESET);
	b->utf8 = cs && strcmp(cs, "UTF-8") == 0;
	return 0;
}

static int batch_fd(void *arg)
{
	(void)arg;
	return -1;
}

static void batch_input(void *arg, struct live_state *st)
{
	(void)arg;
	(void)st;
}

static int batch_refresh(void *arg, struct live_state *st)
{
	struct batch *b = arg;

	if (b->json)
		json_object(b->f, st);
	else
		text_block(b, st);
	fflush(b->f);
	return ferror(b->f) ? -1 : 0;
}

static void batch_nothing(void *arg, struct live_state *st)
{
	(void)arg;
	(void)st;
}

static void batch_end(void *arg, struct live_state *st)
{
	(void)st;
	free(arg);
}

int live_sink_batch(struct live_sink *sink, FILE *f, int json)
{
	struct batch *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->f = f;
	b->json = json;
	sink->begin = batch_begin;
	sink->fd = batch_fd;
	sink->input = batch_input;
	sink->refresh = batch_refresh;
	sink->progress = batch_nothing;
	sink->draw = batch_nothing;
	sink->end = batch_end;
	sink->arg = b;
	return 0;
}
