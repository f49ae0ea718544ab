/* cli.h - shared by the CLI's subcommands: exit codes, messages, the
 * common option group and the attach helper. */
#ifndef TRMTOP_CLI_H
#define TRMTOP_CLI_H

#include <argp.h>
#include <stdint.h>
#include <sys/types.h>

#include "trmtop/err.h"
#include "trmtop/inject.h"

enum cli_exit {
	EXIT_OK = 0,
	EXIT_USAGE = 1,
	EXIT_TARGET = 2,    /* target or attach error */
	EXIT_THRESHOLD = 3, /* --fail-above exceeded */
	EXIT_BADINPUT = 4,  /* bad input file or stream */
	EXIT_WRITE = 5,     /* an output could not be written */
};

/* "trmtop: <msg>" and, if set, "hint: <hint>" on stderr, each one line:
 * the text is escaped (util.h, "Escaping"), since it may quote what a
 * target said or named. */
void cli_error(const struct trm_err *err);
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Exit code for an attach/target error code. */
int cli_exit_for(int code);

/* Options shared by the subcommands that attach (argp child). */
struct cli_target_opts {
	pid_t pid;
	int attach_timeout_ms;
	int verbose;
};
extern const struct argp cli_target_argp;
void cli_target_opts_init(struct cli_target_opts *o);

/* Block SIGINT/SIGTERM/SIGHUP/SIGCHLD and route them to a signalfd that
 * ptrace/inject poll, so an interrupt never leaves a target stopped. */
int cli_signals_setup(void);

/* Wait ms milliseconds; returns 0, or the number of a terminating signal
 * (SIGINT, SIGTERM, SIGHUP) that arrived first. */
int cli_wait_interruptible(uint64_t ms);

/* Attach (or reconnect) to o->pid; on error prints and returns the exit
 * code (> 0). */
int cli_attach(const struct cli_target_opts *o, struct inject_conn *c);

/* --frames N: 1 to 65535, else an argp usage error. */
unsigned cli_parse_frames(struct argp_state *state, const char *arg);

/* Send a control request (START, STOP: len from its encoder, < 0 on an
 * encoding error) and decode the STATE reply.  On error prints and returns
 * the exit code (> 0). */
struct wire_state;
int cli_control(struct inject_conn *c, const uint8_t *frame, int len,
		struct wire_state *st);

int cmd_start(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_traceback(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);

struct snapshot;

/* Load a snapshot file (.trm, or a tracemalloc dump recognised by its
 * pickle header).  On error prints "trmtop: PATH: why" and returns NULL
 * with *exit_code set (4 for bad input). */
struct snapshot *cli_load_snapshot(const char *path, int *exit_code);

/* Write s as .trm to path through outfile.h (atomic, never through a
 * symlink or over a non-regular file; 0600 less the umask when s holds
 * source lines, else 0666 less the umask).  Prints and returns
 * EXIT_WRITE on error, else 0. */
int cli_save_snapshot(const struct snapshot *s, const char *path);

#endif
