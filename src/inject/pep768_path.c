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

/* What a failed request says, before ptrace is used instead. */
static int request_failed(struct attach *a, pid_t tid, int rc,
			  const struct trm_err *rerr)
{
	/* busy, or the thread state changed under us (threads come and
	 * go): ptrace instead.  Should part of the request have been
	 * written, a second run of the bootstrap does nothing. */
	inject_progress(a, "PEP 768 request on thread %d failed (%s); using ptrace",
			(int)tid, rerr->msg[0] ? rerr->msg : trm_strerror(rc));
	return -TRM_EUNSAFE;
}

/* Everything of the request for thread tid but its writes, while the
 * resources are still covered by the held thread's undo steps.  0, or
 * -TRM_EUNSAFE (ptrace instead). */
static int prepare(struct attach *a, pid_t tid, struct pep768_req *rq)
{
	struct trm_err rerr = { 0 };
	char path[64];
	int rc;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", a->t_script);
	rc = pep768_prepare(a->pid, a->ep, &a->tgt->py, tid, path, rq, &rerr);
	return rc < 0 ? request_failed(a, tid, rc, &rerr) : 0;
}

/* The writes of the request, after the hand-over.  0, or -TRM_EUNSAFE
 * (ptrace instead). */
static int commit(struct attach *a, pid_t tid, const struct pep768_req *rq)
{
	struct trm_err rerr = { 0 };
	int rc = pep768_commit(rq, &rerr);

	a->script_taken = 1; /* until withdrawn; after an error part of it may
			      * be written */
	return rc < 0 ? request_failed(a, tid, rc, &rerr) : 0;
}

/* Write the request and hand the resources over to it, so that a trmtop
 * that dies at any instant leaves either the request (which runs the
 * bootstrap, which owns them) or neither it nor them.  The request is
 * prepared first (reads: the slow part) while the held thread's undo
 * steps still cover the resources; then one more step is pushed, run
 * first: pthread_spin_init(&debugger_pending_call, 0), which withdraws
 * the request.  The thread runs its steps before any Python code of its
 * own, so it cannot have taken the request by then.  The request is
 * written on that chain, then the steps are dropped and the thread's
 * registers written back (until then, a death runs the chain: request
 * withdrawn, resources undone).  Without that step (no
 * pthread_spin_init in the C library, the undo list full), the older
 * order: registers back, then the writes, a few microseconds in which a
 * death leaves the resources. */
static int hand_over(struct ptrace_thread *t, struct attach *a, pid_t tid,
		     const struct pep768_req *rq, struct trm_err *err)
{
	int n = t->nundo, rc, armed = 0, prc = 0;

	if (a->sym.libc_spin_init && n > 0 &&
	    ptrace_undo_push(t, a->sym.libc_spin_init, 2, PTRACE_ARG_VALUE,
			     rq->pending_at, 0, 0) >= 0) {
		if (ptrace_undo_arm(t, NULL) == 0)
			armed = 1;
		else
			ptrace_undo_truncate(t, n);
	}
	if (armed)
		prc = commit(a, tid, rq); /* an error: part of it may be written */
	ptrace_undo_truncate(t, 0);
	rc = ptrace_restore(t, err);
	if (rc < 0)
		return rc;
	if (prc < 0)
		return prc;
	return armed ? 0 : commit(a, tid, rq);
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
	struct pep768_req rq;
	raddr_t page = 0;
	pid_t tid;
	int rc, prc = 0;

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
	if (rc == 0)
		prc = prepare(a, tid, &rq);
	if (rc == 0 && prc < 0) {
		/* no request can be made (a thread list that changed under us,
		 * one pending already): the held thread undoes what this
		 * attempt made, by its own steps once released, and the ptrace
		 * path that follows makes its own (handed over now, they would
		 * be nobody's until that path's thread covers them: a trmtop
		 * killed in between left them all) */
		inject_let_go(&t, a, 1, 1, page);
		return prc;
	}
	if (rc == 0)
		rc = hand_over(&t, a, tid, &rq, err);
	inject_let_go(&t, a, rc < 0 && rc != -TRM_EUNSAFE, 0, page);
	if (rc < 0)
		return rc;
	c->path = "PEP 768 remote exec";
	c->via_tid = tid;
	rc = await_run(a, c, tid, err);
	return rc < 0 ? rc : INJECT_CONNECTED;
}
