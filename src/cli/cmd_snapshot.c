/* cmd_snapshot.c - one-shot snapshot of a live process into a .trm file:
 * a session (session.h) that turns tracing (or, with --sample, the
 * sampler) on if needed, waits, fetches the snapshot, and leaves tracing
 * as asked; source lines and the file are added here. */
#include "config.h"

#include <argp.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "outfile.h"
#include "source.h"
#include "trmtop/session.h"
#include "trmtop/snapshot.h"
#include "trmtop/util.h"
#include "trmtop/wire.h"

#define DEFAULT_WAIT_MS 10000u
#define SNAPSHOT_TIMEOUT_MS 600000
#define SOURCE_TOP_LINES 100
#define SOURCE_TOP_TRACEBACKS 50

enum { OPT_DURATION = 0x400, OPT_FRAMES, OPT_KEEP, OPT_SAMPLE };

struct snap_args {
	struct cli_target_opts target;
	uint64_t duration_ms;
	int has_duration;
	unsigned frames;
	int frames_set;
	int keep;
	int sample;
	uint64_t sample_size;
	const char *output;
};

static const struct argp_option options[] = {
	{ "duration", OPT_DURATION, "DURATION", 0,
	  "Trace this long before the snapshot (default: at once if tracing is "
	  "already on, else 10s)", 2 },
	{ "frames", OPT_FRAMES, "N", 0,
	  "Frames per traceback when trmtop turns tracing on (default 1)", 2 },
	{ "keep-tracing", OPT_KEEP, NULL, 0,
	  "Leave tracing on afterwards (for a later snapshot and diff)", 2 },
	{ "sample", OPT_SAMPLE, "SIZE", OPTION_ARG_OPTIONAL,
	  "Take the sampler's estimates (one allocation per SIZE bytes, "
	  "default 512KiB; 16 frames unless --frames), turning it on if it "
	  "is off, instead of tracemalloc's traces", 2 },
	{ "output", 'o', "FILE", 0,
	  "Where to write (default trmtop-PID-YYYYmmdd-HHMMSS.trm)", 2 },
	{ 0 }
};

static error_t parse(int key, char *arg, struct argp_state *state)
{
	struct snap_args *a = state->input;

	switch (key) {
	case OPT_DURATION:
		if (util_parse_duration(arg, &a->duration_ms) < 0)
			argp_error(state, "invalid duration '%s' (e.g. 30s, 2m, 500ms)", arg);
		a->has_duration = 1;
		return 0;
	case OPT_FRAMES:
		a->frames = cli_parse_frames(state, arg);
		a->frames_set = 1;
		return 0;
	case OPT_SAMPLE:
		a->sample = 1;
		a->sample_size = cli_parse_sample(state, arg);
		return 0;
	case OPT_KEEP:
		a->keep = 1;
		return 0;
	case 'o':
		a->output = arg;
		return 0;
	default:
		return cli_target_parse_key(key, arg, state, &a->target);
	}
}

struct progress {
	int tty;
	uint64_t last_ns;
	int shown;
};

static void show_progress(uint64_t got, uint64_t total, void *arg)
{
	struct progress *p = arg;
	uint64_t now = util_now_ns();

	if (!p->tty || (now - p->last_ns < 100000000u && got != total))
		return;
	p->last_ns = now;
	p->shown = 1;
	fprintf(stderr, "\rreceiving traces: %" PRIu64 " of %" PRIu64 " blocks", got, total);
	fflush(stderr);
}

/* Store the source lines of the top locations, read from the live target
 * with its own credentials (source.h; seen: as read while it ran the
 * agent), so offline reports have them too. */
