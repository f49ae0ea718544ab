/* ptrace.c - one thread of a target held with ptrace: seize, wait, save
 * and restore registers, remote calls (guarded by a signal frame, or the
 * old return to address 0 without gadgets), release. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arch/arch.h"
#include "trmtop/abort.h"
#include "trmtop/ptrace.h"
#include "trmtop/util.h"

#define SPIN_NS 300000u
/* chain words, signal frame, and an XSAVE image of up to 16 KiB: the
 * scratch buffer of a thread's call layouts, and the size of each of the
 * two stack areas its calls use */
#define IMG_MAX (PTRACE_XSTATE_MAX + 4096)

enum stop_kind {
	STOP_EVENT,   /* PTRACE_EVENT_STOP: interrupt or group stop */
	STOP_SIGNAL,  /* signal-delivery-stop, *sig tells which */
	STOP_SYSCALL, /* syscall stop (not used by us, but handled) */
	STOP_OTHER,
};

/* Wait for the next stop of t->tid.  timeout_ms < 0: no limit.  With
 * interruptible, an aborting signal to trmtop ends the wait with
 * -TRM_EINTR. */
static int wait_stop(struct ptrace_thread *t, int timeout_ms, int interruptible,
		     enum stop_kind *kind, int *sig)
{
	uint64_t start = util_now_ns();
	uint64_t deadline = timeout_ms < 0 ? 0
		: start + (uint64_t)timeout_ms * 1000000u;
	int status;

	for (;;) {
		pid_t r;
		/* drain before waitpid: a SIGCHLD read here belongs to a stop
		 * that waitpid sees; one that comes later wakes the poll */
		int aborted = trm_abort_check(t->abort) != 0;

		r = waitpid(t->tid, &status, __WALL | WNOHANG);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECHILD) {
				t->seized = t->stopped = 0;
				return -TRM_EEXITED;
			}
			return -errno;
		}
		if (r == t->tid) {
			if (WIFEXITED(status) || WIFSIGNALED(status)) {
				t->seized = t->stopped = 0;
				return -TRM_EEXITED;
			}
			if (!WIFSTOPPED(status))
				continue;
			t->stopped = 1;
			*sig = WSTOPSIG(status);
			if ((status >> 16) == PTRACE_EVENT_STOP)
				*kind = STOP_EVENT;
			else if (*sig == (SIGTRAP | 0x80))
				*kind = STOP_SYSCALL;
			else if ((status >> 16) != 0)
				*kind = STOP_OTHER;
			else
				*kind = STOP_SIGNAL;
			return 0;
		}
		if (interruptible && aborted)
			return -TRM_EINTR;
		/* a stop usually follows within microseconds: ask again for a
		 * short while before sleeping (a sleeping CPU takes long to
		 * wake, on a VM especially) */
		if (util_now_ns() - start < SPIN_NS)
			continue;
		{
			int wait_ms = 1, sfd = trm_abort_fd(t->abort);
			struct pollfd pfd = { sfd, POLLIN, 0 };

			if (timeout_ms >= 0) {
				uint64_t now = util_now_ns();

				if (now >= deadline)
					return -TRM_ETIMEOUT;
				if (sfd >= 0) {
					wait_ms = (int)((deadline - now) / 1000000u) + 1;
					if (wait_ms > 100)
						wait_ms = 100;
				}
			} else if (sfd >= 0) {
				wait_ms = 100;
			}
			if (sfd >= 0) {
				poll(&pfd, 1, wait_ms);
			} else {
				struct timespec ts = { 0, 200000 };

				nanosleep(&ts, NULL);
			}
		}
	}
}

static void hold_signal(struct ptrace_thread *t, int sig)
{
	int i;

	for (i = 0; i < t->nsigs; i++)
		if (t->sigs[i] == sig)
			return; /* standard signals do not queue either */
	if (t->nsigs < PTRACE_MAX_PENDING_SIGS)
		t->sigs[t->nsigs++] = sig;
}

static int resume(struct ptrace_thread *t, int request)
{
	if (ptrace(request, t->tid, 0, 0) < 0)
		return -errno;
	t->stopped = 0;
	return 0;
}

