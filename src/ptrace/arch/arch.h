/* arch.h - the seam between ptrace.c and one architecture's registers. */
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
size_t arch_regs_size(void);

/* Prepare a syscall at gadget; the syscall-restart logic is disabled. */
void arch_setup_syscall(struct ptrace_arch_regs *r, raddr_t gadget, long nr,
			const uint64_t args[6]);
int64_t arch_syscall_result(const struct ptrace_arch_regs *r);
/* Syscall number at a syscall-entry stop. */
long arch_syscall_nr(const struct ptrace_arch_regs *r);

/* Prepare a call of fn; returns the stack address where the 8-byte return
 * address (0) must be written. */
raddr_t arch_setup_call(struct ptrace_arch_regs *r, raddr_t fn,
			const uint64_t *args, int nargs, raddr_t sp_top);
uint64_t arch_call_result(const struct ptrace_arch_regs *r);

raddr_t arch_pc(const struct ptrace_arch_regs *r);
raddr_t arch_sp(const struct ptrace_arch_regs *r);
/* Syscall the thread was stopped in, or -1; *ret its pending result. */
long arch_in_syscall(const struct ptrace_arch_regs *r, long *ret);
void arch_dwarf_regs(const struct ptrace_arch_regs *r, uint64_t *regs);

#endif
