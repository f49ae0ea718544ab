/* inject_int.h - private to the inject module and its unit tests. */
#ifndef TRMTOP_INJECT_INT_H
#define TRMTOP_INJECT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "trmtop/inject.h"

/* What one run of the bootstrap is told: the fds trmtop created in the
 * target (-1: none), the pipes' inodes, the session token and the private
 * page holding the text (0: none). */
struct inject_boot {
	int memfd;          /* the agent's bytes */
	int script_fd;      /* the memfd holding this text (PEP 768) */
	int ctl_r, ctl_w;   /* trmtop -> agent */
	int data_r, data_w; /* agent -> trmtop */
	unsigned long ctl_ino, data_ino;
	uint64_t token;
	uint64_t page, page_len;
};

/* Write the bootstrap script for one run into buf (NUL-terminated): it
 * loads the agent from b->memfd if not loaded yet (after checking it is
 * still ours) and calls the agent's start(), which closes the memfds and
 * the target's copies of trmtop's pipe ends and unmaps the page.  Returns
 * its length, or -ENOSPC. */
int inject_bootstrap_text(char *buf, size_t cap, const struct inject_boot *b);

/* The text trmtop leaves to a pending call it queued and then gave up on,
 * once it has closed the fds the call was told about: it names no fd (the
 * numbers may be the application's by the time it runs) and only asks the
 * agent, if loaded, to unmap [page, page + page_len), the page holding the
 * text itself.  Returns its length, or -ENOSPC. */
int inject_bootstrap_void_text(char *buf, size_t cap, uint64_t token,
			       uint64_t page, uint64_t page_len);

#endif