/* Wait until the thread is in an interrupt/event stop, holding any signal
 * that arrives first. */
static int wait_event_stop(struct ptrace_thread *t, int timeout_ms,
			   int interruptible)
{
	enum stop_kind kind;
	int sig, rc;

	for (;;) {
		rc = wait_stop(t, timeout_ms, interruptible, &kind, &sig);
		if (rc < 0)
			return rc;
		if (kind == STOP_EVENT)
			return 0;
		if (kind == STOP_SIGNAL)
			hold_signal(t, sig);
		rc = resume(t, PTRACE_CONT);
		if (rc < 0)
			return rc;
	}
}

/* The signal a guarded call raises in its last step, so that trmtop
 * need not stop at every syscall of the call: one the process ignores
 * (their default action) and has no handler for, and the thread does not
 * block.  Untraced (trmtop dead), the kernel drops it when it is sent;
 * traced, it is reported as any signal is.  0 if none qualifies. */
static int pick_notify_sig(const struct target_status *st)
{
	static const int cand[] = { SIGURG, SIGWINCH, SIGCHLD };
	size_t i;

	for (i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		uint64_t bit = (uint64_t)1 << (cand[i] - 1);

		if (!(st->sigcgt & bit) && !(st->sigblk & bit))
			return cand[i];
	}
	return 0;
}

/* What a guarded call needs of the held thread's signal state, read in
 * its current stop: the mask the call's signal frame restores, and the
 * notify signal (one the thread does not block now).  Read again at every
 * new stop of the thread's own (ptrace_resume_briefly): a mask read at an
 * earlier stop may not be the thread's any more -- glibc's pthread_create
 * blocks all signals around the clone, and a chain whose notify signal is
 * blocked runs on through its undo steps (unmapping the page just mapped)
 * before the signal frame unblocks it. */
static void read_mask(struct ptrace_thread *t)
{
	struct target_status st;
	long nr = arch_in_syscall(t->saved, NULL);

	t->have_sigmask = 0;
	t->notify_sig = 0;
	t->mask_pending = 0;
	if (target_read_status(t->pid, t->tid, &st, NULL) == 0) {
		/* the signal frame of a guarded call restores this mask */
		t->sigmask = st.sigblk;
		t->have_sigmask = 1;
		t->nspid = st.nstgid > 0 ? st.nstgid : t->pid;
		t->notify_sig = pick_notify_sig(&st);
	}
	/* ppoll & co. run with a mask of their own, which SigBlk shows until
	 * the thread is resumed: the first call steps syscalls instead of
	 * raising, and reads the mask again */
	if (nr == SYS_ppoll || nr == SYS_pselect6 || nr == SYS_epoll_pwait ||
	    nr == SYS_epoll_pwait2 || nr == SYS_rt_sigsuspend) {
		t->mask_pending = 1;
		t->notify_sig = 0;
	}
}

int ptrace_seize(struct ptrace_thread *t, pid_t pid, pid_t tid,
		 struct trm_abort *ab, int timeout_ms, struct trm_err *err)
{
	size_t sz = arch_regs_size();
	int rc;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->tid = tid;
	t->abort = ab;
	t->t_seize = util_now_ns();
	t->saved = calloc(1, sz);
	t->work = calloc(1, sz);
	t->img = malloc(IMG_MAX);
	if (!t->saved || !t->work || !t->img) {
		rc = trm_err_set(err, -ENOMEM, "ptrace: out of memory");
		goto fail;
	}
	if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(long)PTRACE_O_TRACESYSGOOD) < 0) {
		rc = -errno;
		trm_err_set(err, rc, "ptrace seize %d: %s", (int)tid, strerror(errno));
		goto fail;
	}
	t->seized = 1;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0) {
		rc = -errno;
		trm_err_set(err, rc, "ptrace interrupt %d: %s", (int)tid, strerror(errno));
		goto fail;
	}
	rc = wait_event_stop(t, timeout_ms, 1);
	if (rc < 0) {
		trm_err_set(err, rc, "waiting for thread %d to stop: %s", (int)tid,
			    trm_strerror(rc));
		goto fail;
	}
	rc = arch_get_regs(tid, t->saved);
	if (rc < 0) {
		trm_err_set(err, rc, "reading registers of %d: %s", (int)tid,
			    strerror(-rc));
		goto fail;
	}
	memcpy(t->work, t->saved, sz);
	t->area = -1;
	read_mask(t);
	return 0;
