/* cli.h - shared by the CLI's subcommands: exit codes, messages, the
 * common option group, opening and ending sessions (session.h) with the
 * messages they print, and snapshot files. */
#ifndef TRMTOP_CLI_H
#define TRMTOP_CLI_H

#include <argp.h>
#include <stdint.h>
#include <sys/types.h>

#include "trmtop/err.h"
#include "trmtop/session.h"

enum cli_exit {
	EXIT_OK = 0,
	EXIT_USAGE = 1,
	EXIT_TARGET = 2,    /* target or attach error */
	EXIT_THRESHOLD = 3, /* --fail-above exceeded */
	EXIT_BADINPUT = 4,  /* bad input file or stream */
	EXIT_WRITE = 5,     /* an output could not be written */
	/* cancelled by a signal: 128 + its number (SIGHUP 129, SIGINT 130,
	 * SIGTERM 143), as a shell reports a command killed by it */
	EXIT_SIGNAL_BASE = 128,
};

/* "trmtop: <msg>" and, if set, "hint: <hint>" on stderr, each one line:
 * the text is escaped (util.h, "Escaping"), since it may quote what a
 * target said or named. */
void cli_error(const struct trm_err *err);
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Exit code for an attach/target error code (-TRM_EINTR: 128 + the
 * signal). */
int cli_exit_for(int code);

/* "SIGINT", "SIGTERM", ... into buf; returns buf. */
const char *cli_signal_name(int sig, char *buf, size_t len);

/* Options shared by the subcommands that attach (argp child). */
struct cli_target_opts {
	pid_t pid;
	int attach_timeout_ms;
	int verbose;
};
extern const struct argp cli_target_argp;
void cli_target_opts_init(struct cli_target_opts *o);
/* A --pid command's argp children: cli_target_argp, "Target:", first. */
extern const struct argp_child cli_target_children[];
/* What every --pid command's parser does alike, its default case: hands
 * t to cli_target_children at ARGP_KEY_INIT, refuses a positional
 * argument, requires --pid at ARGP_KEY_END; else ARGP_ERR_UNKNOWN. */
error_t cli_target_parse_key(int key, char *arg, struct argp_state *state,
			     struct cli_target_opts *t);

/* Block SIGINT/SIGTERM/SIGHUP/SIGCHLD and route them to one signalfd,
 * put into ab (once: a no-op when ab has one), which is passed to every
 * wait (inject.h, "Waiting"), so a signal ends any wait, and never leaves
 * a target stopped.  (main ignores SIGPIPE for every command.) */
struct trm_abort;
int cli_signals_setup(struct trm_abort *ab);
/* The command's struct trm_abort (cli_attach sets it up and hands it to
 * inject; a wait of the CLI's own passes it too). */
struct trm_abort *cli_abort(void);

/* After an aborting signal (a wait returned -TRM_EINTR): end the session
 * with the agent (session_cancel: the agent finishes the request at
 * hand, then undoes the tracing the session owns; waited for 2 s at
 * most, less after a second signal), and print "pid N: cancelled while
 * <what> (SIGINT); <done>", or, when the agent has not ended its session
 * yet, that it will, "with <done>", and a hint.  done says where tracing
 * ends up once the request at hand is carried out (NULL: "tracing left
 * as found", for every request but STOP and the START that keeps tracing
 * on).  Returns the exit code, 128 + the first signal. */
int cli_cancel(struct session *s, const char *what, const char *done);

/* Open a session to o->pid (attach, or reconnect: session_open), after
 * cli_signals_setup; on error prints and returns the exit code (> 0). */
int cli_attach(const struct cli_target_opts *o, struct session **s);

/* One option table of the named options of groups[0..ngroups) (a group
 * may be NULL; each ends at an entry with no name), in order, with its
 * terminator: malloc'ed (the caller frees), NULL with errno ENOMEM.
 * No limit on how many options there are. */
struct argp_option *cli_merge_options(const struct argp_option *const *groups,
				      size_t ngroups);

/* How long START and STOP wait for the agent's answer. */
#define CONTROL_TIMEOUT_MS 60000

/* --frames N: 1 to 65535, else an argp usage error. */
unsigned cli_parse_frames(struct argp_state *state, const char *arg);

/* The sampler: --sample[=SIZE] (arg NULL: the default size), and how
 * many frames it keeps when --frames is not given. */
#define CLI_SAMPLE_SIZE_DEFAULT (512u << 10)
#define CLI_SAMPLE_FRAMES_DEFAULT 16u
#define CLI_SAMPLE_SIZE_MAX (1ull << 40)
uint64_t cli_parse_sample(struct argp_state *state, const char *arg);

/* START the sampler in s's agent (nframe frames, one sample per size
 * bytes; kept after trmtop exits with keep, else the session's); *st is
 * the reply.  0, or the exit code after saying why (an agent too old,
 * a refusal, a signal: "waiting for the agent to start sampling"). */
int cli_start_sample(struct session *s, unsigned nframe, uint64_t size,
		     int keep, struct wire_state *st);

/* A request of s failed with rc (< 0) and err: cancelled by a signal
 * (-TRM_EINTR), cli_cancel(s, what, done) (what: "waiting for the agent
 * to start tracing", ...); else print err.  Returns the exit code. */
int cli_request_failed(struct session *s, int rc, const struct trm_err *err,
		       const char *what, const char *done);

int cmd_start(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_traceback(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_live(int argc, char **argv);

/* Snapshot files (snapfile.c). */
struct snapshot;

/* Load a snapshot file (snapshot_load: .trm, or a tracemalloc dump
 * recognised by its pickle header).  On error prints "trmtop: PATH: why"
 * and returns NULL with *exit_code set (4: bad input). */
struct snapshot *cli_load_snapshot(const char *path, int *exit_code);

/* Mode of a new file holding s (a snapshot, or its export to JSON): 0600
 * when it holds source lines (read from a target's files: its writer's
 * only), else 0666; less the umask either way. */
mode_t cli_snapshot_mode(const struct snapshot *s);

/* Write s as .trm to path through outfile.h (atomic, never through a
 * symlink or over a non-regular file; 0600 less the umask when s holds
 * source lines, else 0666 less the umask).  Prints and returns
 * EXIT_WRITE on error, else 0. */
int cli_save_snapshot(const struct snapshot *s, const char *path);

/* trmtop-PID-YYYYmmdd-HHMMSS.trm (now, local time) into buf; returns buf. */
const char *cli_default_output(pid_t pid, char *buf, size_t len);

#endif