static void store_sources(struct snapshot *s, pid_t pid, const struct target_creds *seen)
{
	struct source_cache *sc = source_cache_new(pid, seen);
	struct snap_stats st = { 0 };
	size_t i, j;

	if (!sc)
		return;
	for (int pass = 0; pass < 2; pass++) {
		enum snap_key key = pass ? SNAP_KEY_TRACEBACK : SNAP_KEY_LINENO;
		size_t top = pass ? SOURCE_TOP_TRACEBACKS : SOURCE_TOP_LINES;

		if (snapshot_statistics(s, key, 0, &st) < 0)
			break;
		for (i = 0; i < st.n && i < top; i++) {
			for (j = 0; j < st.v[i].nframe; j++) {
				const struct snap_loc *l = &st.v[i].frames[j];
				const char *line;
				uint32_t id;

				/* a name with a NUL byte is no path: its
				 * prefix would name another file */
				if (memchr(l->filename, '\0', l->filename_len))
					continue;
				line = source_line(sc, l->filename, l->lineno);
				if (!line)
					continue;
				id = snapshot_intern_str(s, l->filename, l->filename_len);
				if (id != SNAP_NONE)
					snapshot_set_source(s, id, l->lineno, line, strlen(line));
			}
		}
		snap_stats_fini(&st);
	}
	source_cache_free(sc);
}

