/* err.c - the texts of the error codes (trm_strerror: the TRM_ERRORS
 * X-macro list of err.h, else strerror) and the setters of the detail
 * record (trm_err_set, where the innermost cause wins; trm_err_hint;
 * trm_err_clear).  Fixed buffers: nothing here allocates. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "trmtop/err.h"

const char *trm_strerror(int code)
{
	if (code < 0)
		code = -code;
	switch (code) {
#define TRM_X(name, val, text) \
	case val:              \
		return text;
		TRM_ERRORS(TRM_X)
#undef TRM_X
	default:
		return strerror(code);
	}
}

int trm_err_set(struct trm_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err || err->code != 0)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

void trm_err_hint(struct trm_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err || err->hint[0])
		return;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
}

void trm_err_clear(struct trm_err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
	err->hint[0] = '\0';
}
