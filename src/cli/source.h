/* source.h - source lines of a live target's files, read through
 * /proc/PID/root (absolute paths) or /proc/PID/cwd (relative ones), so a
 * target in a container shows its own files. */
#ifndef TRMTOP_CLI_SOURCE_H
#define TRMTOP_CLI_SOURCE_H

#include <stdint.h>
#include <sys/types.h>

struct source_cache;

struct source_cache *source_cache_new(pid_t pid);
void source_cache_free(struct source_cache *sc);

/* The line, stripped of leading and trailing white space, or NULL (no such
 * file or line, "<frozen ...>", a binary file).  Borrowed until the cache
 * is freed. */
const char *source_line(struct source_cache *sc, const char *filename,
			uint32_t lineno);

#endif