fail:
	ptrace_release(t);
	return rc;
}

/* Write the saved registers back: as they are in an interrupt or
 * signal stop, where the kernel's restart logic runs on resume; made
 * right for a syscall-entry stop, where the kernel runs orig_rax.  The
 * FP state first: should trmtop die between the two writes, the general
 * registers still lead the thread through its guarded call's frame. */
static int restore_regs(struct ptrace_thread *t)
{
	int rc;

	if (t->fp_dirty) {
		rc = arch_set_ext_regs(t->tid, t->saved);
		if (rc < 0)
			return rc;
	}
	if (t->at_entry) {
		arch_regs_for_entry_stop(t->saved, t->restart_lost, t->work);
		rc = arch_set_regs(t->tid, t->work, 0);
	} else if (t->restart_lost) {
		/* the kernel's restart logic runs on resume: a restart block
		 * a call's syscall may have replaced becomes -EINTR */
		arch_regs_restart_lost(t->saved, t->work);
		rc = arch_set_regs(t->tid, t->work, 0);
	} else {
		rc = arch_set_regs(t->tid, t->saved, 0);
	}
	if (rc < 0)
		return rc;
	t->dirty = t->fp_dirty = 0;
	t->undo_armed = 0;
	t->area = -1;
	return 0;
}

int ptrace_restore(struct ptrace_thread *t, struct trm_err *err)
{
	int rc;

	if (t->in_call)
		return trm_err_set(err, -EBUSY, "a remote call of thread %d is "
				   "still running", (int)t->tid);
	if (!t->dirty)
		return 0;
	rc = restore_regs(t);
	if (rc < 0)
		return trm_err_set(err, rc, "restoring registers of %d: %s",
				   (int)t->tid, strerror(-rc));
	return 0;
}

int ptrace_release(struct ptrace_thread *t)
{
	int rc = 0, i, first = 0;

	if (t->seized) {
		if (!t->stopped) {
			/* a detach needs a stop */
			if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) == 0)
				(void)wait_event_stop(t, 2000, 0);
		}
		if (t->seized && t->stopped) {
			/* a guarded call given up on finishes and restores
			 * the thread itself, and an armed undo chain undoes
			 * what trmtop made first: their registers are left */
			if (!t->in_call && t->nundo > 0 &&
			    ptrace_undo_arm(t, NULL) < 0)
				t->nundo = 0; /* cannot arm: restore instead */
			if (t->dirty && !t->in_call && t->nundo == 0)
				(void)restore_regs(t);
			/* a signal passed to PTRACE_DETACH is delivered only
			 * from a signal-delivery stop, and we hold none */
			if (ptrace(PTRACE_DETACH, t->tid, 0, 0) < 0)
				rc = -errno;
			for (i = first; i < t->nsigs; i++)
				syscall(SYS_tgkill, t->pid, t->tid, t->sigs[i]);
		} else if (t->seized) {
			/* not stoppable: the tracee exited or we are lost */
			if (ptrace(PTRACE_DETACH, t->tid, 0, 0) < 0)
				rc = -errno;
		}
	}
	if (t->t_seize)
		t->ns_held = util_now_ns() - t->t_seize;
	t->t_seize = 0;
	t->seized = t->stopped = 0;
	t->nsigs = 0;
	t->at_entry = t->in_call = 0;
	t->nundo = t->undo_armed = 0;
	t->area = -1;
	free(t->saved);
	free(t->work);
	free(t->img);
	t->saved = t->work = NULL;
	t->img = NULL;
	return rc;
}

int ptrace_resume_briefly(struct ptrace_thread *t, int run_us, int timeout_ms,
			  struct trm_err *err)
{
	struct timespec ts = { 0, (long)run_us * 1000 };
	int rc;

