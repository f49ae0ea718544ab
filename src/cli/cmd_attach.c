/* cmd_attach.c - start, stats, stop: the subcommands that talk to the
 * agent in a live process, each one request or two on a session
 * (session.h), and what they print. */
#include "config.h"

#include <argp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "trmtop/target.h"
#include "trmtop/util.h"
#include "trmtop/wire.h"

#define REQUEST_TIMEOUT_MS 60000 /* STATS */

enum { OPT_JSON = 0x200, OPT_FRAMES, OPT_SAMPLE };


struct attach_args {
	struct cli_target_opts target;
	int json;
	unsigned frames;
	int want_json, want_frames;
	int frames_set, sample;
	uint64_t sample_size;
};

static const struct argp_option stats_options[] = {
	{ "json", OPT_JSON, NULL, 0, "One JSON object with stable keys", 2 },
	{ 0 }
};

static const struct argp_option start_options[] = {
	{ "frames", OPT_FRAMES, "N", 0,
	  "Frames kept per traceback (default 1, as tracemalloc; each extra "
	  "frame costs the target about 0.5 us per allocation; 16 with "
	  "--sample)", 2 },
	{ "sample", OPT_SAMPLE, "SIZE", OPTION_ARG_OPTIONAL,
	  "Sample one allocation per SIZE bytes allocated (default 512KiB) "
	  "instead of tracing them all with tracemalloc: sizes become "
	  "estimates, at a cost a production service does not notice", 2 },
	{ 0 }
};

static error_t parse(int key, char *arg, struct argp_state *state)
{
	struct attach_args *a = state->input;

	switch (key) {
	case OPT_JSON:
		a->json = 1;
		return 0;
	case OPT_FRAMES:
		a->frames = cli_parse_frames(state, arg);
		a->frames_set = 1;
		return 0;
	case OPT_SAMPLE:
		a->sample = 1;
		a->sample_size = cli_parse_sample(state, arg);
		return 0;
	default:
		return cli_target_parse_key(key, arg, state, &a->target);
	}
}

/* Parse the command line into a and open a session to the target: 0
 * with *s open, or the exit code. */
static int parse_and_attach(int argc, char **argv, const struct argp_option *opts,
			    const char *doc, struct attach_args *a,
			    struct session **s)
{
	struct argp ap = { opts, parse, NULL, doc, cli_target_children, NULL, NULL };

	memset(a, 0, sizeof(*a));
	cli_target_opts_init(&a->target);
	a->frames = 1;
	if (argp_parse(&ap, argc, argv, 0, NULL, a) != 0)
		return EXIT_USAGE;
	return cli_attach(&a->target, s);
}

static const char *tracing_word(unsigned t)
{
	switch (t) {
	case WIRE_TRACING_TRMTOP:
		return "trmtop";
	case WIRE_TRACING_APPLICATION:
		return "application";
	default:
		return "off";
	}
}

static const char *tracing_text(unsigned t)
{
	switch (t) {
	case WIRE_TRACING_TRMTOP:
		return "on, started by trmtop";
	case WIRE_TRACING_APPLICATION:
		return "on, started by the application";
	default:
		return "off";
	}
}

/* start --sample: the sampler, kept on after trmtop exits (as tracing
 * is, in two steps).  Returns the exit code. */
static int start_sample(struct session *s, const struct attach_args *a)
{
	struct wire_state st;
	char b[32];
	int ec;

	ec = cli_start_sample(s, a->frames_set ? a->frames : CLI_SAMPLE_FRAMES_DEFAULT,
			      a->sample_size, 1, &st);
	if (ec)
		return ec;
	printf("pid %d: sampled every %s\n", (int)a->target.pid,
	       util_format_size((int64_t)st.sample_size, 0, b, sizeof(b)));
	return 0;
}

