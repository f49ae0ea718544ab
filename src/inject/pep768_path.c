/* pep768_path.c - the PEP 768 path (CPython 3.14+): a thread running
 * Python is seized only for the remote syscalls that make the page, the
 * memfds and the pipes; once its registers are back, the interpreter is
 * asked (pep768.c writes the request into its thread state) to run the
 * bootstrap from the script's memfd at its next eval-breaker check.  A
 * request not taken within 500 ms is withdrawn and the caller falls back
 * to ptrace (pending call, hijack). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>

#include "inject_int.h"
#include "pep768.h"
#include "trmtop/target.h"

/* A thread of the main interpreter that is running (state R), main
 * first; 0 if none. */
static pid_t running_python_thread(struct attach *a)
{
	pid_t tids[256];
	size_t n = 0, i;
	struct target_status st;
	pid_t best = 0;

	if (pep768_list_threads(a->pid, a->ep, &a->tgt->py, tids, 256, &n, NULL) < 0 &&
	    n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (target_read_status(a->pid, tids[i], &st, NULL) < 0 || st.state != 'R')
			continue;
		if (tids[i] == a->pid)
			return tids[i];
		if (!best)
			best = tids[i];
	}
	return best;
}

/* Through the held thread t: the page (*page while it is mapped), the
 * memfd and pipes if none yet, and the script's memfd; then the page is
 * unmapped again. */
static int make_script(struct ptrace_thread *t, struct attach *a, raddr_t *page,
		       struct trm_err *err)
{
	int64_t r;
	int rc, page_undo, page_undo_ok;

	page_undo = t->nundo;
	rc = inject_map_page(t, a, page, err);
	page_undo_ok = t->nundo > page_undo; /* its munmap step was pushed */
	if (rc == 0 && !a->have_res)
		rc = inject_setup_resources(t, a, *page, err);
	if (rc == 0 && a->t_script < 0)
		rc = inject_setup_script(t, a, *page, err);
	if (rc < 0)
		return rc;
	/* the page is unmapped next, by us: its undo step goes first (a
	 * second munmap could hit whatever is mapped there by then) */
	if (page_undo_ok ? ptrace_undo_drop(t, page_undo) < 0 : 0)
		ptrace_undo_truncate(t, 0);
	(void)inject_rsys(t, a, SYS_munmap, *page, PAGE_LEN, 0, 0, 0, 0, &r, NULL);
	*page = 0;
	return 0;
}

/* Write the request for thread tid.  0, or -TRM_EUNSAFE (not written:
 * ptrace instead). */
static int request(struct attach *a, pid_t tid)
{
	struct trm_err rerr = { 0 };
	char path[64];
	int rc;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", a->t_script);
	rc = pep768_request(a->pid, a->ep, &a->tgt->py, tid, path, &rerr);
	if (rc < 0 && rc > -4096 && rc != -ESRCH && rc != -EINVAL && rc != -ENAMETOOLONG)
		a->script_taken = 1; /* a memory error: part of it may be written */
	if (rc < 0) {
		/* busy, or the thread state changed under us (threads come and
		 * go): ptrace instead.  Should part of the request have been
		 * written, a second run of the bootstrap does nothing. */
		inject_progress(a, "PEP 768 request on thread %d failed (%s); using ptrace",
				(int)tid, rerr.msg[0] ? rerr.msg : trm_strerror(rc));
		return -TRM_EUNSAFE;
	}
	a->script_taken = 1; /* until withdrawn */
	return 0;
}

/* The request is written: wait a little for the HELLO, and withdraw it
 * if it has not run (unless the thread has just taken it). */
static int await_run(struct attach *a, struct inject_conn *c, pid_t tid,
		     struct trm_err *err)
{
	int rc, wait = inject_remaining_ms(a->deadline);

	rc = inject_stage(a, "queued", err);
	if (rc < 0)
		return rc;
	inject_ensure_reader(a, c);
	rc = inject_wait_hello(a, c, wait < 500 ? wait : 500, err);
	if (rc == -TRM_EINTR)
		(void)pep768_cancel(a->pid, a->ep, &a->tgt->py, tid, NULL);
	if (rc != -TRM_ETIMEOUT)
		return rc;
	/* it did not run: withdraw, unless the thread has just taken it.  A
	 * thread that has ended in the meantime (its thread state is gone)
	 * never will. */
	rc = pep768_cancel(a->pid, a->ep, &a->tgt->py, tid, NULL);
	if (rc != -EALREADY) {
		/* withdrawn, or the thread is gone: it will not run now */
		if (rc == 0 || rc == -ESRCH)
			a->script_taken = 0;
		return -TRM_EUNSAFE;
	}
	rc = inject_wait_hello(a, c, inject_remaining_ms(a->deadline) + 1000, err);
	if (rc == -TRM_ETIMEOUT)
		trm_err_set(err, rc, "pid %d: thread %d took the remote-exec request "
			    "but the bootstrap did not answer", (int)a->pid, (int)tid);
	return rc;
}

int inject_path_pep768(struct attach *a, struct inject_conn *c,
		       struct trm_err *err)
{
	struct ptrace_thread t;
	raddr_t page = 0;
	pid_t tid;
	int rc;

	tid = running_python_thread(a);
	if (!tid)
		return -TRM_EUNSAFE;
	rc = inject_seize(&t, a, tid, err);
	if (rc < 0)
		return rc;
	rc = inject_stage(a, "seized", err);
	if (rc == 0)
		rc = make_script(&t, a, &page, err);
	if (rc == 0)
		rc = inject_stage(a, "remote", err);
	if (rc == 0) {
		/* The request is written with the thread still held, after its
		 * own registers are back (a death in between leaves the fds;
		 * one after it leaves the request, which runs the bootstrap):
		 * handed over */
		ptrace_undo_truncate(&t, 0);
		rc = ptrace_restore(&t, err);
	}
	if (rc == 0)
		rc = request(a, tid);
	inject_let_go(&t, a, rc < 0 && rc != -TRM_EUNSAFE, 0, page);
	if (rc < 0)
		return rc;
	c->path = "PEP 768 remote exec";
	c->via_tid = tid;
	rc = await_run(a, c, tid, err);
	return rc < 0 ? rc : INJECT_CONNECTED;
}
