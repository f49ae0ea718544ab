#include "config.h"

#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>

#include "arch.h"

struct ptrace_arch_regs {
	struct user_regs_struct gp;
	struct user_fpregs_struct fp;
	int have_xstate;
	size_t xstate_len;
	uint8_t xstate[PTRACE_XSTATE_MAX];
};

size_t arch_regs_size(void)
{
	return sizeof(struct ptrace_arch_regs);
}

int arch_get_regs(pid_t tid, struct ptrace_arch_regs *r)
{
	struct iovec iov = { r->xstate, sizeof(r->xstate) };

	if (ptrace(PTRACE_GETREGS, tid, 0, &r->gp) < 0)
		return -errno;
	if (ptrace(PTRACE_GETFPREGS, tid, 0, &r->fp) < 0)
		return -errno;
	r->have_xstate = 0;
	if (ptrace(PTRACE_GETREGSET, tid, (void *)(long)NT_X86_XSTATE, &iov) == 0) {
		r->have_xstate = 1;
		r->xstate_len = iov.iov_len;
	}
	return 0;
}

int arch_get_gp_regs(pid_t tid, struct ptrace_arch_regs *r)
{
	if (ptrace(PTRACE_GETREGS, tid, 0, &r->gp) < 0)
		return -errno;
	return 0;
}

int arch_set_regs(pid_t tid, const struct ptrace_arch_regs *r, int with_ext)
{
	if (ptrace(PTRACE_SETREGS, tid, 0, &r->gp) < 0)
		return -errno;
	if (!with_ext)
		return 0;
	if (r->have_xstate) {
		struct iovec iov = { (void *)r->xstate, r->xstate_len };

		if (ptrace(PTRACE_SETREGSET, tid, (void *)(long)NT_X86_XSTATE,
			   &iov) == 0)
			return 0;
	}
	if (ptrace(PTRACE_SETFPREGS, tid, 0, &r->fp) < 0)
		return -errno;
	return 0;
}

void arch_setup_syscall(struct ptrace_arch_regs *r, raddr_t gadget, long nr,
			const uint64_t args[6])
{
	r->gp.rip = gadget;
	r->gp.rax = (uint64_t)nr;
	r->gp.orig_rax = (uint64_t)-1; /* no restart of what was interrupted */
	r->gp.rdi = args[0];
	r->gp.rsi = args[1];
	r->gp.rdx = args[2];
	r->gp.r10 = args[3];
	r->gp.r8 = args[4];
	r->gp.r9 = args[5];
}

int64_t arch_syscall_result(const struct ptrace_arch_regs *r)
{
	return (int64_t)r->gp.rax;
}

long arch_syscall_nr(const struct ptrace_arch_regs *r)
{
	return (long)r->gp.orig_rax;
}

raddr_t arch_setup_call(struct ptrace_arch_regs *r, raddr_t fn,
			const uint64_t *args, int nargs, raddr_t sp_top)
{
	uint64_t a[6] = { 0 };
	raddr_t sp;
	int i;

	for (i = 0; i < nargs && i < 6; i++)
		a[i] = args[i];
	/* at function entry (rsp + 8) is 16-byte aligned */
	sp = (sp_top & ~(raddr_t)15) - 8;
	r->gp.rip = fn;
	r->gp.rsp = sp;
	r->gp.rax = 0; /* no vector registers used by varargs */
	r->gp.orig_rax = (uint64_t)-1;
	r->gp.rdi = a[0];
	r->gp.rsi = a[1];
	r->gp.rdx = a[2];
	r->gp.rcx = a[3];
	r->gp.r8 = a[4];
	r->gp.r9 = a[5];
	r->gp.eflags &= ~(1ULL << 10); /* DF clear, as the ABI requires */
	return sp;
}

uint64_t arch_call_result(const struct ptrace_arch_regs *r)
{
	return r->gp.rax;
}

raddr_t arch_pc(const struct ptrace_arch_regs *r)
{
	return r->gp.rip;
}

raddr_t arch_sp(const struct ptrace_arch_regs *r)
{
	return r->gp.rsp;
}

long arch_in_syscall(const struct ptrace_arch_regs *r, long *ret)
{
	if (ret)
		*ret = (long)r->gp.rax;
	return (long)r->gp.orig_rax;
}

void arch_dwarf_regs(const struct ptrace_arch_regs *r, uint64_t *regs)
{
	/* DWARF numbering for x86_64 */
	regs[0] = r->gp.rax;
	regs[1] = r->gp.rdx;
	regs[2] = r->gp.rcx;
	regs[3] = r->gp.rbx;
	regs[4] = r->gp.rsi;
	regs[5] = r->gp.rdi;
	regs[6] = r->gp.rbp;
	regs[7] = r->gp.rsp;
	regs[8] = r->gp.r8;
	regs[9] = r->gp.r9;
	regs[10] = r->gp.r10;
	regs[11] = r->gp.r11;
	regs[12] = r->gp.r12;
	regs[13] = r->gp.r13;
	regs[14] = r->gp.r14;
	regs[15] = r->gp.r15;
	regs[16] = r->gp.rip;
}
