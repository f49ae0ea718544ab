/* pending.c - the pending-call path: the main thread, seized at a place
 * where Python may run (stepped out of the allocator, the loader, the
 * GIL's locks ...), queues Py_AddPendingCall(PyRun_SimpleString, text) as
 * one remote call; the interpreter runs the bootstrap at its next check
 * of the eval breaker, which a main thread running Python reaches in
 * milliseconds.  The queued call owns the page and the fds from then on
 * (it cannot be dequeued: reclaim leaves it a harmless text instead). */
#include "config.h"

#include "inject_int.h"

/* Step the held main thread out of code where Python must not run (at
 * most 50 brief resumes). */
static int step_to_safe_pc(struct ptrace_thread *t, struct attach *a,
			   struct trm_err *err)
{
	int rc, tries;

	for (tries = 0; inject_unsafe_pc(a, ptrace_saved_pc(t)) && tries < 50; tries++) {
		rc = ptrace_resume_briefly(t, 500, SEIZE_TIMEOUT_MS, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int inject_path_pending(struct attach *a, struct inject_conn *c,
			struct trm_err *err)
{
	struct ptrace_thread t;
	raddr_t page = 0, text;
	uint64_t ret = 0;
	uint64_t args[2];
	int rc, created = 0;

	rc = inject_seize(&t, a, a->pid, err);
	if (rc < 0)
		return rc;
	rc = inject_stage(a, "seized", err);
	if (rc == 0)
		rc = step_to_safe_pc(&t, a, err);
	if (rc == 0)
		rc = inject_place_bootstrap(&t, a, &page, &created, &text, err);
	if (rc < 0)
		goto out;
	args[0] = a->sym.run_simple;
	args[1] = text;
	/* queued, the bootstrap owns the page and the fds; a call that fails
	 * is undone the ordinary way below */
	ptrace_undo_truncate(&t, 0);
	rc = ptrace_remote_call(&t, a->sym.add_pending, args, 2,
				page + PAGE_TEXT_OFF - 64, CALL_TIMEOUT_MS, &ret, err);
	if (rc == -TRM_ETIMEOUT || (rc < 0 && t.in_call)) {
		/* it may or may not be queued: leave it, it checks for us */
		a->queued = 1;
		a->queued_page = page;
		goto out;
	}
	if (rc == 0 && (int)ret != 0)
		rc = trm_err_set(err, -TRM_EBUSY, "Py_AddPendingCall failed (queue full)");
	if (rc < 0)
		goto out;
	a->queued = 1;
	a->queued_page = page; /* the bootstrap unmaps it when it runs */
	c->path = "pending call";
	rc = ptrace_restore(&t, err);
	if (rc == 0)
		rc = inject_stage(a, "queued", err);
out:
	/* once queued, the call owns what was made */
	inject_let_go(&t, a, rc < 0 && !a->queued, created, page);
	return rc < 0 ? rc : INJECT_QUEUED;
}