int cmd_start(int argc, char **argv)
{
	static const char *what_start = "waiting for the agent to start tracing";
	static const char *what_keep = "waiting for the agent to keep tracing on";
	static const char *done_keep = "tracing left on, as asked";
	struct attach_args a;
	struct session *s;
	struct wire_state st;
	struct trm_err err = { 0 };
	int rc;

	rc = parse_and_attach(argc, argv, start_options,
			      "Turn tracemalloc tracing on in a running process (or "
			      "the sampler, with --sample); it stays on after trmtop "
			      "exits, until 'trmtop stop'.", &a, &s);
	if (rc)
		return rc;
	if (a.sample) {
		rc = start_sample(s, &a);
		session_close(s);
		return rc;
	}
	/* Started without KEEP, the tracing is the session's: should trmtop
	 * be cancelled or die before the second START (KEEP) is answered,
	 * the agent turns it off again when the session ends. */
	rc = session_start(s, a.frames, 0, &st, CONTROL_TIMEOUT_MS, &err);
	if (rc < 0)
		rc = cli_request_failed(s, rc, &err, what_start, NULL);
	if (rc == 0 && st.tracing == WIRE_TRACING_TRMTOP) {
		rc = session_start(s, a.frames, WIRE_START_KEEP, &st,
				   CONTROL_TIMEOUT_MS, &err);
		if (rc < 0)
			rc = cli_request_failed(s, rc, &err, what_keep, done_keep);
	}
	if (rc == 0) {
		if (st.tracing == WIRE_TRACING_APPLICATION)
			printf("pid %d: tracing already started by the application "
			       "(traceback limit %u): left as it is\n",
			       (int)a.target.pid, st.traceback_limit);
		else if (st.tracing == WIRE_TRACING_TRMTOP)
			printf("pid %d: tracing on (traceback limit %u)\n",
			       (int)a.target.pid, st.traceback_limit);
		else {
			cli_errorf("pid %d: tracing could not be started",
				   (int)a.target.pid);
			rc = EXIT_TARGET;
		}
	}
	session_close(s);
	return rc;
}

int cmd_stop(int argc, char **argv)
{
	struct attach_args a;
	struct session *s;
	struct wire_state st;
	struct wire_stats before;
	struct trm_err err = { 0 };
	int rc, pid;

	rc = parse_and_attach(argc, argv, NULL,
			      "Turn off the tracing (and the sampler) trmtop turned "
			      "on; tracing started by the application is left on.",
			      &a, &s);
	if (rc)
		return rc;
	pid = (int)a.target.pid;
	/* what runs, so as to say what was turned off */
	rc = session_stats(s, &before, CONTROL_TIMEOUT_MS, &err);
	if (rc < 0)
		rc = cli_request_failed(s, rc, &err,
					"waiting for the agent's statistics", NULL);
	if (rc == 0) {
		rc = session_stop(s, &st, CONTROL_TIMEOUT_MS, &err);
		if (rc < 0)
			rc = cli_request_failed(s, rc, &err,
						"waiting for the agent to stop tracing",
						"the stop carried out");
	}
	if (rc == 0) {
		const char *sampling = before.sample_size && !st.sample_size ?
					       "sampling off" : NULL;

		if (st.tracing == WIRE_TRACING_APPLICATION)
			printf("pid %d: %s%stracing was started by the application: "
			       "left on\n", pid, sampling ? sampling : "",
			       sampling ? "; " : "");
		else if (sampling && before.tracing != WIRE_TRACING_TRMTOP)
			printf("pid %d: %s\n", pid, sampling);
		else
			printf("pid %d: %s%stracing off\n", pid,
			       sampling ? sampling : "", sampling ? ", " : "");
	}
	session_close(s);
	return rc;
}

/* "<label><text>\n", text escaped: the target chose its executable's
 * name and can craft its version string. */
static void print_field(const char *label, const char *text)
{
	fputs(label, stdout);
	util_fprint_escaped(stdout, text);
	putchar('\n');
}