	if (t->dirty)
		return trm_err_set(err, -EINVAL, "resume with changed registers");
	rc = resume(t, PTRACE_CONT);
	if (rc < 0)
		return trm_err_set(err, rc, "ptrace cont: %s", strerror(-rc));
	nanosleep(&ts, NULL);
	if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0)
		return trm_err_set(err, -errno, "ptrace interrupt: %s", strerror(errno));
	rc = wait_event_stop(t, timeout_ms, 1);
	if (rc < 0)
		return trm_err_set(err, rc, "waiting for thread %d: %s",
				   (int)t->tid, trm_strerror(rc));
	rc = arch_get_regs(t->tid, t->saved);
	if (rc < 0)
		return trm_err_set(err, rc, "reading registers: %s", strerror(-rc));
	memcpy(t->work, t->saved, arch_regs_size());
	t->at_entry = 0;
	/* a new stop of the thread's own: its own restart block, and
	 * perhaps another signal mask */
	t->restart_lost = 0;
	read_mask(t);
	return 0;
}

raddr_t ptrace_saved_pc(const struct ptrace_thread *t)
{
	return arch_pc(t->saved);
}

raddr_t ptrace_saved_sp(const struct ptrace_thread *t)
{
	return arch_sp(t->saved);
}

long ptrace_saved_syscall(const struct ptrace_thread *t, long *ret)
{
	return arch_in_syscall(t->saved, ret);
}

void ptrace_saved_dwarf_regs(const struct ptrace_thread *t, uint64_t *regs)
{
	arch_dwarf_regs(t->saved, regs);
}

/* From a signal-delivery-stop (the fault that ends a remote call), move
 * the thread to an interrupt stop with the signal discarded: should trmtop
 * die now, the kernel resumes the thread without delivering anything. */
static int park(struct ptrace_thread *t)
{
	if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0)
		return -errno;
	if (ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
		return -errno;
	t->stopped = 0;
	return wait_event_stop(t, 2000, 0);
}

/* A remote call without gadgets: it returns to address 0, and the SIGSEGV
 * stop that follows is its end.  Should trmtop die while it runs, the
 * thread faults.  With keeps_fp, fn is known to leave the FP/extended
 * state alone (libc's syscall()), so only the general registers need
 * restoring after it. */
static int unguarded_call(struct ptrace_thread *t, raddr_t fn,
		       const uint64_t *args, int nargs, raddr_t sp_top,
		       int timeout_ms, int keeps_fp, uint64_t *ret,
		       struct trm_err *err)
{
	uint64_t stackargs[2] = { 0, 0 };
	enum stop_kind kind;
	raddr_t sp;
	int rc, sig;

