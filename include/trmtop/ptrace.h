/* ptrace.h - seize, interrupt and release one thread of a target; remote
 * syscalls and remote function calls in it.
 *
 * Stops only the thread it is given (PTRACE_SEIZE + PTRACE_INTERRUPT).  The
 * registers saved at the first stop (general, FP and extended state) are
 * written back by ptrace_release on every path, so a syscall the thread was
 * blocked in restarts as if nothing happened.  Signals that reach the thread
 * while it is held are recorded and re-delivered on release.  Never writes
 * into the target's code: remote calls return to address 0 and the fault
 * stop that follows is the "return".  Decides nothing about when it is safe
 * to do so: that is inject's business. */
#ifndef TRMTOP_PTRACE_H
#define TRMTOP_PTRACE_H

#include <stdint.h>
#include <sys/types.h>

#include "trmtop/err.h"
#include "trmtop/target.h"

#define PTRACE_MAX_PENDING_SIGS 8
#define PTRACE_XSTATE_MAX 16384

struct ptrace_arch_regs; /* arch/<arch>.h */
struct trm_abort;       /* trmtop/abort.h */

/* Code in the target that remote calls return through (addresses of
 * executable bytes; 0: not found). */
struct ptrace_gadgets {
	raddr_t sigreturn;  /* the rt_sigreturn trampoline */
	raddr_t store;      /* store of the result through a callee-saved
			       register, pops, return */
	raddr_t pop_arg;    /* pop of the first argument register, return */
	raddr_t ret;        /* a bare return */
	raddr_t pop_arg2;   /* pops of the second and third argument
			       registers (optional: undo steps need them) */
	raddr_t pop_arg3;
	raddr_t raise;      /* libc's raise(): the end of a call is signalled
			       (optional: without it every syscall stops) */
	int store_reg;      /* its base register (DWARF number) */
	int32_t store_disp; /* and displacement */
	int store_pops;     /* stack words it pops before returning */
};

/* What a held thread undoes by itself, should trmtop die before it hands
 * over what it made (docs/DESIGN.md): fn(arg[0..nargs-1]).  arg[0] may be
 * the result of the next remote call (PTRACE_ARG_RESULT: it becomes a
 * value when the call returns), or the address of undo step arg[0]'s own
 * first argument (PTRACE_ARG_ADDR: where a copy puts a value). */
#define PTRACE_MAX_UNDO 8
enum { PTRACE_ARG_VALUE, PTRACE_ARG_RESULT, PTRACE_ARG_ADDR };

struct ptrace_undo {
	raddr_t fn;
	int nargs;          /* 1 to 3 */
	int kind0;          /* PTRACE_ARG_* of arg[0] */
	uint64_t arg[3];
};

/* One function of a chain: fn(arg). */
struct ptrace_step {
	raddr_t fn;
	uint64_t arg;
};

/* Look for the gadgets in code (len bytes, the first at runtime address
 * addr: an executable segment as elf_module_code gives it), filling those
 * still missing in g. */
void ptrace_scan_gadgets(const uint8_t *code, size_t len, raddr_t addr,
			 struct ptrace_gadgets *g);
/* 1 when every gadget was found and the target's memory still holds it
 * (read from process pid), else 0. */
int ptrace_gadgets_check(pid_t pid, const struct ptrace_gadgets *g);

struct ptrace_thread {
	pid_t pid, tid;
	int seized;        /* PTRACE_SEIZE succeeded */
	int stopped;       /* in a ptrace stop we caused */
	int dirty;         /* registers changed since the save */
	int fp_dirty;      /* ... and the FP/extended state may have been */
	uint64_t t_seize;  /* util_now_ns() at the seize */
	uint64_t ns_held;  /* seize to detach, set by ptrace_release */
	int nsigs;         /* signals to re-deliver on release */
	int sigs[PTRACE_MAX_PENDING_SIGS];
	const struct ptrace_gadgets *gadgets; /* the caller's; NULL: none */
	uint64_t sigmask;  /* blocked signals at the seize */
	int have_sigmask;  /* ... read (else calls are not guarded) */
	int notify_sig;    /* signal a call's end raises (ignored by the
			      target, not blocked), 0: none usable */
	pid_t nspid;       /* the target's pid (tgid) in its own namespace
			      (what si_pid says of its own signals) */
	int mask_pending;  /* stopped in a syscall that swaps the signal
			      mask: SigBlk is not the thread's own yet */
	int area;          /* which of the two stack areas its registers
			      are on (-1: none) */
	unsigned undo_gen, armed_gen; /* the undo list's version, and the
			      one the thread's registers run */
	int at_entry;      /* held in a syscall-entry stop (after a call) */
	int restart_lost;  /* a syscall of ours got a new restart block */
	int in_call;       /* a guarded call runs on its own: no restore */
	struct ptrace_undo undo[PTRACE_MAX_UNDO]; /* run newest first */
	int nundo;
	int undo_armed;    /* held on the registers of an undo chain of
			      this many steps (0: not) */
	struct ptrace_arch_regs *saved; /* owned */
	struct ptrace_arch_regs *work;  /* owned scratch copy */
	uint8_t *img;      /* owned scratch for a call's stack image */
	struct trm_abort *abort; /* the caller's (ptrace_seize); NULL: none */
};

