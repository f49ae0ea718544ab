/* inject_int.h - private to the inject module and its unit tests. */
#ifndef TRMTOP_INJECT_INT_H
#define TRMTOP_INJECT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "trmtop/inject.h"

/* Write the bootstrap script for one run into buf (NUL-terminated): it
 * loads the agent from memfd (if not loaded yet), closes memfd and the
 * script memfd script_fd (-1: none) after checking they are still ours,
 * and calls the agent's start(), which unmaps page.  Returns its length,
 * or -ENOSPC. */
int inject_bootstrap_text(char *buf, size_t cap, int memfd, int script_fd,
			  int ctl_fd, int data_fd, unsigned long ctl_ino,
			  unsigned long data_ino, uint64_t token,
			  uint64_t page, uint64_t page_len);

#endif