	if (!t->stopped)
		return trm_err_set(err, -EINVAL, "remote call on a running thread");
	memcpy(t->work, t->saved, arch_regs_size());
	sp = arch_setup_call(t->work, fn, args, nargs, sp_top);
	/* return address 0, then a 7th (stack) argument if given */
	if (nargs > 6)
		stackargs[1] = args[6];
	rc = target_write_mem(t->pid, sp, stackargs, sizeof(stackargs));
	if (rc < 0)
		return trm_err_set(err, rc, "writing the call frame: %s", strerror(-rc));
	t->dirty = 1;
	if (!keeps_fp)
		t->fp_dirty = 1;
	rc = arch_set_regs(t->tid, t->work, 0);
	if (rc < 0)
		return trm_err_set(err, rc, "setting registers: %s", strerror(-rc));
	rc = resume(t, PTRACE_CONT);
	if (rc < 0)
		return trm_err_set(err, rc, "ptrace cont: %s", strerror(-rc));
	for (;;) {
		rc = wait_stop(t, timeout_ms, 0, &kind, &sig);
		if (rc == -TRM_ETIMEOUT) {
			/* withdraw: stop it wherever it waits and restore */
			if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) == 0 &&
			    wait_event_stop(t, 2000, 0) == 0)
				(void)ptrace_restore(t, NULL);
			return trm_err_set(err, -TRM_ETIMEOUT,
					   "remote call did not return within %d ms",
					   timeout_ms);
		}
		if (rc < 0)
			return trm_err_set(err, rc, "remote call: %s", trm_strerror(rc));
		if (kind == STOP_SIGNAL && sig == SIGSEGV) {
			rc = arch_get_gp_regs(t->tid, t->work);
			if (rc < 0)
				return trm_err_set(err, rc, "reading registers: %s",
						   strerror(-rc));
			if (arch_pc(t->work) == 0)
				break;
			/* a real fault inside the call: give up on it */
			(void)ptrace_restore(t, NULL);
			(void)park(t);
			return trm_err_set(err, -EFAULT,
					   "remote call faulted at %#llx",
					   (unsigned long long)arch_pc(t->work));
		}
		if (kind == STOP_SIGNAL && (sig == SIGABRT || sig == SIGBUS ||
					    sig == SIGILL || sig == SIGFPE)) {
			/* the call hit a fatal error: nothing to return to;
			 * the signal is delivered on release, as it would be */
			hold_signal(t, sig);
			return trm_err_set(err, -EFAULT,
					   "the target failed inside a remote call (%s)",
					   strsignal(sig));
		}
		if (kind == STOP_SIGNAL)
			hold_signal(t, sig);
		rc = resume(t, PTRACE_CONT);
		if (rc < 0)
			return trm_err_set(err, rc, "ptrace cont: %s", strerror(-rc));
	}
	if (ret)
		*ret = arch_call_result(t->work);
	/* between calls the thread holds its own registers and sits in an
	 * interrupt stop, so trmtop may die at any moment between steps */
	rc = ptrace_restore(t, err);
	if (rc == 0)
		rc = park(t);
	if (rc < 0)
		return trm_err_set(err, rc, "parking thread %d: %s", (int)t->tid,
				   trm_strerror(rc));
	return 0;
}

/* ---- guarded calls --------------------------------------------------- */

void ptrace_scan_gadgets(const uint8_t *code, size_t len, raddr_t addr,
			 struct ptrace_gadgets *g)
{
	arch_scan_gadgets(code, len, addr, g);
}

int ptrace_gadgets_check(pid_t pid, const struct ptrace_gadgets *g)
{
	static const enum arch_gadget_kind kinds[] = {
		ARCH_G_SIGRETURN, ARCH_G_STORE, ARCH_G_POP_ARG, ARCH_G_RET,
	};
	uint8_t code[ARCH_GADGET_MAX];
	size_t i;

	static const enum arch_gadget_kind optional[] = {
		ARCH_G_POP_ARG2, ARCH_G_POP_ARG3,
	};

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		raddr_t a = arch_gadget_addr(g, kinds[i]);

		if (!a || target_read_mem(pid, a, code, sizeof(code)) < 0 ||
		    !arch_check_gadget(g, kinds[i], code))
			return 0;
	}
	for (i = 0; i < sizeof(optional) / sizeof(optional[0]); i++) {
		raddr_t a = arch_gadget_addr(g, optional[i]);

		if (a && (target_read_mem(pid, a, code, sizeof(code)) < 0 ||
			  !arch_check_gadget(g, optional[i], code)))
			return 0;
	}
	return 1;
}

/* The thread runs a guarded call we no longer wait for: it finishes and
 * restores itself (it needs no help from us, and gets none: release
 * detaches without writing its registers). */
static int give_up_call(struct ptrace_thread *t, int rc, int timeout_ms,
			struct trm_err *err)
{
	t->in_call = 1;
	if (rc == -TRM_ETIMEOUT)
		return trm_err_set(err, rc, "remote call did not return within "
				   "%d ms (it finishes on its own)", timeout_ms);
	return trm_err_set(err, rc, "remote call: %s", trm_strerror(rc));
}

/* Is the signal t stopped with the one its own call raised? */
static int own_notify(struct ptrace_thread *t, int sig)
{
	siginfo_t si;

	if (!t->notify_sig || sig != t->notify_sig)
		return 0;
	if (ptrace(PTRACE_GETSIGINFO, t->tid, 0, &si) < 0)
		return 0;
	return si.si_code == SI_TKILL && si.si_pid == t->nspid;
}

