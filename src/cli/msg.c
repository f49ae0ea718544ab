/* msg.c - what every subcommand shares: error messages (escaped: they
 * may quote what a target said or named), exit codes, signals (the
 * signalfd every wait polls, and the messages of a session cancelled on
 * them), the target option group, and opening a session. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "trmtop/abort.h"
#include "trmtop/util.h"
#include "trmtop/wire.h"

#define CANCEL_TIMEOUT_MS 2000

void cli_errorf(const char *fmt, ...)
{
	char small[1024], *text = small;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		small[0] = '\0';
		n = 0;
	} else if ((size_t)n >= sizeof(small)) {
		text = malloc((size_t)n + 1);
		if (text) {
			va_start(ap, fmt);
			vsnprintf(text, (size_t)n + 1, fmt, ap);
			va_end(ap);
		} else {
			text = small;
			n = (int)strlen(small);
		}
	}
	/* one line, whatever a target put into it */
	fputs("trmtop: ", stderr);
	util_fputs_escaped(stderr, text, (size_t)n, 0);
	fputc('\n', stderr);
	if (text != small)
		free(text);
}

void cli_error(const struct trm_err *err)
{
	cli_errorf("%s", err->msg[0] ? err->msg : trm_strerror(err->code));
	if (err->hint[0]) {
		fputs("hint: ", stderr);
		util_fprint_escaped(stderr, err->hint);
		fputc('\n', stderr);
	}
}

/* The command's aborting signals (cli_signals_setup), which every wait
 * below it is given: one command runs per process. */
static struct trm_abort cli_abort_state = TRM_ABORT_INIT;

struct trm_abort *cli_abort(void)
{
	return &cli_abort_state;
}

/* The first aborting signal (SIGINT when none was read: a caller that
 * got -TRM_EINTR had one). */
static int abort_signal(void)
{
	int sig = cli_abort_state.first_sig;

	return sig ? sig : SIGINT;
}

const char *cli_signal_name(int sig, char *buf, size_t len)
{
	const char *abbr = sigabbrev_np(sig);

	if (abbr)
		snprintf(buf, len, "SIG%s", abbr);
	else
		snprintf(buf, len, "signal %d", sig);
	return buf;
}

int cli_exit_for(int code)
{
	if (code == -TRM_EINTR)
		return EXIT_SIGNAL_BASE + abort_signal();
	if (code == -TRM_EFORMAT)
		return EXIT_BADINPUT;
	return EXIT_TARGET;
}

int cli_signals_setup(struct trm_abort *ab)
{
	sigset_t set;
	int fd;

	if (ab->fd >= 0)
		return 0;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	ab->fd = fd;
	return 0;
}

int cli_cancel(struct session *s, const char *what, const char *done)
{
	int sig = abort_signal(), pid = (int)session_conn(s)->target.pid;
	char name[32];
	int rc;

	cli_signal_name(sig, name, sizeof(name));
	if (!done)
		done = "tracing left as found";
	rc = session_cancel(s, CANCEL_TIMEOUT_MS);
	if (rc == 0) {
		cli_errorf("pid %d: cancelled while %s (%s); %s", pid, what, name, done);
	} else if (rc == -TRM_ETIMEOUT) {
		cli_errorf("pid %d: cancelled while %s (%s); the agent has not ended "
			   "its session within %d s: it will once the target lets it "
			   "run, with %s", pid, what, name, CANCEL_TIMEOUT_MS / 1000, done);
		fprintf(stderr, "hint: a thread of pid %d may be holding the GIL in "
			"native code; 'trmtop stats --pid %d' shows the tracing once "
			"it lets go\n", pid, pid);
	} else if (rc == -TRM_EINTR) {
		cli_errorf("pid %d: cancelled while %s (%s); not waiting for the agent "
			   "after a second signal: it ends its session once the target "
			   "lets it run, with %s", pid, what, name, done);
		fprintf(stderr, "hint: 'trmtop stats --pid %d' shows the tracing once "
			"it has\n", pid);
	} else {
		cli_errorf("pid %d: cancelled while %s (%s); the agent went away "
			   "(the target may have exited)", pid, what, name);
	}
	return EXIT_SIGNAL_BASE + sig;
}

/* ---- the shared target options --------------------------------------- */

enum { OPT_ATTACH_TIMEOUT = 0x100 };

static const struct argp_option target_options[] = {
	{ "pid", 'p', "PID", 0, "Process to attach to", 1 },
	{ "attach-timeout", OPT_ATTACH_TIMEOUT, "DURATION", 0,
	  "Give up attaching after this long (default 5s)", 1 },
	{ "verbose", 'v', NULL, 0, "Report attach progress on stderr", 1 },
	{ 0 }
};

