/* inject.h - the attach state machine: get the agent running in a live
 * CPython process at a safe point and connect to it over two pipes.
 *
 * Paths (DESIGN.md §3): PEP 768's remote exec on 3.14+ when a thread runs
 * Python; a pending call (Py_AddPendingCall of PyRun_SimpleString) when
 * the main thread runs Python; the hijack of a thread parked in a syscall
 * with the GIL released (PyGILState_Ensure -> PyRun_SimpleString ->
 * PyGILState_Release as remote calls) when it does not.  Every stop is
 * undone on every path; aborting signals to trmtop (SIGINT, SIGTERM,
 * SIGHUP, read from the caller's struct trm_abort, inject_opts.abort)
 * abort between steps and end every wait ("Waiting" below).  Renders and
 * prints nothing: progress lines go to opts->progress, errors up as
 * struct trm_err. */
#ifndef TRMTOP_INJECT_H
#define TRMTOP_INJECT_H

#include <stdint.h>
#include <sys/types.h>

#include "trmtop/abort.h"
#include "trmtop/elf.h"
#include "trmtop/err.h"
#include "trmtop/wire.h"

struct inject_opts {
	int attach_timeout_ms; /* give up after this long without HELLO */
	int verbose;           /* progress lines: why a path or thread is
				  not used, what the main thread waits in */
	int trace;             /* lines with the time of each attach stage
				  ("%8.3f ms <stage>") */
	/* where those lines go, one at a time, without "trmtop: " and
	 * without newline (NULL: nowhere) */
	void (*progress)(void *ctx, const char *line);
	void *progress_ctx;
	struct trm_abort *abort; /* the caller's; NULL: nothing aborts */
};

struct inject_target {
	pid_t pid;
	char exe[TARGET_PATH_MAX];
	struct elf_pyinfo py;
};

struct inject_conn {
	struct inject_target target;
	int ctl_fd;   /* requests to the agent */
	int data_fd;  /* replies from the agent */
	struct wire_reader rd;
	struct wire_hello hello;
	const char *path; /* "pending call", "hijack of thread N" ... */
	pid_t via_tid;
	uint64_t ns_to_hello;
	uint64_t ns_held; /* how long threads of the target were held by ptrace */
	struct trm_abort *abort; /* inject_opts.abort: ends this
				    connection's waits */
};

/* Attach and connect: on success *c holds the open connection and the
 * agent's HELLO.  On failure nothing of trmtop is left running in the
 * target: no stopped thread, no tracer, and any bootstrap left queued does
 * nothing when it runs. */
int inject_attach(pid_t pid, const struct inject_opts *opts,
		  struct inject_conn *c, struct trm_err *err);

/* Send DETACH (best effort) and close the pipes. */
void inject_close(struct inject_conn *c);

/* The error for a failed read of the agent's replies on c:
 * rc is what wire_read_frame returned (not 1), what names what was
 * awaited, a noun ("answer", "greeting", "snapshot data").  Returns, with
 * err set:
 *   0 (EOF)     -TRM_EAGENT   as inject_agent_gone
 *   -EINTR      -TRM_EINTR    "pid N: interrupted waiting for the agent's <what>"
 *   -ETIMEDOUT  -TRM_ETIMEOUT "pid N: no <what> from the agent"
 *   -EPROTO     -TRM_EPROTO   "pid N: reading from the agent: Protocol error"
 *   -errno      -errno        "pid N: reading from the agent: <strerror>" */
int inject_read_error(const struct inject_conn *c, int rc, const char *what,
		      struct trm_err *err);

/* ---- Waiting (src/inject/wait.c) --------------------------------------
 *
 * Every wait of trmtop on a target and its agent ends early when an
 * aborting signal (SIGINT, SIGTERM, SIGHUP) arrives: the signalfd of the
 * caller's struct trm_abort (abort.h; opts->abort, c->abort, or the ab
 * argument) is polled alongside what is waited for, and read only
 * through trm_abort_check (so the first signal, and how many came, are
 * known to all).  The reader of a connection wakes the same way
 * (inject_wake_on_signal with c->abort, set on c->rd by inject_attach):
 * every read of a reply returns -EINTR from wire_read_frame.  ab NULL:
 * nothing aborts. */

/* Wait until fd (< 0: none, only the time) has one of events, at most
 * timeout_ms (< 0: no limit).  1 ready, 0 timed out, -TRM_EINTR, -errno. */
int inject_wait_fd(struct trm_abort *ab, int fd, short events, int timeout_ms);

/* Sleep ms milliseconds: 0, or -TRM_EINTR when an aborting signal came. */
int inject_sleep(struct trm_abort *ab, int ms);

/* A wire_reader wake function (wire_reader_set_wake with
 * trm_abort_fd(ab), arg ab, a struct trm_abort *): non-zero once an
 * aborting signal has arrived. */
int inject_wake_on_signal(void *ab);

/* The agent's pipe hung up (EOF or EPIPE): -TRM_EAGENT with "pid N: the
 * agent went away (the target may have exited)", or "...: the target
 * exited" when it is known to have. */
int inject_agent_gone(pid_t pid, struct trm_err *err);

/* End a session after an aborting signal (read from c->abort), whatever
 * it was waiting for:
 * send DETACH and close the control pipe (the agent then ends the session
 * once it is done with the request at hand, and undoes the tracing the
 * session owns), and drop what the agent still sends until its end of
 * the data pipe closes.  Waits at most timeout_ms, and not past a further
 * aborting signal.  Closes c's fds (inject_close is then a no-op).
 * 0 the session has ended; -TRM_ETIMEOUT it has not yet; -TRM_EINTR a
 * second signal cut the wait short; -TRM_EAGENT the agent was gone. */
int inject_cancel(struct inject_conn *c, int timeout_ms);

#endif