/* The two stack areas of calls on the thread's own stack, below its red
 * zone: each chain goes to the one the thread's registers are not on, so
 * that writing it never changes a chain the thread may still run. */
#define AREA_SIZE ((raddr_t)IMG_MAX)

static raddr_t area_top(const struct ptrace_thread *t, int area)
{
	return arch_sp(t->saved) - 4096 - (raddr_t)area * AREA_SIZE;
}

static int free_area(const struct ptrace_thread *t)
{
	return t->area == 0 ? 1 : 0;
}

/* Lay c out (below c->top, in stack area `area`; -1: the caller's own
 * stack), write it into the target, then put the held thread's registers
 * on it.  The frame first: from the moment the registers point into the
 * chain, the thread can run it without us.  img tells where the result
 * and the final stack pointer are. */
static int enter_chain(struct ptrace_thread *t, struct arch_call *c, int area,
		       struct arch_image *img, struct trm_err *err)
{
	int rc;

	img->buf = t->img;
	img->cap = IMG_MAX;
	rc = arch_layout_call(t->saved, t->sigmask, t->gadgets, c, t->work, img);
	if (rc < 0)
		return trm_err_set(err, rc, "laying out the call frame: %s",
				   strerror(-rc));
	rc = target_write_mem(t->pid, img->base, img->buf, img->len);
	if (rc < 0)
		return trm_err_set(err, rc, "writing the call frame: %s",
				   strerror(-rc));
	rc = arch_set_regs(t->tid, t->work, 0);
	if (rc < 0)
		return trm_err_set(err, rc, "setting registers: %s", strerror(-rc));
	t->dirty = 1;
	t->area = area;
	return 0;
}

/* Put the held thread on registers that run its undo steps and then
 * restore it (in the free stack area). */
static int arm(struct ptrace_thread *t, struct trm_err *err)
{
	struct arch_call c = { 0 };
	struct arch_image img;
	int area = free_area(t), rc;

	c.undo = t->undo;
	c.nundo = t->nundo;
	c.top = area_top(t, area);
	rc = enter_chain(t, &c, area, &img, err);
	if (rc < 0)
		return rc;
	t->undo_armed = t->nundo;
	t->armed_gen = t->undo_gen;
	return 0;
}

int ptrace_undo_arm(struct ptrace_thread *t, struct trm_err *err)
{
	if (!t->stopped || t->in_call || t->nundo == 0 ||
	    (t->undo_armed && t->armed_gen == t->undo_gen))
		return 0;
	return arm(t, err);
}

/* After a call, with the thread in its notify stop: hold it on registers
 * that undo what trmtop made and restore it (if anything is to undo), or
 * on its own; then move it to an interrupt stop with the signal dropped. */
static int settle(struct ptrace_thread *t, struct trm_err *err)
{
	int rc;

	if (t->nundo > 0) {
		rc = arm(t, err);
		if (rc < 0)
			return rc;
	} else {
		rc = restore_regs(t);
		if (rc < 0)
			return trm_err_set(err, rc, "restoring registers of %d: %s",
					   (int)t->tid, strerror(-rc));
	}
	rc = park(t);
	if (rc < 0)
		return trm_err_set(err, rc, "parking thread %d: %s", (int)t->tid,
				   trm_strerror(rc));
	return 0;
}

/* A remote call that restores the thread itself should nobody be there
 * when it returns (arch_layout_call), undoing on the way what trmtop made
 * and has not handed over (the undo steps).  trmtop lets the thread run
 * until the call's last step raises the notify signal; in that stop it
 * reads the result and settles the thread (settle).  Without a notify
 * signal it steps every syscall of the call with PTRACE_SYSCALL up to the
 * rt_sigreturn, and there writes the saved registers back instead, with
 * the syscall-entry stop's rules. */