static error_t target_parse(int key, char *arg, struct argp_state *state)
{
	struct cli_target_opts *o = state->input;
	char *end;
	uint64_t ms;
	long v;

	switch (key) {
	case 'p':
		errno = 0;
		v = strtol(arg, &end, 10);
		if (errno || *end || v <= 0 || v > 0x3fffffff)
			argp_error(state, "invalid pid '%s'", arg);
		o->pid = (pid_t)v;
		return 0;
	case OPT_ATTACH_TIMEOUT:
		if (util_parse_duration(arg, &ms) < 0 || ms == 0 || ms > 86400000u)
			argp_error(state, "invalid duration '%s'", arg);
		o->attach_timeout_ms = (int)ms;
		return 0;
	case 'v':
		o->verbose = 1;
		return 0;
	case ARGP_KEY_INIT:
		return 0;
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

const struct argp cli_target_argp = { target_options, target_parse, NULL, NULL,
				      NULL, NULL, NULL };

const struct argp_child cli_target_children[] = {
	{ &cli_target_argp, 0, "Target:", 1 },
	{ 0 }
};

error_t cli_target_parse_key(int key, char *arg, struct argp_state *state,
			     struct cli_target_opts *t)
{
	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = t;
		return 0;
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument '%s'", arg);
		return EINVAL;
	case ARGP_KEY_END:
		if (t->pid == 0)
			argp_error(state, "--pid is required");
		return 0;
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

void cli_target_opts_init(struct cli_target_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->attach_timeout_ms = 5000;
}

/* inject's progress lines, on stderr */
static void print_progress(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "trmtop: %s\n", line);
}

int cli_attach(const struct cli_target_opts *o, struct session **s)
{
	struct session_opts so = {
		.attach_timeout_ms = o->attach_timeout_ms,
		.verbose = o->verbose,
		.trace = getenv("TRMTOP_TRACE") != NULL, /* the attach's stages */
		.progress = print_progress,
		.abort = cli_abort(),
	};
	struct trm_err err = { 0 };
	const struct inject_conn *c;
	int rc;

	rc = cli_signals_setup(so.abort);
	if (rc < 0) {
		cli_errorf("signal setup: %s", strerror(-rc));
		return EXIT_TARGET;
	}
	rc = session_open(o->pid, &so, s, &err);
	if (rc == -TRM_EINTR) {
		char name[32];

		/* the attach undid its stops, and a bootstrap still queued
		 * in the target finds trmtop gone and does nothing */
		cli_errorf("pid %d: cancelled while attaching (%s); nothing of "
			   "trmtop's is left running in the target", (int)o->pid,
			   cli_signal_name(abort_signal(), name, sizeof(name)));
		return cli_exit_for(rc);
	}
	if (rc < 0) {
		cli_error(&err);
		return cli_exit_for(rc);
	}
	c = session_conn(*s);
	if (o->verbose)
		fprintf(stderr, "trmtop: attached to %d by %s in %.2f ms "
			"(a thread held %.2f ms)\n", (int)o->pid,
			c->path ? c->path : "?", (double)c->ns_to_hello / 1e6,
			(double)c->ns_held / 1e6);
	return 0;
}

unsigned cli_parse_frames(struct argp_state *state, const char *arg)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || *end || v < 1 || v > 65535)
		argp_error(state, "invalid frame count '%s' (1 to 65535)", arg);
	return (unsigned)v;
}

uint64_t cli_parse_sample(struct argp_state *state, const char *arg)
{
	uint64_t size = CLI_SAMPLE_SIZE_DEFAULT;

	if (arg && (util_parse_size(arg, &size) < 0 || size == 0 ||
		    size > CLI_SAMPLE_SIZE_MAX))
		argp_error(state, "--sample: expected a size from 1 byte to 1TiB "
			   "such as 64KiB, not '%s'", arg);
	return size;
}

int cli_start_sample(struct session *s, unsigned nframe, uint64_t size,
		     int keep, struct wire_state *st)
{
	const struct inject_conn *c = session_conn(s);
	struct wire_start req = {
		.nframe = nframe,
		.flags = WIRE_START_SAMPLE,
		.sample_size = size,
	};
	struct trm_err err = { 0 };
	int pid = (int)c->target.pid, rc;

	if ((c->hello.proto & 0xffffu) < 1) {
		cli_errorf("pid %d: its agent, loaded by an earlier trmtop "
			   "(protocol %#x), cannot sample", pid, c->hello.proto);
		return EXIT_TARGET;
	}
	rc = session_start_req(s, &req, st, CONTROL_TIMEOUT_MS, &err);
	if (rc < 0)
		return cli_request_failed(s, rc, &err,
					  "waiting for the agent to start sampling",
					  NULL);
	if (!st->sample_size) {
		cli_errorf("pid %d: sampling could not be started", pid);
		return EXIT_TARGET;
	}
	if (!keep)
		return 0;
	req.flags |= WIRE_START_KEEP;
	rc = session_start_req(s, &req, st, CONTROL_TIMEOUT_MS, &err);
	if (rc < 0)
		return cli_request_failed(s, rc, &err,
					  "waiting for the agent to keep sampling on",
					  "sampling left on, as asked");
	return 0;
}

int cli_request_failed(struct session *s, int rc, const struct trm_err *err,
		       const char *what, const char *done)
{
	if (rc == -TRM_EINTR)
		return cli_cancel(s, what, done);
	cli_error(err);
	return cli_exit_for(rc);
}
