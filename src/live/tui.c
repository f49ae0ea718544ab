/* tui.c - the terminal view of the live view (ncursesw). */
#include "config.h"

#include <errno.h>

#include "trmtop/live.h"

int live_sink_tui(struct live_sink *sink, struct trm_err *err)
{
	(void)sink;
	return trm_err_set(err, -ENOSYS, "the terminal view is not there yet: use --batch");
}
