/* term.c - whether the terminal view can run (live_tui_usable): TERM
 * names a terminfo entry that can move the cursor.  Apart from tui.c
 * because <term.h> defines every capability name (lines, columns, ...)
 * as a macro. */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include <curses.h>
#include <term.h>

#include "trmtop/live.h"

int live_tui_usable(struct trm_err *err)
{
	const char *term = getenv("TERM"), *cup;
	TERMINAL *saved = cur_term;
	int e = 0, rc = 0;

	if (!term || !*term)
		return trm_err_set(err, -1, "TERM is not set");
	if (setupterm(term, STDOUT_FILENO, &e) != OK)
		return trm_err_set(err, -1, "TERM=%.64s: %s", term, e == 1
				   ? "a hardcopy terminal"
				   : "no terminfo entry for this terminal");
	cup = tigetstr("cup");
	if (!cup || cup == (const char *)-1)
		rc = trm_err_set(err, -1, "TERM=%.64s: the terminal cannot move "
				 "its cursor", term);
	del_curterm(cur_term);
	set_curterm(saved);
	return rc;
}
