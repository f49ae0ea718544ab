/* hijack.c - the hijack path: a thread parked in a syscall (its wait
 * interrupted, the GIL released, running Python further up its stack, in
 * no lock: frames.c) is made to run PyGILState_Ensure ->
 * PyRun_SimpleString(bootstrap) -> PyGILState_Release as remote calls
 * (one guarded chain when the gadgets were found, which the thread
 * finishes on its own should trmtop die), then restored: its syscall
 * restarts as if nothing happened.  Used when the main thread runs no
 * Python (blocked in C, in a syscall) so no pending call is run soon. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "inject_int.h"
#include "trmtop/target.h"

/* Did the stop interrupt a wait (the syscall will restart, or return
 * EINTR as epoll_wait does)?  A thread stopped at the end of a syscall
 * that completed — a futex wake in pthread_cond_signal, say — is not
 * parked: it may hold the lock it is about to release (the GIL's mutex in
 * drop_gil, seen to deadlock PyGILState_Ensure). */
static int interrupted_wait(long sret)
{
	return sret == -EINTR || sret == -512 /* ERESTARTSYS */ ||
	       sret == -513 /* ERESTARTNOINTR */ || sret == -514 /* ERESTARTNOHAND */ ||
	       sret == -516 /* ERESTART_RESTARTBLOCK */;
}

/* Is the held thread t usable: parked in a wait, on a safe stack, without
 * the GIL?  0, -TRM_EUNSAFE (why says why not), or an error. */
static int usable(struct ptrace_thread *t, struct attach *a, char *why,
		  size_t whylen, struct trm_err *err)
{
	uint64_t ret = 0;
	long nr, sret;
	int rc;

	nr = ptrace_saved_syscall(t, &sret);
	if (nr < 0 || !interrupted_wait(sret)) {
		snprintf(why, whylen, "it is not blocked in a syscall");
		return -TRM_EUNSAFE;
	}
	if (!inject_safe_stack(a, t, why, whylen))
		return -TRM_EUNSAFE;
	rc = inject_stage(a, "hijack", err);
	if (rc < 0)
		return rc;
	rc = ptrace_remote_call(t, a->sym.gil_check, NULL, 0, 0, CALL_TIMEOUT_MS,
				&ret, err);
	if (rc < 0)
		return rc;
	if ((int)ret != 0) {
		snprintf(why, whylen, "it holds the GIL");
		return -TRM_EUNSAFE;
	}
	return 0;
}

/* Run the bootstrap at text on the held thread t (on its own stack):
 * PyGILState_Check said 0, so Ensure returns PyGILState_UNLOCKED (1)
 * for Release.  *page is set to 0 once the bootstrap owns it (it unmaps
 * it when it runs). */
static int run_bootstrap(struct ptrace_thread *t, struct attach *a,
			 raddr_t text, raddr_t *page, struct trm_err *err)
{
	uint64_t ret = 0, gstate = 0, arg;
	int rc, rc2;

	if (t->gadgets) {
		/* one guarded chain: should trmtop die in it, the thread
		 * still runs the bootstrap (which finds trmtop gone), lets the
		 * GIL go and restores itself */
		struct ptrace_step chain[3] = {
			{ a->sym.gil_ensure, 0 },
			{ a->sym.run_simple, text },
			{ a->sym.gil_release, 1 },
		};

		*page = 0;
		rc = ptrace_remote_chain(t, chain, 3, 0, GIL_TIMEOUT_MS, NULL, err);
		inject_trace(a, "gil-ensure-run-release");
		if (rc < 0 && t->in_call)
			a->queued = 1; /* it runs on, and checks for us */
		return rc;
	}
	rc = ptrace_remote_call(t, a->sym.gil_ensure, NULL, 0, 0, GIL_TIMEOUT_MS,
				&gstate, err);
	inject_trace(a, "gil-ensure");
	if (rc < 0)
		return rc;
	*page = 0;
	arg = text;
	rc = ptrace_remote_call(t, a->sym.run_simple, &arg, 1, 0, GIL_TIMEOUT_MS,
				&ret, err);
	inject_trace(a, "run");
	arg = gstate;
	rc2 = ptrace_remote_call(t, a->sym.gil_release, &arg, 1, 0, GIL_TIMEOUT_MS,
				 NULL, err);
	if (rc == 0)
		rc = rc2;
	if (rc == 0)
		inject_trace(a, "gil-release");
	return rc;
}

/* Hijack thread tid.  0 (the bootstrap has run), -TRM_EUNSAFE (why says
 * why not), or an error. */
static int hijack(struct attach *a, pid_t tid, char *why, size_t whylen,
		  struct trm_err *err)
{
	struct ptrace_thread t;
	raddr_t page = 0, text;
	int rc, created = 0;

	rc = inject_seize(&t, a, tid, err);
	if (rc < 0)
		return rc;
	rc = usable(&t, a, why, whylen, err);
	if (rc == 0)
		rc = inject_place_bootstrap(&t, a, &page, &created, &text, err);
	if (rc < 0)
		goto out;
	/* from here on the bootstrap owns the fds, and unmaps the page */
	created = 0;
	ptrace_undo_truncate(&t, 0);
	rc = run_bootstrap(&t, a, text, &page, err);
	if (rc == 0)
		rc = ptrace_restore(&t, err);
out:
	inject_let_go(&t, a, rc < 0, created, page);
	return rc;
}

int inject_path_hijack(struct attach *a, struct inject_conn *c,
		       struct trm_err *err)
{
	pid_t *tids = NULL;
	size_t n = 0, i;
	int rc;

	a->hijack_tried = 0;
	rc = target_list_threads(a->pid, &tids, &n, NULL);
	if (rc < 0)
		return target_alive(a->pid) ? -TRM_EUNSAFE
			: trm_err_set(err, -TRM_EEXITED, "pid %d: target exited during attach",
				      (int)a->pid);
	/* the main thread first (target_list_threads) */
	rc = -TRM_EUNSAFE;
	for (i = 0; i < n; i++) {
		struct target_syscall sc;
		char w[128] = "";

		if (target_read_syscall(a->pid, tids[i], &sc, NULL) < 0 ||
		    sc.running || sc.nr < 0)
			continue;
		a->hijack_tried++;
		rc = hijack(a, tids[i], w, sizeof(w), err);
		if (rc == 0) {
			c->path = "hijack";
			break;
		}
		if (rc != -TRM_EUNSAFE)
			break;
		if (tids[i] == a->pid || !a->why[0])
			snprintf(a->why, sizeof(a->why), "thread %d: %s", (int)tids[i], w);
		trm_err_clear(err);
		inject_progress(a, "not using thread %d: %s", (int)tids[i], w);
	}
	free(tids);
	return rc == 0 ? INJECT_RAN : rc;
}
