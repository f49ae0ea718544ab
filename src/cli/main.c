/* main.c - the trmtop command: process-wide set-up (SIGPIPE ignored),
 * dispatch to a subcommand (or to the live view, `trmtop --pid PID`, when
 * the first argument is an option other than --help, --usage and
 * --version), and the end of standard output. */
#include "config.h"

#include <argp.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

const char *argp_program_version = "trmtop " TRMTOP_VERSION;
const char *argp_program_bug_address = NULL;

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "start", cmd_start, "turn tracing on in a running process" },
	{ "stats", cmd_stats, "show what the agent in a process sees now" },
	{ "stop", cmd_stop, "turn off the tracing trmtop turned on" },
	{ "snapshot", cmd_snapshot, "write a snapshot of a running process" },
	{ "top", cmd_top, "top allocation sites of a snapshot file" },
	{ "diff", cmd_diff, "compare two snapshot files (CI leak gate)" },
	{ "traceback", cmd_traceback, "traceback of one allocation site" },
	{ "export", cmd_export, "convert a snapshot to tracemalloc, JSON or collapsed stacks" },
	{ "import", cmd_import, "convert a tracemalloc dump into a .trm file" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char doc[] =
	"trmtop -- tracemalloc for running CPython processes\v"
	"The live view (full-screen; text blocks when output is not a terminal):\n"
	"  trmtop --pid PID [--interval 2s] [--frames N] [--sample[=SIZE]] [--batch]\n"
	"    [--iterations N] [--group-by lineno|filename|traceback] [--format text|json]\n"
	"    [--include GLOB]... [--exclude GLOB]...\n"
	"Run 'trmtop --pid 1 --help' for its options; h or ? in the view lists keys.\n"
	"\n"
	"Commands:\n"
	"  start --pid PID [--frames N] [--sample[=SIZE]]\n"
	"                                 turn tracing (or the sampler) on; it stays on\n"
	"                                 after trmtop exits\n"
	"  stats --pid PID [--json]       traced memory, peak, blocks, RSS\n"
	"  stop  --pid PID                turn off what trmtop turned on\n"
	"  snapshot --pid PID [--duration 30s] [--frames N] [--keep-tracing] [-o FILE]\n"
	"  top FILE [--group-by lineno|filename|traceback] [--cumulative] [--limit N]\n"
	"           [--include GLOB]... [--exclude GLOB]... [--format text|json|collapsed]\n"
	"  diff OLD NEW [same options] [--fail-above SIZE] [--fail-above-line SIZE]\n"
	"  traceback FILE [--rank N | --location FILE:LINE]\n"
	"  export FILE --to tracemalloc|json|collapsed [-o OUT]\n"
	"  import DUMP -o FILE.trm\n"
	"\n"
	"Run 'trmtop COMMAND --help' for the options of a command.\n"
	"\n"
	"Exit status: 0 ok, 1 usage error, 2 target or attach error, "
	"3 --fail-above exceeded, 4 bad input file, 5 an output could not be written, "
	"128+N cancelled by signal N (129 SIGHUP, 130 SIGINT, 143 SIGTERM; the target "
	"is left as found).  A reader of standard output that stops reading "
	"(| head) ends the output quietly; the status stays that of the command.";

static error_t parse(int key, char *arg, struct argp_state *state)
{
	size_t i;

	switch (key) {
	case ARGP_KEY_ARG:
		for (i = 0; i < NCOMMANDS; i++) {
			if (strcmp(arg, commands[i].name) == 0) {
				*(size_t *)state->input = i;
				state->next = state->argc; /* the rest is the command's */
				return 0;
			}
		}
		argp_error(state, "unknown command '%s'", arg);
		return EINVAL;
	case ARGP_KEY_NO_ARGS:
		argp_usage(state);
		return EINVAL;
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

static const struct argp argp = { NULL, parse,
				  "COMMAND [ARG...]\n--pid PID [OPTION...]", doc,
				  NULL, NULL, NULL };

/* Is argv[1] an option of the live view (anything but --help, --usage,
 * --version and their short forms)? */
static int is_live(int argc, char **argv)
{
	static const char *const own[] = { "--help", "-?", "--usage", "--version",
					   "-V", "--he", "--hel", "--us", "--usa",
					   "--usag", "--v", "--ve", "--ver", "--vers",
					   "--versi", "--versio", "--h", "--u" };
	size_t i;

	if (argc < 2 || argv[1][0] != '-' || strcmp(argv[1], "-") == 0 ||
	    strcmp(argv[1], "--") == 0)
		return 0;
	for (i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strcmp(argv[1], own[i]) == 0)
			return 0;
	return 1;
}

/* Has the reader of standard output gone (a pipe whose read end is
 * closed reports POLLERR to its writer)? */
static int stdout_reader_gone(void)
{
	struct pollfd p = { STDOUT_FILENO, 0, 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

/* Flush what the command printed with stdio.  A reader that went away
 * (`| head`) is no error: the status stays the command's.  Any other
 * failure is exit 5 with its errno. */
static int finish_stdout(int ec)
{
	int e = 0;

	if (fflush(stdout) != 0)
		e = errno ? errno : EIO;
	else if (ferror(stdout))
		e = -1; /* an earlier write failed; its errno is gone */
	if (!e || e == EPIPE || stdout_reader_gone())
		return ec;
	if (e > 0)
		cli_errorf("standard output: %s", strerror(e));
	else
		cli_errorf("standard output: a write failed");
	return ec ? ec : EXIT_WRITE;
}

int main(int argc, char **argv)
{
	struct sigaction ign;
	size_t cmd = NCOMMANDS;
	int idx = 0;
	char name[64];

	/* a write to a pipe whose reader is gone (the agent's, standard
	 * output's) is an EPIPE error for the writer to handle, never a
	 * silent death */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, NULL);
	argp_err_exit_status = EXIT_USAGE;
	if (is_live(argc, argv))
		return finish_stdout(cmd_live(argc, argv));
	if (argp_parse(&argp, argc, argv, ARGP_IN_ORDER, &idx, &cmd) != 0 ||
	    cmd >= NCOMMANDS)
		return EXIT_USAGE;
	/* idx points past the command word; hand the rest to it with
	 * argv[0] = "trmtop <cmd>" */
	for (idx = 1; idx < argc; idx++)
		if (strcmp(argv[idx], commands[cmd].name) == 0)
			break;
	snprintf(name, sizeof(name), "trmtop %s", commands[cmd].name);
	argv[idx] = name;
	return finish_stdout(commands[cmd].fn(argc - idx, argv + idx));
}