static int guarded_call(struct ptrace_thread *t, const struct ptrace_step *steps,
			int nsteps, const uint64_t *args, int nargs,
			raddr_t sp_top, int timeout_ms, int keeps_fp,
			int interruptible, uint64_t *ret, struct trm_err *err)
{
	const struct ptrace_gadgets *g = t->gadgets;
	int notify = g->raise && t->notify_sig ? t->notify_sig : 0;
	int mode = notify ? PTRACE_CONT : PTRACE_SYSCALL;
	struct arch_call c = { 0 };
	struct arch_image img;
	enum stop_kind kind;
	uint64_t result = 0;
	int rc, sig, i, area;

	if (!t->stopped || t->in_call)
		return trm_err_set(err, -EINVAL, "remote call on a running thread");
	c.steps = steps;
	c.nsteps = nsteps;
	c.args = args;
	c.nargs = nargs;
	c.notify_sig = notify;
	c.undo = t->undo;
	c.nundo = notify ? t->nundo : 0;
	area = sp_top ? -1 : free_area(t);
	c.top = sp_top ? sp_top : area_top(t, area);
	rc = enter_chain(t, &c, area, &img, err);
	if (rc < 0)
		return rc;
	t->undo_armed = 0;
	if (!keeps_fp)
		t->fp_dirty = 1;
	rc = resume(t, mode);
	if (rc < 0)
		return trm_err_set(err, rc, "ptrace cont: %s", strerror(-rc));
	t->at_entry = 0;
	for (;;) {
		rc = wait_stop(t, timeout_ms, interruptible, &kind, &sig);
		if (rc == -TRM_ETIMEOUT || rc == -TRM_EINTR)
			return give_up_call(t, rc, timeout_ms, err);
		if (rc < 0)
			return trm_err_set(err, rc, "remote call: %s", trm_strerror(rc));
		if (kind == STOP_SIGNAL && own_notify(t, sig))
			break;
		if (kind == STOP_SYSCALL) {
			rc = arch_get_gp_regs(t->tid, t->work);
			if (rc < 0)
				return trm_err_set(err, rc, "reading registers: %s",
						   strerror(-rc));
			if (arch_at_sigreturn(t->work, g, img.ret_sp))
				break;
			if (arch_restart_block_result(t->work))
				t->restart_lost = 1;
		} else if (kind == STOP_SIGNAL &&
			   (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL ||
			    sig == SIGFPE || sig == SIGABRT)) {
			/* a fault inside the call: delivered on release, as
			 * it would be; the call is not ours to finish */
			hold_signal(t, sig);
			t->in_call = 1;
			return trm_err_set(err, -EFAULT,
					   "the target failed inside a remote call (%s)",
					   strsignal(sig));
		} else {
			/* a signal (held for release) or a group stop: either
			 * may have interrupted a syscall of the call, whose
			 * restart block then replaced the thread's own */
			if (kind == STOP_SIGNAL)
				hold_signal(t, sig);
			t->restart_lost = 1;
		}
		rc = resume(t, mode);
		if (rc < 0)
			return trm_err_set(err, rc, "ptrace cont: %s", strerror(-rc));
	}
	rc = target_read_mem(t->pid, img.slot, &result, sizeof(result));
	if (rc < 0)
		return trm_err_set(err, rc, "reading the call's result: %s",
				   strerror(-rc));
	for (i = 0; i < t->nundo; i++)
		if (t->undo[i].kind0 == PTRACE_ARG_RESULT) {
			t->undo[i].arg[0] = result;
			t->undo[i].kind0 = PTRACE_ARG_VALUE;
		}
	if (notify) {
		rc = settle(t, err);
	} else {
		/* held in the rt_sigreturn's entry stop: the thread's own
		 * registers instead (the rt_sigreturn is not run) */
		t->at_entry = 1;
		if (t->mask_pending) {
			struct target_status st;

			/* resumed once: SigBlk is the thread's own mask now */
			if (target_read_status(t->pid, t->tid, &st, NULL) == 0) {
				t->sigmask = st.sigblk;
				t->notify_sig = pick_notify_sig(&st);
				t->mask_pending = 0;
			}
		}
		rc = restore_regs(t);
		if (rc < 0)
			rc = trm_err_set(err, rc, "restoring registers of %d: %s",
					 (int)t->tid, strerror(-rc));
	}
	if (rc < 0)
		return rc;
	if (ret)
		*ret = result;
	return 0;
}

