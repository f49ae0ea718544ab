/* source.h - source lines of a live target's files, for snapshots.
 *
 * The file names come from the target (its code objects), so trmtop never
 * opens them with its own rights: a child process takes the target's
 * credentials and reads the files inside the target's root (see source.c).
 * Whatever fails — credentials, resolution, permissions, a non-regular or
 * too large file, a deadline — is "no source line", never an error. */
#ifndef TRMTOP_CLI_SOURCE_H
#define TRMTOP_CLI_SOURCE_H

#include <stdint.h>
#include <sys/types.h>

#include "trmtop/target.h"

struct source_cache;

/* Start reading pid's files.  seen: the target's credentials as read
 * earlier (while it ran trmtop's agent), or NULL; when the target's
 * credentials differ now (it exec'd a set-id program, or the pid was
 * reused), no line is read.  NULL + errno on allocation failure only. */
struct source_cache *source_cache_new(pid_t pid, const struct target_creds *seen);
void source_cache_free(struct source_cache *sc);

/* The line, stripped of leading and trailing white space, or NULL (no such
 * file or line, "<frozen ...>", a binary file, not readable by the target).
 * Borrowed until the cache is freed. */
const char *source_line(struct source_cache *sc, const char *filename,
			uint32_t lineno);

#endif