int cmd_snapshot(int argc, char **argv)
{
	struct argp ap = { options, parse, NULL,
			   "Take a snapshot of a running process's traced allocations "
			   "and write it to a .trm file.", cli_target_children, NULL, NULL };
	static const char *what_start = "waiting for the agent to start tracing";
	static const char *what_stop = "waiting for the agent to stop tracing";
	static const char *what_keep = "waiting for the agent to keep tracing on";
	static const char *what_sample = "waiting for the agent to start sampling";
	struct snap_args a;
	struct session *ss;
	const struct inject_conn *c;
	struct wire_state st;
	struct snapshot *s = NULL;
	struct trm_err err = { 0 };
	struct progress prog = { 0 };
	struct snapshot_meta *m;
	struct target_creds creds = { 0 };
	struct wire_start sreq = { 0 };
	struct session_req req = { .op = SESSION_OP_SNAPSHOT };
	char path[512];
	int ec, rc, started = 0, has_creds;
	uint64_t wait_ms, sampler = 0;

	memset(&a, 0, sizeof(a));
	cli_target_opts_init(&a.target);
	a.frames = 1;
	if (argp_parse(&ap, argc, argv, 0, NULL, &a) != 0)
		return EXIT_USAGE;
	if (a.sample && !a.frames_set)
		a.frames = CLI_SAMPLE_FRAMES_DEFAULT;
	/* Before anything happens to the target: an output that cannot be
	 * written fails now, not after --duration of tracing. */
	if (outfile_check(a.output ? a.output : cli_default_output(a.target.pid, path, sizeof(path)),
			  &err) < 0) {
		cli_error(&err);
		return EXIT_WRITE;
	}
	ec = cli_attach(&a.target, &ss);
	if (ec)
		return ec;
	c = session_conn(ss);
	/* The target's credentials while it runs the agent: its source files
	 * are read with these, and only if they have not changed by then. */
	has_creds = target_read_creds(a.target.pid, &creds, NULL) == 0;
	s = snapshot_new();
	if (!s) {
		cli_errorf("out of memory");
		ec = EXIT_TARGET;
		goto out;
	}
	if (a.sample || c->hello.tracing == WIRE_TRACING_OFF) {
		/* is the sampler on?  (an agent before wire minor 1 has none:
		 * it says 0) */
		struct wire_stats stt;

		rc = session_stats(ss, &stt, CONTROL_TIMEOUT_MS, &err);
		if (rc < 0) {
			ec = cli_request_failed(ss, rc, &err, "waiting for the "
						"agent's statistics", NULL);
			goto out;
		}
		sampler = stt.sample_size;
	}
	if (a.sample || (sampler && c->hello.tracing == WIRE_TRACING_OFF)) {
		char b[32];

		req.snap_flags = WIRE_SNAPSHOT_SAMPLED;
		if ((c->hello.proto & 0xffffu) < 2) {
			cli_errorf("pid %d: its agent, loaded by an earlier trmtop "
				   "(protocol %#x), cannot send sampled snapshots",
				   (int)a.target.pid, c->hello.proto);
			ec = EXIT_TARGET;
			goto out;
		}
		if (!a.sample)
			fprintf(stderr, "trmtop: pid %d: tracing is off and the "
				"sampler runs (sampled every %s): taking its "
				"estimates\n", (int)a.target.pid,
				util_format_size((int64_t)sampler, 0, b, sizeof(b)));
		sreq = (struct wire_start){ .nframe = a.frames,
					    .flags = WIRE_START_SAMPLE,
					    .sample_size = a.sample_size };
		if (sampler) {
			wait_ms = a.has_duration ? a.duration_ms : 0;
		} else {
			/* without KEEP, as tracing below */
			rc = session_start_req(ss, &sreq, &st, CONTROL_TIMEOUT_MS,
					       &err);
			if (rc < 0) {
				ec = cli_request_failed(ss, rc, &err, what_sample,
							NULL);
				goto out;
			}
			if (!st.sample_size) {
				cli_errorf("pid %d: sampling could not be started",
					   (int)a.target.pid);
				ec = EXIT_TARGET;
				goto out;
			}
			started = 1;
			wait_ms = a.has_duration ? a.duration_ms : DEFAULT_WAIT_MS;
		}
	} else if (c->hello.tracing == WIRE_TRACING_OFF) {
		/* without KEEP: the session's until the snapshot is written
		 * (below), so that a cancelled or failed snapshot, or a trmtop
		 * killed, leaves tracing off again */
		rc = session_start(ss, a.frames, 0, &st, CONTROL_TIMEOUT_MS, &err);
		if (rc < 0) {
			ec = cli_request_failed(ss, rc, &err, what_start, NULL);
			goto out;
		}
		started = st.tracing == WIRE_TRACING_TRMTOP;
		wait_ms = a.has_duration ? a.duration_ms : DEFAULT_WAIT_MS;
	} else {
		if (c->hello.tracing == WIRE_TRACING_APPLICATION && a.frames != 1 &&
		    c->hello.traceback_limit != a.frames)
			fprintf(stderr, "trmtop: the application traces with %u frame%s: kept\n",
				c->hello.traceback_limit, c->hello.traceback_limit == 1 ? "" : "s");
		wait_ms = a.has_duration ? a.duration_ms : 0;
	}
	prog.tty = isatty(STDERR_FILENO);
	if (wait_ms) {
		uint64_t left = wait_ms;

		while (left) {
			/* whole seconds on a terminal (the countdown), else
			 * hours at most (session_sleep takes an int) */
			uint64_t most = prog.tty ? 1000 : 3600000;
			uint64_t step = left > most ? most : left;

			if (prog.tty)
				fprintf(stderr, "\rtracing pid %d: snapshot in %" PRIu64 "s ",
					(int)a.target.pid, (left + 999) / 1000);
			if (session_sleep(ss, (int)step) < 0) {
				if (prog.tty)
					fputc('\n', stderr);
				ec = cli_cancel(ss, "tracing before the snapshot", NULL);
				goto out;
			}
			left -= step;
		}
		if (prog.tty)
			fputs("\r\033[K", stderr);
	}
	req.into = s;
	req.progress = show_progress;
	req.arg = &prog;
	rc = session_request(ss, &req, SNAPSHOT_TIMEOUT_MS, &err);
	if (prog.shown)
		fputs("\n", stderr);
	if (rc < 0) {
		/* no more requests: the agent undoes the session's tracing */
		ec = cli_request_failed(ss, rc, &err, "waiting for the agent's snapshot",
					NULL);
		goto out;
	}
	if (a.target.verbose) {
		uint64_t gil, gil_max;

		session_gil_time(ss, &gil, &gil_max);
		fprintf(stderr, "trmtop: the agent held the GIL %.1f ms in all, "
			"%.1f ms at the longest\n", (double)gil / 1e6, (double)gil_max / 1e6);
	}
	m = snapshot_meta(s);
	m->pid = (int32_t)a.target.pid;
	/* truncation is fine for metadata */
	memcpy(m->executable, c->target.exe, sizeof(m->executable) - 1);
	m->executable[sizeof(m->executable) - 1] = '\0';
	memcpy(m->python_version, c->target.py.version, sizeof(m->python_version) - 1);
	m->python_version[sizeof(m->python_version) - 1] = '\0';
	if (gethostname(m->host, sizeof(m->host)) < 0)
		m->host[0] = '\0';
	m->host[sizeof(m->host) - 1] = '\0';
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		m->time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	}
	if (has_creds)
		store_sources(s, a.target.pid, &creds);
	if (session_aborted(ss)) {
		ec = cli_cancel(ss, "reading source lines for the snapshot", NULL);
		goto out;
	}
	if (!a.output)
		a.output = cli_default_output(a.target.pid, path, sizeof(path));
	ec = cli_save_snapshot(s, a.output);
	if (ec == 0) {
		char b1[32], b2[32];

		util_fprint_escaped(stdout, a.output);
		if (snapshot_sample_size(s))
			printf(": sampled every %s: %zu tracebacks, about %s in "
			       "use in %" PRIu64 " blocks (estimates), traceback "
			       "limit %u (pid %d, Python ",
			       util_format_size((int64_t)snapshot_sample_size(s), 0,
						b2, sizeof(b2)),
			       snapshot_ntraces(s),
			       util_format_size((int64_t)snapshot_total_size(s), 0,
						b1, sizeof(b1)),
			       snapshot_total_count(s),
			       snapshot_cmeta(s)->traceback_limit, (int)a.target.pid);
		else
			printf(": %zu traces, %s traced, traceback limit %u (pid "
			       "%d, Python ", snapshot_ntraces(s),
			       util_format_size((int64_t)snapshot_total_size(s), 0,
						b1, sizeof(b1)),
			       snapshot_cmeta(s)->traceback_limit, (int)a.target.pid);
		util_fprint_escaped(stdout, c->target.py.version);
		fputs(")\n", stdout);
	}
	if (ec)
		goto out;
	if (started && req.snap_flags) {
		/* the sampler this session started: STOP would also stop the
		 * tracing an earlier 'trmtop start' kept on, so then the end
		 * of the session stops it (the agent does, as it does for a
		 * cancelled one) */
		if (!a.keep && c->hello.tracing == WIRE_TRACING_TRMTOP)
			goto out;
		if (a.keep) {
			sreq.flags |= WIRE_START_KEEP;
			rc = session_start_req(ss, &sreq, &st, CONTROL_TIMEOUT_MS,
					       &err);
		} else {
			rc = session_stop(ss, &st, CONTROL_TIMEOUT_MS, &err);
		}
		if (rc < 0)
			ec = cli_request_failed(ss, rc, &err, a.keep ? what_keep :
						what_stop, a.keep ?
						"sampling left on, as asked (the "
						"snapshot was written)" :
						"sampling turned off again (the "
						"snapshot was written)");
	} else if (started && !a.keep) {
		rc = session_stop(ss, &st, CONTROL_TIMEOUT_MS, &err);
		if (rc < 0)
			ec = cli_request_failed(ss, rc, &err, what_stop,
						"tracing turned off again (the snapshot was written)");
	} else if (started) {
		/* --keep-tracing: the tracing is no longer the session's */
		rc = session_start(ss, a.frames, WIRE_START_KEEP, &st,
				   CONTROL_TIMEOUT_MS, &err);
		if (rc < 0)
			ec = cli_request_failed(ss, rc, &err, what_keep,
						"tracing left on, as asked (the snapshot was written)");
	}
out:
	target_creds_fini(&creds);
	snapshot_free(s);
	session_close(ss);
	return ec;
}
