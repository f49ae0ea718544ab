/* live.h - the live view (`trmtop --pid PID`): watching a process's
 * traced memory by source line, refresh after refresh.
 *
 * Three parts, in src/live/:
 *
 *  - the model (model.c): the history of refreshes (snapshots and the
 *    figures of their heads), the baseline, each row's difference since
 *    the baseline, its growth rate and trend, the leak suspects, the
 *    native-memory verdict and the stretching of the interval.  Pure
 *    functions over snapshots and rows (snapshot.h): no I/O, no clock;
 *    tested without a target (tests/unit/live/).
 *
 *  - the loop (loop.c): one session (session.h), one request at a time,
 *    polled with the sink's input, the caller's abort and a timer;
 *    refreshes go into the model, and the sink shows them.
 *
 *  - the sinks: batch text and JSON (batch.c, `--batch`, or standard
 *    output not a terminal) and the terminal view (tui.c, ncursesw).
 *
 * Everything a target named (file names, source lines) reaches a
 * terminal through util_escape. */
#ifndef TRMTOP_LIVE_H
#define TRMTOP_LIVE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "trmtop/err.h"
#include "trmtop/snapshot.h"

struct session;

/* ---- the model -------------------------------------------------------- */

#define LIVE_HISTORY 32u      /* refreshes a row's trend and rate cover */
#define LIVE_SAMPLES 256u     /* refreshes the header's sparklines cover */
#define LIVE_SUSPECT_MIN 3u   /* refreshes before a row can be a suspect */
#define LIVE_HOLD_PERCENT 5u  /* the target is held at most this much */
#define LIVE_NATIVE_MIN (4ull << 20) /* RSS growth below this: steady */

/* The figures of one refresh (the snapshot's head, and the agent's GIL
 * hold for it). */
struct live_sample {
	uint64_t t_ns;   /* monotonic time the refresh completed */
	uint64_t traced, peak, rss, tm_mem, blocks;
	uint64_t gil_ns, gil_max_ns;
};

/* One row of the view: a key of the current refresh's statistics. */
struct live_row {
	const struct snap_row *row; /* loc, frames, sources, size, count,
				       average (snapshot.h) */
	int64_t size_diff, count_diff; /* since the baseline */
	double rate;               /* bytes per minute over the history */
	uint64_t hist[LIVE_HISTORY]; /* its size at each refresh of the
					history, oldest first (0: it held
					nothing then) */
	unsigned nhist;
	int suspect;               /* see live_suspect */
};

enum live_sort {
	LIVE_SORT_SIZE,   /* s */
	LIVE_SORT_DSIZE,  /* d: size difference since the baseline */
	LIVE_SORT_COUNT,  /* c */
	LIVE_SORT_GROWTH, /* g: growth rate */
};

enum live_native_verdict {
	LIVE_NATIVE_UNKNOWN,   /* fewer than two refreshes since the baseline */
	LIVE_NATIVE_STEADY,    /* RSS grew less than LIVE_NATIVE_MIN */
	LIVE_NATIVE_TRACED,    /* RSS grew, mostly as traced memory did */
	LIVE_NATIVE_UNTRACED,  /* RSS grew, at least half of it and at least
				* LIVE_NATIVE_MIN untraced */
};

/* RSS growth against traced growth since the baseline. */
struct live_native {
	enum live_native_verdict verdict;
	int64_t rss_diff, traced_diff, tm_diff;
	int64_t untraced; /* rss_diff - max(traced_diff, 0) - max(tm_diff, 0) */
};

struct live_model;

/* A model grouping rows by key (SNAP_KEY_TRACEBACK, _LINENO or
 * _FILENAME), with source lines from source (may be NULL) for the first
 * `sources` rows by size.  NULL and errno on failure. */
struct live_model *live_model_new(enum snap_key key, snap_source_fn source,
				  void *source_arg, size_t sources);
void live_model_free(struct live_model *m);

/* Add a refresh: s (taken: the model frees it) and its figures.  The
 * first refresh is the baseline.  0 or -ENOMEM/-EOVERFLOW (the refresh
 * is dropped, the model stays as it was). */
