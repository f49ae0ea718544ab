/* err.h - error codes and the detail record shared by all modules.
 *
 * A fallible function returns 0, -errno or -TRM_E*.  Codes above 4095 never
 * collide with errno values.  An optional `struct trm_err *` (may be NULL)
 * receives a one-line human explanation; it holds a fixed buffer, so setting
 * it never allocates. */
#ifndef TRMTOP_ERR_H
#define TRMTOP_ERR_H

#include <stddef.h>

#define TRM_ERRORS(X)                                                        \
	X(TRM_ENOTPY, 4096, "not a Python process")                              \
	X(TRM_EPYVER, 4097, "unsupported Python version")                        \
	X(TRM_EFREETHREAD, 4098, "free-threaded Python build is not supported")  \
	X(TRM_ETRACED, 4099, "already traced by another process")                \
	X(TRM_ESTOPPED, 4100, "process is stopped")                              \
	X(TRM_EEXITED, 4101, "target exited")                                    \
	X(TRM_ETIMEOUT, 4102, "no safe point reached in time")                   \
	X(TRM_ENOSYM, 4103, "symbol not found")                                  \
	X(TRM_EBADELF, 4104, "malformed ELF file")                               \
	X(TRM_EPROTO, 4105, "protocol error")                                    \
	X(TRM_EAGENT, 4106, "agent error")                                       \
	X(TRM_EBUSY, 4107, "target busy, try again")                             \
	X(TRM_EINTR, 4108, "interrupted")                                        \
	X(TRM_EUNSAFE, 4109, "thread is not at a safe point")                    \
	X(TRM_EFORMAT, 4110, "bad input file")

enum trm_errno {
#define TRM_X(name, val, text) name = (val),
	TRM_ERRORS(TRM_X)
#undef TRM_X
};

#define TRM_ERR_MSG_MAX 512

struct trm_err {
	int code;                  /* negative, like the return value */
	char msg[TRM_ERR_MSG_MAX]; /* "what: why", no final newline */
	char hint[TRM_ERR_MSG_MAX]; /* what the user can do, "" if nothing */
};

/* Text for a code (negative or positive); never NULL. */
const char *trm_strerror(int code);

/* Record a formatted message in err (if non-NULL) and return code.  When
 * err already holds a message (err->code != 0) it is kept: the innermost
 * cause wins. */
int trm_err_set(struct trm_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Set the hint line of err (if non-NULL and not yet set). */
void trm_err_hint(struct trm_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Clear err. */
void trm_err_clear(struct trm_err *err);

#endif
