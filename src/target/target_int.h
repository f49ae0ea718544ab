/* target_int.h - private to src/target and its unit tests. */
#ifndef TRMTOP_TARGET_INT_H
#define TRMTOP_TARGET_INT_H

#include "trmtop/target.h"

/* Parse one line of /proc/PID/maps (without or with its newline) into out.
 * The line is modified in place: out->path points into it, NUL-terminated
 * (newline and " (deleted)" cut off).  0 or -EINVAL. */
int target_parse_map_line(char *line, struct target_map *out);

/* Parse the text of /proc/PID/task/TID/syscall into out (wchan untouched).
 * 0 or -EINVAL. */
int target_parse_syscall(const char *text, struct target_syscall *out);

/* Parse the text of /proc/PID/status into out.  0 or -EINVAL when a
 * mandatory field (Name, State, Tgid) is missing. */
int target_parse_status(const char *text, struct target_status *out);

/* Parse the credentials of a /proc/PID/status text (see target_read_creds).
 * 0, -EINVAL (a field missing or malformed) or -ENOMEM. */
int target_parse_creds(const char *text, struct target_creds *out);

/* The working directory cwd (readlink of /proc/PID/cwd) as a path inside
 * root (readlink of /proc/PID/root) into out.  0, -ENOENT (deleted,
 * unreachable, or not under root) or -ENAMETOOLONG. */
int target_cwd_in_root(const char *root, const char *cwd, char *out, size_t len);

/* The whole of a /proc file of unknown size, NUL-terminated, into *text
 * (the caller's, free()) and its length into *len.  0, -errno, -ENOMEM,
 * or -EFBIG when it holds more than max bytes (max <= SIZE_MAX - 2). */
int target_slurp(const char *path, size_t max, char **text, size_t *len);

/* pread (wbuf NULL) or pwrite on /proc/PID/mem for the whole range: the
 * fallback of target_read_mem/target_write_mem.  0 or -errno (-EFAULT for
 * an unmapped range). */
int target_mem_file_io(pid_t pid, raddr_t addr, void *rbuf, const void *wbuf,
		       size_t len);

#endif
