/* bootstrap.c - the Python text a bootstrap runs in the target (load the
 * agent from trmtop's memfd if not loaded yet, then call its start() with
 * the session's fds, inodes, token and page), the harmless text left to a
 * pending call trmtop gave up on, and writing the text into the private
 * page (with the page and resources it needs, for the pending-call and
 * hijack paths). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "inject_int.h"
#include "trmtop/target.h"

int inject_bootstrap_text(char *buf, size_t cap, const struct inject_boot *b)
{
	/* One expression statement: binds nothing in __main__, and the inner
	 * try/except keeps every exception (even KeyboardInterrupt) out of
	 * the target's code.  Not compile(): its first call builds the AST
	 * types, 220 KiB the target would keep for ever.  _imp.create_dynamic
	 * loads the agent from the memfd without importlib.util; the memfd is
	 * checked by name first, as its fd number may have been reused by the
	 * time this runs.  As little else as possible: every os call lets the
	 * GIL go, which costs a switch interval against a busy thread, so
	 * start() closes what the target must not keep, in C. */
	int n = snprintf(buf, cap,
		"exec(\"try:\\n"
		" import sys\\n"
		" m=sys.modules.get('_trmtop_agent')\\n"
		" if m is None:\\n"
		"  import posix\\n"
		"  f='/proc/self/fd/%d'\\n"
		"  if posix.readlink(f)=='/memfd:trmtop-%016" PRIx64 " (deleted)':\\n"
		"   import _imp\\n"
		"   m=_imp.create_dynamic(type('s',(),{'name':'_trmtop_agent','origin':f}))\\n"
		"   sys.modules['_trmtop_agent']=m\\n"
		" m.start(%d,%d,%lu,%lu,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%d,%d,%d,%d)\\n"
		"except BaseException:\\n"
		" pass\\n\",{})\n",
		b->memfd, b->token,
		b->ctl_r, b->data_w, b->ctl_ino, b->data_ino, b->token, b->page,
		b->page_len, b->ctl_w, b->data_r, b->memfd, b->script_fd);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

int inject_bootstrap_void_text(char *buf, size_t cap, uint64_t token,
			       uint64_t page, uint64_t page_len)
{
	/* No fd, so nothing the application has opened since can be
	 * touched; only the agent, if loaded, is asked to unmap the page */
	int n = snprintf(buf, cap,
		"exec(\"try:\\n"
		" import sys\\n"
		" m=sys.modules.get('_trmtop_agent')\\n"
		" if m is not None:\\n"
		"  m.start(-1,-1,0,0,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ")\\n"
		"except BaseException:\\n"
		" pass\\n\",{})\n",
		token, page, page_len);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

int inject_bootstrap_for(const struct attach *a, raddr_t page, uint64_t page_len,
			 char *buf, size_t cap)
{
	struct inject_boot b = {
		.memfd = a->t_memfd, .script_fd = a->t_script,
		.ctl_r = a->t_ctl_r, .ctl_w = a->t_ctl_w,
		.data_r = a->t_data_r, .data_w = a->t_data_w,
		.ctl_ino = a->ctl_ino, .data_ino = a->data_ino,
		.token = a->token, .page = page, .page_len = page_len,
	};

	return inject_bootstrap_text(buf, cap, &b);
}

static int write_bootstrap(struct attach *a, raddr_t page, raddr_t *text,
			   struct trm_err *err)
{
	char buf[PAGE_SCRATCH_OFF - PAGE_TEXT_OFF];
	int n, rc;

	n = inject_bootstrap_for(a, page, PAGE_LEN, buf, sizeof(buf));
	if (n < 0)
		return trm_err_set(err, n, "bootstrap text too long");
	rc = target_write_mem(a->pid, page + PAGE_TEXT_OFF, buf, (size_t)n + 1);
	if (rc < 0)
		return trm_err_set(err, rc, "writing to the target: %s", strerror(-rc));
	*text = page + PAGE_TEXT_OFF;
	return 0;
}

int inject_place_bootstrap(struct ptrace_thread *t, struct attach *a,
			   raddr_t *page, int *created, raddr_t *text,
			   struct trm_err *err)
{
	int rc = inject_map_and_create(t, a, page, created, err);

	if (rc == 0)
		rc = inject_stage(a, "remote", err);
	if (rc == 0)
		rc = write_bootstrap(a, *page, text, err);
	return rc;
}