int live_model_push(struct live_model *m, struct snapshot *s,
		    const struct live_sample *smp);

/* Group by another key: the rows' history restarts (the baseline stays,
 * as a snapshot: differences are recomputed for the new key).  0 or
 * -ENOMEM. */
int live_model_set_key(struct live_model *m, enum snap_key key);
enum snap_key live_model_key(const struct live_model *m);

/* The baseline becomes the last refresh: differences restart from 0. */
int live_model_set_baseline(struct live_model *m);

/* The view: the rows (a filename glob as fnmatch, NULL for all; only
 * the suspects if asked, then ranked by growth rate whatever sort),
 * sorted.  *rows is the model's, valid until its next change. */
size_t live_model_view(struct live_model *m, enum live_sort sort,
		       int suspects_only, const char *glob,
		       const struct live_row *const **rows);

/* The last refresh (NULL before the first) and its figures. */
const struct snapshot *live_model_snapshot(const struct live_model *m);
const struct live_sample *live_model_last(const struct live_model *m);
/* Refreshes pushed in all; refreshes since the baseline (1: the
 * baseline itself). */
uint64_t live_model_nrefresh(const struct live_model *m);
uint64_t live_model_since_baseline(const struct live_model *m);
/* The figures of the last n refreshes (n <= LIVE_SAMPLES), oldest
 * first, into out; returns how many there were. */
size_t live_model_samples(const struct live_model *m, struct live_sample *out,
			  size_t n);
/* Rows in the last refresh; totals of its snapshot. */
size_t live_model_nkeys(const struct live_model *m);
/* Keys the model keeps an entry for: those of the baseline and of the
 * last LIVE_HISTORY refreshes (and at most as many again, not yet
 * dropped), however many the target has churned through. */
size_t live_model_nentries(const struct live_model *m);
void live_model_native(const struct live_model *m, struct live_native *out);

/* ---- pure helpers (exported for the sinks and the unit tests) ------- */

/* Is a row whose sizes over the history were hist[0..n) a leak suspect:
 * at least LIVE_SUSPECT_MIN refreshes, larger at the last than at the
 * first, and larger than at the refresh before in more than half of
 * them. */
int live_suspect(const uint64_t *hist, unsigned n);

/* Bytes per minute from (t0, s0) to (t1, s1); 0 when t1 <= t0. */
double live_rate(uint64_t t0_ns, uint64_t s0, uint64_t t1_ns, uint64_t s1);

/* The verdict for RSS, traced and tracemalloc's own memory growing by
 * these since the baseline, over `refreshes` refreshes (>= 2 to judge). */
void live_native_judge(int64_t rss_diff, int64_t traced_diff, int64_t tm_diff,
		       uint64_t refreshes, struct live_native *out);

/* The native-memory line, in plain words, into buf (cap >= 64). */
const char *live_native_text(const struct live_native *n, char *buf, size_t cap);

/* The interval to wait after a refresh that held the target hold_ns, so
 * that it is held at most LIVE_HOLD_PERCENT of the time: the larger of
 * interval_ms and 100 / LIVE_HOLD_PERCENT times the hold. */
uint64_t live_stretch_ms(uint64_t interval_ms, uint64_t hold_ns);

/* A sparkline of v[0..n) scaled from its min to its max (all lowest
 * when flat), one cell each: the
 * eight Unicode blocks (utf8), else " .:-=+*#".  Into buf (cap >= 4 * n
 * + 1); returns buf. */
const char *live_sparkline(const uint64_t *v, size_t n, int utf8, char *buf,
			   size_t cap);

/* "1.5 KiB/min"-style rate, signed, into buf. */
const char *live_format_rate(double per_min, char *buf, size_t cap);

/* ---- the loop ---------------------------------------------------------- */

/* How tracing was when the view started. */
enum live_tracing {
	LIVE_TRACING_APP,     /* the application's */
	LIVE_TRACING_TRMTOP,  /* an earlier `trmtop start` (kept on) */
	LIVE_TRACING_VIEW,    /* this view turned it on (off on leaving) */
};