/* Seize tid of process pid, interrupt it and wait (up to timeout_ms) for it
 * to stop; save its registers.  -EPERM, -ESRCH, -TRM_ETIMEOUT,
 * -TRM_EEXITED, -TRM_EINTR.
 *
 * ab (the caller's, may be NULL: waits then poll, and nothing aborts
 * them) is kept in t->abort for the life of the hold: every wait on the
 * thread reads it (trm_abort_check, which also consumes the SIGCHLD its
 * signalfd holds) and polls its fd; an aborting signal ends the
 * interruptible ones (the seize, resume_briefly, remote calls) with
 * -TRM_EINTR, and ab->first_sig tells which. */
int ptrace_seize(struct ptrace_thread *t, pid_t pid, pid_t tid,
		 struct trm_abort *ab, int timeout_ms, struct trm_err *err);

/* Write the saved registers back (if changed), detach and re-deliver held
 * signals.  A guarded call that was given up on (in_call) is left to
 * finish and restore the thread itself.  Safe on a zeroed or partly
 * seized struct; frees its buffers. */
int ptrace_release(struct ptrace_thread *t);

/* Resume a held thread for a while and stop it again (used to step out of
 * an unsafe place).  The registers must be unchanged (not dirty). */
int ptrace_resume_briefly(struct ptrace_thread *t, int run_us, int timeout_ms,
			  struct trm_err *err);

/* Saved program counter / stack pointer / syscall state. */
raddr_t ptrace_saved_pc(const struct ptrace_thread *t);
raddr_t ptrace_saved_sp(const struct ptrace_thread *t);
/* Syscall number the thread was stopped in (-1 if none) and the value the
 * kernel left for it (e.g. -ERESTARTSYS). */
long ptrace_saved_syscall(const struct ptrace_thread *t, long *ret);
/* DWARF register file of the saved state, for elf_unwind (17 entries). */
void ptrace_saved_dwarf_regs(const struct ptrace_thread *t, uint64_t *regs);

/* Execute syscall nr with args in the thread, as a remote call of the
 * target's libc syscall() at syscall_fn, on the thread's own stack well
 * below its red zone.  *ret is syscall()'s result: -1 on failure. */
int ptrace_remote_syscall(struct ptrace_thread *t, raddr_t syscall_fn, long nr,
			  const uint64_t args[6], int64_t *ret,
			  struct trm_err *err);

/* Call fn(args...) (up to 7 integer args) with its stack and signal frame
 * just below sp_top (0: on the thread's own stack, below its red zone).
 * Waits up to timeout_ms (< 0: for ever); an aborting signal (t->abort)
 * ends the wait too.  *ret is the
 * integer result.  After the call the thread is back on its saved
 * registers, held: if trmtop dies between calls, the kernel resumes it
 * unharmed.  On timeout (-TRM_ETIMEOUT) or abort (-TRM_EINTR) a guarded
 * call is left to finish on its own (in_call: release detaches without
 * restoring); an unguarded one is interrupted and the registers restored. */
int ptrace_remote_call(struct ptrace_thread *t, raddr_t fn,
		       const uint64_t *args, int nargs, raddr_t sp_top,
		       int timeout_ms, uint64_t *ret, struct trm_err *err);

/* Call steps[0].fn(steps[0].arg), then each next fn(arg) in turn, in one
 * guarded remote call (needs the gadgets: -ENOTSUP without them); *ret is
 * the last one's result.  Timeouts and aborts as ptrace_remote_call. */
int ptrace_remote_chain(struct ptrace_thread *t, const struct ptrace_step *steps,
			int nsteps, raddr_t sp_top, int timeout_ms,
			uint64_t *ret, struct trm_err *err);

/* Undo steps (guarded calls with a notify signal only).  push: -ENOTSUP
 * when they cannot be run (no gadgets, no notify signal, a pop gadget
 * missing), -ENOSPC when full; else the step's index.  While there are
 * steps, the thread is held between calls on registers that run them and
 * then restore it, so a trmtop that dies leaves nothing; release leaves
 * them to run.  truncate(n) forgets the steps from n on (handed over or
 * undone by trmtop itself). */
int ptrace_undo_push(struct ptrace_thread *t, raddr_t fn, int nargs, int kind0,
		     uint64_t a0, uint64_t a1, uint64_t a2);
void ptrace_undo_truncate(struct ptrace_thread *t, int n);
/* Put the held thread on registers that run the undo steps as they are
 * now (after changes no remote call follows). */
int ptrace_undo_arm(struct ptrace_thread *t, struct trm_err *err);
/* Forget step i alone (its resource is undone by trmtop itself next).
 * -EBUSY while a copy step refers to it or to a later one. */
int ptrace_undo_drop(struct ptrace_thread *t, int i);

/* Restore the saved registers in the (still held) thread. */
int ptrace_restore(struct ptrace_thread *t, struct trm_err *err);

#endif
