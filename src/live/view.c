/* view.c - what the batch text sink and the terminal view both show,
 * laid out as text: the header lines (target, memory, refresh, native
 * memory) and the cells of a row (sizes, differences, rate, location,
 * source line).  Names and source lines are escaped (util_escape). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "live_int.h"
#include "trmtop/render.h"
#include "trmtop/util.h"

const char *live_tracing_name(enum live_tracing t)
{
	switch (t) {
	case LIVE_TRACING_APP:
		return "application";
	case LIVE_TRACING_TRMTOP:
		return "trmtop";
	default:
		return "view";
	}
}

static const char *clock_of(int64_t wall_ns, char *buf, size_t cap)
{
	time_t t = (time_t)(wall_ns / 1000000000);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, cap, "%H:%M:%S", &tm);
	return buf;
}

/* "2s", "1.5s", "500ms", "2m" */
const char *live_format_ms(uint64_t ms, char *buf, size_t cap)
{
	if (ms < 1000)
		snprintf(buf, cap, "%" PRIu64 "ms", ms);
	else if (ms % 60000 == 0)
		snprintf(buf, cap, "%" PRIu64 "m", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(buf, cap, "%" PRIu64 "s", ms / 1000);
	else
		snprintf(buf, cap, "%.1fs", (double)ms / 1000.0);
	return buf;
}

void live_header_line(const struct live_state *st, int line, char *buf, size_t cap)
{
	const struct live_sample *l = live_model_last(st->model);
	char a[64], b[32], c[32], d[32], exe[512], ver[64];
	struct live_native nat;

	buf[0] = '\0';
	switch (line) {
	case 0:
		util_escape(exe, sizeof(exe), st->exe, strlen(st->exe), 0);
		util_escape(ver, sizeof(ver), st->python_version,
			    strlen(st->python_version), 0);
		a[0] = '\0';
		if (st->tracing == LIVE_TRACING_VIEW && st->tracing_since_ns)
			snprintf(a, sizeof(a), "this view since %s",
				 clock_of(st->tracing_since_ns, b, sizeof(b)));
		if (st->sample_size)
			snprintf(c, sizeof(c), "every %s, ",
				 util_format_size((int64_t)st->sample_size, 0, d,
						  sizeof(d)));
		snprintf(buf, cap, "pid %d  %s  Python %s  %s: %s, %s%u frame%s",
			 (int)st->pid, exe, ver, st->sample_size ? "sampling" : "tracing",
			 st->tracing == LIVE_TRACING_APP ? "by the application"
			 : st->tracing == LIVE_TRACING_TRMTOP ? "by trmtop start"
			 : a, st->sample_size ? c : "", st->traceback_limit,
			 st->traceback_limit == 1 ? "" : "s");
		break;
	case 1:
		if (!l) {
			snprintf(buf, cap, st->sample_size ? "estimated: in use -  "
				 "blocks -  RSS -  sampler -"
				 : "traced -  peak -  RSS -  tracemalloc -  blocks -");
			break;
		}
		if (st->sample_size) {
			/* the sampled snapshot: estimates, no peak, the
			 * sampler's own memory */
			snprintf(buf, cap, "estimated: in use %s  blocks %" PRIu64
				 "  RSS %s  sampler %s  (sampled: sizes and counts "
				 "are estimates)",
				 util_format_size((int64_t)l->traced, 0, a, sizeof(a)),
				 l->blocks,
				 util_format_size((int64_t)l->rss, 0, c, sizeof(c)),
				 util_format_size((int64_t)l->tm_mem, 0, d, sizeof(d)));
			break;
		}
		snprintf(buf, cap, "traced %s  peak %s  RSS %s  tracemalloc %s  "
			 "blocks %" PRIu64,
			 util_format_size((int64_t)l->traced, 0, a, sizeof(a)),
			 util_format_size((int64_t)l->peak, 0, b, sizeof(b)),
			 util_format_size((int64_t)l->rss, 0, c, sizeof(c)),
			 util_format_size((int64_t)l->tm_mem, 0, d, sizeof(d)),
			 l->blocks);
		break;
	case 2: {
		int n;

		n = snprintf(buf, cap, "refresh %s", live_format_ms(st->effective_ms, a,
								   sizeof(a)));
		if (st->effective_ms > st->interval_ms && n > 0 && (size_t)n < cap)
			n += snprintf(buf + n, cap - (size_t)n, " (stretched from %s: the "
				      "target is held at most %u%% of the time)",
				      live_format_ms(st->interval_ms, b, sizeof(b)),
				      LIVE_HOLD_PERCENT);
		if (l && n > 0 && (size_t)n < cap)
			n += snprintf(buf + n, cap - (size_t)n, "  held %.1f ms "
				      "(longest pause %.1f ms)", (double)l->gil_ns / 1e6,
				      (double)l->gil_max_ns / 1e6);
		if (n > 0 && (size_t)n < cap)
			snprintf(buf + n, cap - (size_t)n, "  refreshes %" PRIu64
				 " (%" PRIu64 " since the baseline)%s",
				 live_model_nrefresh(st->model),
				 live_model_since_baseline(st->model),
				 st->paused ? "  PAUSED" : "");
		break;
	}
	case 3:
		live_model_native(st->model, &nat);
		live_native_text(&nat, buf, cap);
		break;
	}
}

void live_row_cells(const struct live_row *r, struct live_cells *c)
{
	const struct snap_row *row = r->row;
	const char *loc;

	snprintf(c->rank, sizeof(c->rank), "%zu", row->rank);
	util_format_size((int64_t)row->size, 0, c->size, sizeof(c->size));
	util_format_size(r->size_diff, 1, c->dsize, sizeof(c->dsize));
	snprintf(c->count, sizeof(c->count), "%" PRIu64, row->count);
	snprintf(c->dcount, sizeof(c->dcount), "%+" PRId64, r->count_diff);
	util_format_size_f(row->average, 0, c->avg, sizeof(c->avg));
	live_format_rate(r->rate, c->rate, sizeof(c->rate));
	/* its return: a row without frames gets "<unknown>:0" returned, not
	 * written */
	loc = render_row_loc(row, c->loc, sizeof(c->loc));
	if (loc != c->loc)
		snprintf(c->loc, sizeof(c->loc), "%s", loc);
	c->source[0] = '\0';
	if (row->source)
		util_escape(c->source, sizeof(c->source), row->source,
			    strlen(row->source), 0);
}

/* Keep the end of loc (file name and line) in width columns: "...tail". */
const char *live_shorten_left(const char *loc, size_t width, char *buf, size_t cap)
{
	size_t len = strlen(loc);

	if (len <= width || width < 4) {
		snprintf(buf, cap, "%s", loc);
		return buf;
	}
	/* loc is escaped: ASCII and whole UTF-8 sequences; skip
	 * continuation bytes so as not to cut one */
	{
		const char *p = loc + len - (width - 3);

		while (((unsigned char)*p & 0xc0) == 0x80)
			p++;
		snprintf(buf, cap, "...%s", p);
	}
	return buf;
}