/* What the loop and the sinks share.  The sinks read it and set the
 * requests (quit, pause, interval, write). */
struct live_state {
	struct live_model *model;
	/* the target */
	pid_t pid;
	const char *exe, *python_version;
	enum live_tracing tracing;
	int64_t tracing_since_ns;  /* wall clock; 0: unknown */
	unsigned traceback_limit;
	uint64_t sample_size;      /* the sampler's (--sample; tracing then
				    * says who started it), 0: tracemalloc */
	/* the refresh */
	uint64_t interval_ms;      /* asked for (+/- change it) */
	uint64_t effective_ms;     /* after stretching */
	int paused;
	int in_flight;             /* a snapshot is being taken */
	uint64_t got, total;       /* its progress (traces) */
	/* the view (the sinks') */
	enum live_sort sort;
	int suspects_only;
	char glob[256];            /* "" for none */
	/* requests of a sink to the loop: quit counts the q keys; with a
	 * refresh in flight the first waits for it to end, a second does
	 * not (the loop then ends with LIVE_END_QUIT and the request in
	 * flight: session_pending says so) */
	int quit;
	int want_write;
	/* a message for the sink to show (the loop's, e.g. where a .trm
	 * was written), "" for none */
	char msg[512];
	/* how the view ended: "pid N exited", ... */
	char end_msg[256];
};

/* A sink: the loop calls begin once, then refresh after each refresh,
 * progress while one is being taken, input when its fd (-1: none) is
 * readable or idle() (nonzero: something changed, draw), and end once. */
struct live_sink {
	int (*begin)(void *arg, struct live_state *st);
	int (*fd)(void *arg);
	void (*input)(void *arg, struct live_state *st);
	int (*refresh)(void *arg, struct live_state *st);
	void (*progress)(void *arg, struct live_state *st);
	void (*draw)(void *arg, struct live_state *st); /* st changed */
	void (*end)(void *arg, struct live_state *st);
	void *arg;
};

/* Writes the current snapshot somewhere (the cli's): 0 and where into
 * path, or an error with its message in err. */
typedef int live_write_fn(void *arg, const struct snapshot *s, char *path,
			  size_t cap, struct trm_err *err);

struct live_opts {
	uint64_t interval_ms;
	uint64_t iterations;   /* refreshes before ending (0: no end) */
	const struct snap_filter *filters; /* --include/--exclude */
	size_t nfilters;
	int abort_fd;          /* readable when a signal came: then
				  session_aborted says whether it aborts */
	live_write_fn *write;
	void *write_arg;
	const char *host;      /* for the snapshots' metadata */
	uint16_t snap_flags;   /* of each snapshot request
				  (WIRE_SNAPSHOT_SAMPLED: the sampler's) */
};

enum live_end {
	LIVE_END_QUIT,       /* q, or --iterations done */
	LIVE_END_GONE,       /* the target exited (st->end_msg says so) */
	LIVE_END_ABORT,      /* a signal: end with session_cancel */
	LIVE_END_ERROR,      /* err says why */
	LIVE_END_OUTPUT,     /* the sink could not write (refresh failed):
				the caller's stream knows the errno */
};

/* Run the view on s until it ends.  st must hold the target's part and
 * the model; the rest is filled here. */
enum live_end live_run(struct session *s, const struct live_opts *o,
		       struct live_state *st, const struct live_sink *sink,
		       struct trm_err *err);

/* ---- sinks ------------------------------------------------------------- */

/* Batch: a text block (or one JSON object per line) per refresh to f.
 * 0 or -ENOMEM; sink->end frees what it holds. */
int live_sink_batch(struct live_sink *sink, FILE *f, int json);

/* The terminal view (ncursesw) on the controlling terminal. */
int live_sink_tui(struct live_sink *sink, struct trm_err *err);

/* Whether the terminal view can run on standard output: TERM has a
 * terminfo entry with cursor addressing.  0, or -1 with why in err (TERM
 * unset or unknown, a dumb or hardcopy terminal).  Asked before the
 * attach: ncurses' initscr would print its own message and exit(1). */
int live_tui_usable(struct trm_err *err);

#endif