int ptrace_undo_push(struct ptrace_thread *t, raddr_t fn, int nargs, int kind0,
		     uint64_t a0, uint64_t a1, uint64_t a2)
{
	const struct ptrace_gadgets *g = t->gadgets;
	struct ptrace_undo *u;

	if (!g || !t->have_sigmask || !g->raise || !t->notify_sig || !fn ||
	    nargs < 1 || nargs > 3 || (nargs > 1 && !g->pop_arg2) ||
	    (nargs > 2 && !g->pop_arg3))
		return -ENOTSUP;
	if (t->nundo >= PTRACE_MAX_UNDO)
		return -ENOSPC;
	u = &t->undo[t->nundo];
	u->fn = fn;
	u->nargs = nargs;
	u->kind0 = kind0;
	u->arg[0] = a0;
	u->arg[1] = a1;
	u->arg[2] = a2;
	t->undo_gen++;
	return t->nundo++;
}

void ptrace_undo_truncate(struct ptrace_thread *t, int n)
{
	if (n >= 0 && n < t->nundo) {
		t->nundo = n;
		t->undo_gen++;
	}
}

int ptrace_undo_drop(struct ptrace_thread *t, int i)
{
	int j;

	if (i < 0 || i >= t->nundo)
		return -EINVAL;
	for (j = 0; j < t->nundo; j++)
		if (t->undo[j].kind0 == PTRACE_ARG_ADDR &&
		    (int)t->undo[j].arg[0] >= i)
			return -EBUSY; /* a copy into it, or behind it */
	memmove(&t->undo[i], &t->undo[i + 1],
		(size_t)(t->nundo - i - 1) * sizeof(t->undo[0]));
	t->nundo--;
	t->undo_gen++;
	return 0;
}

static int guarded(const struct ptrace_thread *t)
{
	return t->gadgets != NULL && t->have_sigmask;
}

int ptrace_remote_call(struct ptrace_thread *t, raddr_t fn,
		       const uint64_t *args, int nargs, raddr_t sp_top,
		       int timeout_ms, uint64_t *ret, struct trm_err *err)
{
	struct ptrace_step step = { fn, 0 };

	if (guarded(t))
		return guarded_call(t, &step, 1, args, nargs, sp_top, timeout_ms,
				    0, 1, ret, err);
	if (!sp_top)
		sp_top = arch_sp(t->saved) - 8192;
	return unguarded_call(t, fn, args, nargs, sp_top, timeout_ms, 0, ret,
			      err);
}

int ptrace_remote_chain(struct ptrace_thread *t, const struct ptrace_step *steps,
			int nsteps, raddr_t sp_top, int timeout_ms,
			uint64_t *ret, struct trm_err *err)
{
	if (!guarded(t))
		return trm_err_set(err, -ENOTSUP, "no gadgets for a call chain");
	return guarded_call(t, steps, nsteps, &steps[0].arg, 1, sp_top,
			    timeout_ms, 0, 1, ret, err);
}

int ptrace_remote_syscall(struct ptrace_thread *t, raddr_t syscall_fn, long nr,
			  const uint64_t args[6], int64_t *ret,
			  struct trm_err *err)
{
	/* libc's syscall(nr, a0..a5): the 7th argument goes on the stack */
	uint64_t a[7] = { (uint64_t)nr, args[0], args[1], args[2], args[3],
			  args[4], args[5] };
	uint64_t r = 0;
	int rc;

	if (guarded(t)) {
		struct ptrace_step step = { syscall_fn, 0 };

		rc = guarded_call(t, &step, 1, a, 7, 0, 2000, 1, 0, &r, err);
	} else {
		rc = unguarded_call(t, syscall_fn, a, 7, arch_sp(t->saved) - 4096,
				    2000, 1, &r, err);
	}
	if (rc < 0)
		return rc;
	*ret = (int64_t)r;
	return 0;
}