static void print_stats(const struct inject_conn *c, const struct wire_stats *s,
			int json)
{
	const struct inject_target *t = &c->target;
	char b1[32], b2[32], b3[32], b4[32];

	if (json) {
		printf("{\"pid\": %d, \"executable\": ", (int)t->pid);
		util_fputs_json(stdout, t->exe, strlen(t->exe));
		printf(", \"python_version\": ");
		util_fputs_json(stdout, t->py.version, strlen(t->py.version));
		printf(", \"libpython\": \"%s\", \"pie\": %s, \"tracing\": \"%s\", "
		       "\"traceback_limit\": %u, \"traced_current\": %llu, "
		       "\"traced_peak\": %llu, \"tracemalloc_memory\": %llu, "
		       "\"traced_blocks\": %llu, \"rss\": %llu",
		       t->py.shared ? "shared" : "static", t->py.pie ? "true" : "false",
		       tracing_word(s->tracing), s->traceback_limit,
		       (unsigned long long)s->traced_current,
		       (unsigned long long)s->traced_peak,
		       (unsigned long long)s->tracemalloc_memory,
		       (unsigned long long)s->traced_blocks,
		       (unsigned long long)s->rss);
		if (s->sample_size)
			printf(", \"sample_size\": %llu, \"samples\": %llu, "
			       "\"sample_memory\": %llu, \"sample_capped\": %s",
			       (unsigned long long)s->sample_size,
			       (unsigned long long)s->samples,
			       (unsigned long long)s->sample_memory,
			       s->sample_flags & WIRE_SAMPLE_CAPPED ? "true" : "false");
		printf("}\n");
		return;
	}
	printf("pid:                %d\n", (int)t->pid);
	print_field("executable:         ", t->exe);
	print_field("python:             ", t->py.version);
	printf("build:              %s, %s\n",
	       t->py.shared ? "libpython shared" : "libpython in the executable",
	       t->py.pie ? "PIE" : "not PIE");
	printf("tracing:            %s\n", tracing_text(s->tracing));
	if (s->sample_size) {
		char b5[32], b6[32];

		printf("sampling:           sampled every %s, %llu samples held, "
		       "sampler memory %s%s\n",
		       util_format_size((int64_t)s->sample_size, 0, b5, sizeof(b5)),
		       (unsigned long long)s->samples,
		       util_format_size((int64_t)s->sample_memory, 0, b6, sizeof(b6)),
		       s->sample_flags & WIRE_SAMPLE_CAPPED
			       ? " (cap reached: new samples are dropped)" : "");
	}
	if (s->tracing == WIRE_TRACING_OFF) {
		if (!s->sample_size)
			printf("hint: 'trmtop start --pid %d' turns it on\n",
			       (int)t->pid);
	} else {
		printf("traceback limit:    %u\n", s->traceback_limit);
		printf("traced memory:      %s (peak %s)\n",
		       util_format_size_f((double)s->traced_current, 0, b1, sizeof(b1)),
		       util_format_size_f((double)s->traced_peak, 0, b2, sizeof(b2)));
		printf("traced blocks:      %llu\n", (unsigned long long)s->traced_blocks);
		printf("tracemalloc memory: %s\n",
		       util_format_size_f((double)s->tracemalloc_memory, 0, b3, sizeof(b3)));
	}
	printf("rss:                %s\n",
	       util_format_size_f((double)s->rss, 0, b4, sizeof(b4)));
}

int cmd_stats(int argc, char **argv)
{
	struct attach_args a;
	struct session *s;
	struct wire_stats st;
	struct trm_err err = { 0 };
	int rc;

	rc = parse_and_attach(argc, argv, stats_options,
			      "Show what the agent in a running process sees now; "
			      "does not turn tracing on.", &a, &s);
	if (rc)
		return rc;
	rc = session_stats(s, &st, REQUEST_TIMEOUT_MS, &err);
	if (rc < 0)
		rc = cli_request_failed(s, rc, &err,
					"waiting for the agent's statistics", NULL);
	else
		print_stats(session_conn(s), &st, a.json); /* main checks stdout */
	session_close(s);
	return rc;
}
