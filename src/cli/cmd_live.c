/* cmd_live.c - `trmtop --pid PID`: the live view (live.h).  Parses its
 * options, opens the session, turns tracing on when it is off (the
 * session's: the agent turns it off again when the view ends, however it
 * ends), picks the sink (the terminal view, or batch text/JSON when
 * standard output is no terminal or --batch), runs the loop, and says how
 * it ended.  Source lines are read with the target's credentials
 * (source.h); `w` writes through outfile.h. */
#include "config.h"

#include <argp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "outfile.h"
#include "source.h"
#include "trmtop/live.h"
#include "trmtop/abort.h"
#include "trmtop/session.h"
#include "trmtop/util.h"
#include "trmtop/wire.h"

#define LIVE_SOURCES 200 /* rows by size given source lines */

enum {
	OPT_INTERVAL = 0x500, OPT_FRAMES, OPT_GROUP_BY, OPT_INCLUDE, OPT_EXCLUDE,
	OPT_BATCH, OPT_ITERATIONS, OPT_FORMAT, OPT_SAMPLE,
};

struct live_args {
	struct cli_target_opts target;
	uint64_t interval_ms;
	unsigned frames;
	int frames_set;
	uint64_t sample_size; /* --sample; 0: tracemalloc */
	enum snap_key key;
	struct snap_filter *filters;
	size_t nfilters;
	int batch, json;
	uint64_t iterations;
};

static const struct argp_option options[] = {
	{ "interval", OPT_INTERVAL, "DURATION", 0,
	  "Refresh every DURATION (default 2s; 1, 1.5, 500ms, 2s, 1m); stretched "
	  "so that the target is held at most 5% of the time", 2 },
	{ "frames", OPT_FRAMES, "N", 0,
	  "Frames per traceback when the view turns tracing on (default 1; "
	  "16 with --sample)", 2 },
	{ "sample", OPT_SAMPLE, "SIZE", OPTION_ARG_OPTIONAL,
	  "Watch the sampler's estimates (one allocation per SIZE bytes, default "
	  "512KiB; started if it does not run, stopped again on leaving) instead "
	  "of tracemalloc's exact figures: cheap enough for production", 2 },
	{ "group-by", OPT_GROUP_BY, "KEY", 0,
	  "Group by lineno (default), filename or traceback", 2 },
	{ "include", OPT_INCLUDE, "GLOB", 0,
	  "Only traces with a frame in a file matching GLOB (repeatable)", 2 },
	{ "exclude", OPT_EXCLUDE, "GLOB", 0,
	  "No traces with a frame in a file matching GLOB (repeatable)", 2 },
	{ "batch", OPT_BATCH, NULL, 0,
	  "Print text blocks instead of the full-screen view (the default when "
	  "standard output is not a terminal)", 2 },
	{ "iterations", OPT_ITERATIONS, "N", 0,
	  "End after N refreshes (default: run until q or a signal)", 2 },
	{ "format", OPT_FORMAT, "FORMAT", 0,
	  "Batch output: text (default) or json (one object per refresh)", 2 },
	{ 0 }
};

