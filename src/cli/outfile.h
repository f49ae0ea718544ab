/* outfile.h - the one way the CLI writes a file (snapshot -o, import -o,
 * export -o) or a report: atomically, and never through what is already
 * there; and how a command starts and ends an output (its messages and
 * exit status 5, EXIT_WRITE).
 *
 * The data goes to a new temporary file in the same directory (created
 * O_EXCL|O_NOFOLLOW, with the caller's mode less the umask), which is
 * flushed, fsync'ed and renamed over the destination only when every write
 * succeeded.  A destination that exists and is not a regular file
 * (symlink, device, FIFO, directory, socket) is refused, never followed or
 * replaced.  On failure the destination is untouched, the temporary file
 * is removed, and the error is the first errno a write met ("No space left
 * on device"), not a generic one.  Reports on standard output go through
 * the same recording (outfile_open_stdout). */
#ifndef TRMTOP_CLI_OUTFILE_H
#define TRMTOP_CLI_OUTFILE_H

#include <limits.h>
#include <stdio.h>
#include <sys/types.h>

#include "trmtop/err.h"

struct outfile {
	const char *path;        /* borrowed from the caller */
	int dirfd;               /* the destination's directory (O_PATH) */
	char base[NAME_MAX + 1]; /* the destination's name in it */
	char tmp[NAME_MAX + 1];  /* the temporary file's name in it */
	int fd;                  /* the temporary file */
	FILE *f;                 /* writes to fd, recording the first errno */
	int werr;                /* that errno, 0 if none */
	int is_stdout;           /* outfile_open_stdout: fd is 1, not ours */
};

/* Whether path can be written, without creating anything: its directory
 * exists and is writable, and path is absent or a regular file.  0, or
 * -errno with "PATH: why" (and a hint) in err. */
int outfile_check(const char *path, struct trm_err *err);

/* Check, then create the temporary file; of->f takes the data.  mode: 0666
 * for ordinary output, 0600 for files holding source lines (the umask
 * applies to both).  0 or -errno with err set; nothing to release on
 * error. */
int outfile_open(struct outfile *of, const char *path, mode_t mode,
		 struct trm_err *err);

/* The same error recording for a report on standard output: of->f
 * writes to fd 1 (line-buffered on a terminal); of->path is "standard
 * output"; commit only flushes.  0 or -ENOMEM with err set. */
int outfile_open_stdout(struct outfile *of, struct trm_err *err);

/* Flush, fsync and rename into place; then release of.  0 or -errno with
 * err set (the temporary file removed, the destination untouched). */
int outfile_commit(struct outfile *of, struct trm_err *err);

/* Drop the temporary file and release of (after a failed write of the
 * data; safe after a failed outfile_open or a commit). */
void outfile_abort(struct outfile *of);

/* The first write error of of, or `rc` when there was none: the real
 * cause of a failed writer (a writer's own -EIO says less). */
int outfile_error(const struct outfile *of, int rc);

/* Whether of is standard output and its reader has gone (EPIPE: a pipe
 * into `head` that stopped reading).  That is no error: the report ends
 * there, quietly (SIGPIPE is ignored, so writes fail with EPIPE).
 * outfile_commit returns 0 for it. */
int outfile_reader_gone(const struct outfile *of);

/* ---- for the commands: messages and exit status 5 -------------------- */

/* Open path (NULL: standard output) for a command's output, mode as for
 * outfile_open.  0, or EXIT_WRITE with the error printed. */
int outfile_start(struct outfile *of, const char *path, mode_t mode);

/* End a command's output; rc is its writer's (err, or NULL, the writer's
 * message).  rc < 0: the data is dropped (the destination untouched) and
 * the error printed, the first write errno first ("No space left on
 * device"); else the output is committed.  A reader of standard output
 * that went away (`| head`) is no error: the report ends there, quietly.
 * 0, or EXIT_WRITE: every write error of a command is exit 5, never the
 * target-error code. */
int outfile_finish(struct outfile *of, int rc, const struct trm_err *err);

#endif
