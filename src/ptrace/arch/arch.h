/* arch.h - the seam between ptrace.c and one architecture: its registers,
 * the code patterns a remote call returns through (gadgets) and the layout
 * of the call chain and signal frame on the thread's stack. */
#ifndef TRMTOP_PTRACE_ARCH_H
#define TRMTOP_PTRACE_ARCH_H

#include <stdint.h>
#include <sys/types.h>

#include "trmtop/ptrace.h"

/* Read all registers (general, then extended state when available). */
int arch_get_regs(pid_t tid, struct ptrace_arch_regs *r);
/* The general registers only (what a call's result needs). */
int arch_get_gp_regs(pid_t tid, struct ptrace_arch_regs *r);
/* Write them back; with_ext also writes the FP/extended state. */
int arch_set_regs(pid_t tid, const struct ptrace_arch_regs *r, int with_ext);
/* The FP/extended state alone. */
int arch_set_ext_regs(pid_t tid, const struct ptrace_arch_regs *r);
size_t arch_regs_size(void);

/* Prepare a call of fn; returns the stack address where the 8-byte return
 * address (0) must be written. */
raddr_t arch_setup_call(struct ptrace_arch_regs *r, raddr_t fn,
			const uint64_t *args, int nargs, raddr_t sp_top);
uint64_t arch_call_result(const struct ptrace_arch_regs *r);

/* Gadgets.  arch_scan_gadgets fills the members of g still 0 from code
 * (len bytes whose first is at runtime address addr); arch_check_gadget
 * says whether the bytes at p (at least ARCH_GADGET_MAX of them, as the
 * target's memory holds them) still are gadget kind k of g. */
#define ARCH_GADGET_MAX 16
enum arch_gadget_kind { ARCH_G_SIGRETURN, ARCH_G_STORE, ARCH_G_POP_ARG,
			ARCH_G_RET, ARCH_G_POP_ARG2, ARCH_G_POP_ARG3 };
void arch_scan_gadgets(const uint8_t *code, size_t len, raddr_t addr,
		       struct ptrace_gadgets *g);
int arch_check_gadget(const struct ptrace_gadgets *g, enum arch_gadget_kind k,
		      const uint8_t *p);
raddr_t arch_gadget_addr(const struct ptrace_gadgets *g,
			 enum arch_gadget_kind k);

/* A guarded remote call, laid out below top: the call of steps[0].fn
 * with args (up to 7), then each further step's fn with its one
 * argument, then the store of the last result, then (notify_sig != 0)
 * raise(notify_sig), then the undo steps, newest first, then
 * rt_sigreturn over a signal frame that holds saved (the thread's own
 * registers, FP state and blocked signals sigmask).  With nsteps 0 there
 * is no call: the chain starts at the undo steps (a held thread that,
 * left alone, undoes and restores itself). */
struct arch_call {
	const struct ptrace_step *steps;
	int nsteps;
	const uint64_t *args;
	int nargs;
	int notify_sig;
	const struct ptrace_undo *undo;
	int nundo;
	raddr_t top;
};

/* The stack image: buf (cap bytes) is written for runtime address base,
 * len bytes; slot is where the result is stored; ret_sp the stack pointer
 * the rt_sigreturn stop shows. */
struct arch_image {
	uint8_t *buf;
	size_t cap;
	raddr_t base;
	size_t len;
	raddr_t slot;
	raddr_t ret_sp;
};

/* Lay out c for a thread whose own state is saved (blocked signals
 * sigmask) and set work up to enter it.  -ENOSPC (too big),
 * -ENOTSUP (a gadget an undo step needs is missing), -EINVAL. */
int arch_layout_call(const struct ptrace_arch_regs *saved, uint64_t sigmask,
		     const struct ptrace_gadgets *g, const struct arch_call *c,
		     struct ptrace_arch_regs *work, struct arch_image *img);
/* Is r (at a syscall stop) the entry of the rt_sigreturn our chain ends
 * in, with the stack pointer ret_sp? */
int arch_at_sigreturn(const struct ptrace_arch_regs *r,
		      const struct ptrace_gadgets *g, raddr_t ret_sp);
/* out = saved, made right for a thread held in a syscall-entry stop: on
 * resume the kernel runs the syscall in orig_rax, so a syscall the thread
 * was interrupted in is run again (as the kernel's restart would; with
 * restart_lost, one whose restart block may have been overwritten
 * returns -EINTR instead), and anything else is skipped. */
void arch_regs_for_entry_stop(const struct ptrace_arch_regs *saved,
			      int restart_lost, struct ptrace_arch_regs *out);
/* out = saved, with an interrupted syscall whose restart block a call may
 * have replaced made to return -EINTR (restored in a signal or interrupt
 * stop, where the kernel's restart logic runs on resume). */
void arch_regs_restart_lost(const struct ptrace_arch_regs *saved,
			    struct ptrace_arch_regs *out);
/* At a syscall stop: the syscall's result, at an exit stop. */
int arch_restart_block_result(const struct ptrace_arch_regs *r);

raddr_t arch_pc(const struct ptrace_arch_regs *r);
raddr_t arch_sp(const struct ptrace_arch_regs *r);
/* Syscall the thread was stopped in, or -1; *ret its pending result. */
long arch_in_syscall(const struct ptrace_arch_regs *r, long *ret);
void arch_dwarf_regs(const struct ptrace_arch_regs *r, uint64_t *regs);

#endif