static error_t parse(int key, char *arg, struct argp_state *state)
{
	struct live_args *a = state->input;
	struct snap_filter *f;
	char *end;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &a->target;
		return 0;
	case OPT_INTERVAL:
		if (util_parse_duration(arg, &a->interval_ms) < 0 || a->interval_ms < 10 ||
		    a->interval_ms > 86400000u)
			argp_error(state, "invalid interval '%s' (10ms to 1 day: 1, 1.5, "
				   "500ms, 2s, 1m)", arg);
		return 0;
	case OPT_FRAMES:
		a->frames = cli_parse_frames(state, arg);
		a->frames_set = 1;
		return 0;
	case OPT_SAMPLE:
		a->sample_size = cli_parse_sample(state, arg);
		return 0;
	case OPT_GROUP_BY:
		if (snap_key_parse(arg, &a->key) < 0)
			argp_error(state, "--group-by: expected lineno, filename or "
				   "traceback, not '%s'", arg);
		return 0;
	case OPT_INCLUDE:
	case OPT_EXCLUDE:
		f = realloc(a->filters, (a->nfilters + 1) * sizeof(*f));
		if (!f)
			argp_failure(state, EXIT_USAGE, ENOMEM, "filters");
		a->filters = f;
		f = &a->filters[a->nfilters++];
		memset(f, 0, sizeof(*f));
		f->inclusive = key == OPT_INCLUDE;
		f->pattern = arg;
		return 0;
	case OPT_BATCH:
		a->batch = 1;
		return 0;
	case OPT_ITERATIONS:
		errno = 0;
		a->iterations = strtoull(arg, &end, 10);
		if (errno || *end || !*arg || a->iterations == 0 || arg[0] == '-')
			argp_error(state, "invalid number of iterations '%s'", arg);
		return 0;
	case OPT_FORMAT:
		if (strcmp(arg, "json") == 0)
			a->json = 1;
		else if (strcmp(arg, "text") == 0)
			a->json = 0;
		else
			argp_error(state, "--format: expected text or json, not '%s'", arg);
		return 0;
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument '%s' (commands come first: "
			   "'trmtop COMMAND --pid PID')", arg);
		return EINVAL;
	case ARGP_KEY_END:
		if (a->target.pid == 0)
			argp_error(state, "--pid is required");
		return 0;
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

static const struct argp_child children[] = {
	{ &cli_target_argp, 0, "Target:", 1 },
	{ 0 }
};

static const char *live_source(void *arg, const char *filename, size_t len,
			       uint32_t lineno)
{
	/* a name with a NUL byte is no path: its prefix would name another
	 * file */
	if (!arg || memchr(filename, '\0', len))
		return NULL;
	return source_line(arg, filename, lineno);
}

struct writer {
	pid_t pid;
};

/* The default name of `w`, made unique: a second `w` within the same
 * second gets "-2" before ".trm" (and so on) instead of replacing the
 * first file. */
static void write_name(pid_t pid, char *path, size_t cap)
{
	char base[PATH_MAX];
	size_t blen;
	struct stat st;
	int n;

	cli_default_output(pid, base, sizeof(base));
	blen = strlen(base) - strlen(".trm");
	snprintf(path, cap, "%s", base);
	for (n = 2; n < 1000 && lstat(path, &st) == 0; n++)
		snprintf(path, cap, "%.*s-%d.trm", (int)blen, base, n);
}

/* `w`: the snapshot shown, as .trm in the current directory. */
static int live_write(void *arg, const struct snapshot *s, char *path, size_t cap,
		      struct trm_err *err)
{
	struct writer *w = arg;
	struct outfile of;
	int rc;

	write_name(w->pid, path, cap);
	rc = outfile_open(&of, path, cli_snapshot_mode(s), err);
	if (rc < 0)
		return rc;
	rc = snapshot_write_trm(s, of.f, err);
	if (rc < 0) {
		rc = outfile_error(&of, rc);
		outfile_abort(&of);
		return trm_err_set(err, rc, "%s: %s", path, strerror(-rc));
	}
	return outfile_commit(&of, err);
}

static int64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --sample: the sampler that runs (an earlier `trmtop start --sample`),
 * or one started for the view (the session's: the agent stops it when
 * the view ends, however it ends).  0 or the exit code. */
static int start_sampler(struct session *ss, const struct live_args *a,
			 struct live_state *st)
{
	struct wire_stats stats;
	struct wire_state wst;
	struct trm_err err = { 0 };
	int rc, ec;

	if ((session_conn(ss)->hello.proto & 0xffffu) >= 1) {
		rc = session_stats(ss, &stats, CONTROL_TIMEOUT_MS, &err);
		if (rc < 0)
			return cli_request_failed(ss, rc, &err, "waiting for the "
						  "agent's statistics", NULL);
		if (stats.sample_size) {
			st->tracing = LIVE_TRACING_TRMTOP;
			st->sample_size = stats.sample_size;
			st->traceback_limit = 0; /* the first snapshot says */
			return 0;
		}
	}
	ec = cli_start_sample(ss, a->frames_set ? a->frames : CLI_SAMPLE_FRAMES_DEFAULT,
			      a->sample_size, 0, &wst);
	if (ec)
		return ec;
	st->tracing = LIVE_TRACING_VIEW;
	st->sample_size = wst.sample_size;
	st->traceback_limit = a->frames_set ? a->frames : CLI_SAMPLE_FRAMES_DEFAULT;
	st->tracing_since_ns = wall_ns();
	return 0;
}

/* q: the view ends its session and waits for the agent to undo what
 * the session started (DETACH: tracing or sampling off, and only that:
 * what an earlier `trmtop start` keeps on stays on).  The exit code. */
static int leave(struct session *ss, const struct live_state *st,
		 const char *what)
{
	int rc = session_cancel(ss, CONTROL_TIMEOUT_MS);

	if (rc == 0)
		return EXIT_OK;
	if (rc == -TRM_EINTR) {
		char done[64];

		snprintf(done, sizeof(done), "%s off once the target lets it run", what);
		return cli_cancel(ss, "leaving", done);
	}
	if (rc == -TRM_ETIMEOUT) {
		cli_errorf("pid %d: the agent has not ended its session within %d s: "
			   "it turns %s off once the target lets it run", (int)st->pid,
			   CONTROL_TIMEOUT_MS / 1000, what);
		return EXIT_OK;
	}
	cli_errorf("pid %d: the agent went away while %s was turned off (the "
		   "target may have exited)", (int)st->pid, what);
	return cli_exit_for(-TRM_EAGENT);
}

int cmd_live(int argc, char **argv)
{
	struct argp ap = { options, parse, NULL,
			   "Watch a running process's memory by source line, live: "
			   "trmtop --pid PID (see man trmtop for the keys).",
			   children, NULL, NULL };
	struct live_args a;
	struct session *ss = NULL;
	const struct inject_conn *c;
	struct wire_state wst;
	struct trm_err err = { 0 };
	struct live_state st;
	struct live_opts lo;
	struct live_sink sink;
	struct source_cache *sc = NULL;
	struct target_creds creds = { 0 };
	struct writer wr;
	struct outfile out = { 0 };
	char host[256];
	enum live_end end = LIVE_END_ERROR;
	const char *what;
	int ec, rc, tty, wec = 0;

	memset(&a, 0, sizeof(a));
	cli_target_opts_init(&a.target);
	a.interval_ms = 2000;
	a.frames = 1;
	a.key = SNAP_KEY_LINENO;
	if (argp_parse(&ap, argc, argv, 0, NULL, &a) != 0) {
		free(a.filters);
		return EXIT_USAGE;
	}
	tty = !a.batch && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
	if (tty && live_tui_usable(&err) < 0) {
		/* before the attach: nothing to undo */
		cli_errorf("%s: no full-screen view (--batch output)", err.msg);
		memset(&err, 0, sizeof(err));
		tty = 0;
	}
	if (!tty)
		a.batch = 1;
	memset(&st, 0, sizeof(st));
	memset(&lo, 0, sizeof(lo));
	memset(&sink, 0, sizeof(sink));
	ec = cli_attach(&a.target, &ss);
	if (ec) {
		free(a.filters);
		return ec;
	}
	c = session_conn(ss);
	st.pid = a.target.pid;
	st.exe = c->target.exe;
	st.python_version = c->target.py.version;
	st.traceback_limit = c->hello.traceback_limit;
	if (a.sample_size) {
		ec = start_sampler(ss, &a, &st);
		if (ec)
			goto out;
	} else if (c->hello.tracing == WIRE_TRACING_OFF) {
		/* the session's: DETACH, or trmtop gone, turns it off */
		rc = session_start(ss, a.frames, 0, &wst, CONTROL_TIMEOUT_MS, &err);
		if (rc < 0) {
			ec = cli_request_failed(ss, rc, &err,
						"waiting for the agent to start tracing", NULL);
			goto out;
		}
		st.tracing = LIVE_TRACING_VIEW;
		st.traceback_limit = wst.traceback_limit;
		st.tracing_since_ns = wall_ns();
	} else {
		st.tracing = c->hello.tracing == WIRE_TRACING_APPLICATION
			? LIVE_TRACING_APP : LIVE_TRACING_TRMTOP;
	}
	if (target_read_creds(a.target.pid, &creds, NULL) == 0)
		sc = source_cache_new(a.target.pid, &creds);
	st.model = live_model_new(a.key, live_source, sc, LIVE_SOURCES);
	if (!st.model) {
		cli_errorf("out of memory");
		ec = EXIT_TARGET;
		goto out;
	}
	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	wr.pid = a.target.pid;
	lo.interval_ms = a.interval_ms;
	lo.iterations = a.iterations;
	lo.filters = a.filters;
	lo.nfilters = a.nfilters;
	lo.abort_fd = trm_abort_fd(cli_abort());
	lo.write = live_write;
	lo.write_arg = &wr;
	lo.host = host;
	lo.snap_flags = st.sample_size ? WIRE_SNAPSHOT_SAMPLED : 0;
	if (a.batch) {
		/* outfile's stream keeps the errno of a failed write: a reader
		 * gone (`| head`) ends the view quietly, anything else is
		 * exit 5 with its errno */
		ec = outfile_start(&out, NULL, 0666);
		if (ec)
			goto out;
		rc = live_sink_batch(&sink, out.f, a.json);
	} else
		rc = live_sink_tui(&sink, &err);
	if (rc < 0) {
		if (!err.msg[0])
			trm_err_set(&err, rc, "%s", strerror(-rc));
		cli_error(&err);
		ec = EXIT_TARGET;
		goto out;
	}
	end = live_run(ss, &lo, &st, &sink, &err);
	what = st.sample_size ? "sampling" : "tracing";
	if (out.f) {
		wec = outfile_finish(&out, end == LIVE_END_OUTPUT ? -EIO : 0, NULL);
		if (end == LIVE_END_OUTPUT && !wec)
			end = LIVE_END_QUIT; /* the reader has gone: done */
	}
	switch (end) {
	case LIVE_END_QUIT:
		ec = EXIT_OK;
		if (st.tracing != LIVE_TRACING_VIEW)
			break;
		if (session_pending(ss) != SESSION_OP_NONE) {
			/* q twice: left with a refresh in flight; the agent
			 * undoes what the view started when it sees the
			 * hang-up */
			cli_errorf("pid %d: left without waiting for the refresh in "
				   "flight; the agent turns %s off once the target "
				   "lets it run", (int)st.pid, what);
			break;
		}
		ec = leave(ss, &st, what);
		break;
	case LIVE_END_GONE:
		cli_errorf("%s", st.end_msg);
		ec = EXIT_OK;
		break;
	case LIVE_END_ABORT:
		ec = cli_cancel(ss, "watching", st.tracing != LIVE_TRACING_VIEW ? NULL
				: st.sample_size ? "sampling turned off again"
				: "tracing turned off again");
		break;
	default:
		if (end == LIVE_END_OUTPUT) /* said by outfile_finish */
			break;
		cli_error(&err);
		ec = cli_exit_for(err.code);
		break;
	}
out:
	if (out.f)
		outfile_abort(&out);
	if (wec && (ec == EXIT_OK || end == LIVE_END_OUTPUT))
		ec = wec;
	live_model_free(st.model);
	source_cache_free(sc);
	target_creds_fini(&creds);
	session_close(ss);
	free(a.filters);
	return ec;
}
