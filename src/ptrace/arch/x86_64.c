/* x86_64.c - the x86_64 side of ptrace (arch.h): registers with their
 * XSAVE area (get, set, the regset size), a call's entry registers and
 * result, the syscall a stopped thread is in and how it restarts, DWARF
 * register numbers for the unwinder, the gadgets of a guarded call (their
 * byte patterns, scanned in a module's text) and the chain and signal
 * frame laid out on the thread's stack so that an orphaned call returns
 * through rt_sigreturn to the thread's own registers. */
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
	return arch_set_ext_regs(tid, r);
}

int arch_set_ext_regs(pid_t tid, const struct ptrace_arch_regs *r)
{
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

/* ---- guarded remote calls ------------------------------------------- */

/* The kernel's x86_64 signal frame (arch/x86/include/uapi/asm/sigcontext.h,
 * asm-generic/ucontext.h, arch/x86/kernel/signal_64.c): rt_sigreturn finds
 * it 8 bytes below the stack pointer it is called with (the "pretcode"
 * slot the trampoline was returned through). */
struct x86_sigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t di, si, bp, bx, dx, ax, cx, sp, ip, flags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2;
	uint64_t fpstate; /* 0: no FP state (the kernel would clear it) */
	uint64_t reserved1[8];
};

struct x86_rt_sigframe {
	uint64_t pretcode;
	uint64_t uc_flags;
	uint64_t uc_link;
	uint64_t ss_sp;     /* uc_stack (stack_t) */
	int32_t ss_flags;
	int32_t ss_pad;
	uint64_t ss_size;
	struct x86_sigcontext mc;
	uint64_t sigmask;
	uint8_t info[128];  /* siginfo: unused by rt_sigreturn; holds the slot */
};

_Static_assert(sizeof(struct x86_sigcontext) == 256, "sigcontext layout");
_Static_assert(sizeof(struct x86_rt_sigframe) == 8 + 304 + 128,
	       "rt_sigframe layout");

#define UC_FP_XSTATE 0x1
#define UC_SIGCONTEXT_SS 0x2
#define UC_STRICT_RESTORE_SS 0x4
#define FP_XSTATE_MAGIC1 0x46505853u
#define FP_XSTATE_MAGIC2 0x46505845u
#define SW_BYTES_OFF 464    /* fxsave's sw_reserved: struct _fpx_sw_bytes */
#define FXSAVE_LEN 512
#define NR_RT_SIGRETURN 15
#define NR_RESTART_SYSCALL 219
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

/* mov $15,%rax; syscall: glibc's and musl's __restore_rt */
static const uint8_t sigreturn_code[] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00,
					  0x00, 0x00, 0x0f, 0x05 };

/* A store of rax through a callee-saved register, then pops, then ret:
 * "mov %rax,DISP(%REG); pop...; ret", common at the end of functions that
 * return a value in a struct.  Returns its length (0: not one) and its
 * register (DWARF number), displacement and number of pops. */
static size_t store_gadget(const uint8_t *p, size_t avail, int *reg,
			   int32_t *disp, int *pops)
{
	size_t i = 0;
	int n = 0;

	if (avail < 4)
		return 0;
	/* REX.W (48) for rbx/rbp, REX.WB (49) for r12-r15; opcode 89 */
	if ((p[0] != 0x48 && p[0] != 0x49) || p[1] != 0x89)
		return 0;
	{
		uint8_t modrm = p[2], mod = modrm >> 6, rm = modrm & 7;
		int r = (p[0] == 0x49 ? 8 : 0) + rm;

		if (((modrm >> 3) & 7) != 0) /* source must be rax */
			return 0;
		if (mod == 3 || (r != 3 && r != 5 && r < 12))
			return 0;
		i = 3;
		if (rm == 4) { /* SIB: only (%r12) with no index */
			if (avail < 5 || p[3] != 0x24)
				return 0;
			i = 4;
		}
		if (mod == 0 && rm == 5)
			return 0; /* rip-relative */
		*disp = 0;
		if (mod == 1) {
			if (i + 1 > avail)
				return 0;
			*disp = (int8_t)p[i];
			i += 1;
		} else if (mod == 2) {
			if (i + 4 > avail)
				return 0;
			*disp = (int32_t)((uint32_t)p[i] | (uint32_t)p[i + 1] << 8 |
					  (uint32_t)p[i + 2] << 16 |
					  (uint32_t)p[i + 3] << 24);
			i += 4;
		}
		/* DWARF numbers: rbx 3, rbp 6, r12-r15 12-15 */
		*reg = r == 3 ? 3 : r == 5 ? 6 : r;
	}
	while (i < avail && n < 6) {
		if (p[i] == 0x5b || p[i] == 0x5d) {
			i += 1;
		} else if (i + 1 < avail && p[i] == 0x41 && p[i + 1] >= 0x5c &&
			   p[i + 1] <= 0x5f) {
			i += 2;
		} else {
			break;
		}
		n++;
	}
	if (i >= avail || p[i] != 0xc3)
		return 0;
	*pops = n;
	return i + 1;
}

void arch_scan_gadgets(const uint8_t *code, size_t len, raddr_t addr,
		       struct ptrace_gadgets *g)
{
	const uint8_t *p;

	if (!g->sigreturn) {
		p = memmem(code, len, sigreturn_code, sizeof(sigreturn_code));
		if (p)
			g->sigreturn = addr + (raddr_t)(p - code);
	}
	if (!g->pop_arg) { /* pop %rdi; ret */
		p = memmem(code, len, "\x5f\xc3", 2);
		if (p) {
			g->pop_arg = addr + (raddr_t)(p - code);
			g->ret = g->pop_arg + 1;
		}
	}
	if (!g->pop_arg2) { /* pop %rsi; ret */
		p = memmem(code, len, "\x5e\xc3", 2);
		if (p)
			g->pop_arg2 = addr + (raddr_t)(p - code);
	}
	if (!g->pop_arg3) { /* pop %rdx; ret */
		p = memmem(code, len, "\x5a\xc3", 2);
		if (p)
			g->pop_arg3 = addr + (raddr_t)(p - code);
	}
	/* the store: from each mov opcode (89) behind a REX.W(B) prefix */
	for (p = code + 1; !g->store && p < code + len &&
	     (p = memchr(p, 0x89, len - (size_t)(p - code))) != NULL; p++) {
		int reg, pops;
		int32_t disp;
		size_t avail = len - (size_t)(p - 1 - code);

		if ((p[-1] == 0x48 || p[-1] == 0x49) &&
		    store_gadget(p - 1, avail < 24 ? avail : 24, &reg, &disp,
				 &pops) > 0) {
			g->store = addr + (raddr_t)(p - 1 - code);
			g->store_reg = reg;
			g->store_disp = disp;
			g->store_pops = pops;
		}
	}
}

int arch_check_gadget(const struct ptrace_gadgets *g, enum arch_gadget_kind k,
		      const uint8_t *p)
{
	int reg, pops;
	int32_t disp;

	switch (k) {
	case ARCH_G_SIGRETURN:
		return memcmp(p, sigreturn_code, sizeof(sigreturn_code)) == 0;
	case ARCH_G_POP_ARG:
		return p[0] == 0x5f && p[1] == 0xc3;
	case ARCH_G_POP_ARG2:
		return p[0] == 0x5e && p[1] == 0xc3;
	case ARCH_G_POP_ARG3:
		return p[0] == 0x5a && p[1] == 0xc3;
	case ARCH_G_RET:
		return p[0] == 0xc3;
	case ARCH_G_STORE:
		return store_gadget(p, ARCH_GADGET_MAX, &reg, &disp, &pops) > 0 &&
		       reg == g->store_reg && disp == g->store_disp &&
		       pops == g->store_pops;
	}
	return 0;
}

raddr_t arch_gadget_addr(const struct ptrace_gadgets *g,
			 enum arch_gadget_kind k)
{
	switch (k) {
	case ARCH_G_SIGRETURN:
		return g->sigreturn;
	case ARCH_G_STORE:
		return g->store;
	case ARCH_G_POP_ARG:
		return g->pop_arg;
	case ARCH_G_POP_ARG2:
		return g->pop_arg2;
	case ARCH_G_POP_ARG3:
		return g->pop_arg3;
	case ARCH_G_RET:
		return g->ret;
	}
	return 0;
}

static void set_dwarf_reg(struct user_regs_struct *gp, int reg, uint64_t v)
{
	switch (reg) {
	case 3: gp->rbx = v; break;
	case 6: gp->rbp = v; break;
	case 12: gp->r12 = v; break;
	case 13: gp->r13 = v; break;
	case 14: gp->r14 = v; break;
	case 15: gp->r15 = v; break;
	}
}

/* The registers the thread gets back from rt_sigreturn when nobody is
 * there to restore it: its own, with the restart the kernel would have
 * done after a signal without handler applied (rt_sigreturn disables the
 * kernel's restart logic, and makes restart_syscall return -EINTR). */
static void frame_regs(const struct user_regs_struct *s,
		       struct x86_sigcontext *mc)
{
	long rax = (long)s->rax;

	mc->r8 = s->r8; mc->r9 = s->r9; mc->r10 = s->r10; mc->r11 = s->r11;
	mc->r12 = s->r12; mc->r13 = s->r13; mc->r14 = s->r14; mc->r15 = s->r15;
	mc->di = s->rdi; mc->si = s->rsi; mc->bp = s->rbp; mc->bx = s->rbx;
	mc->dx = s->rdx; mc->ax = s->rax; mc->cx = s->rcx; mc->sp = s->rsp;
	mc->ip = s->rip; mc->flags = s->eflags;
	mc->cs = (uint16_t)s->cs;
	mc->ss = (uint16_t)s->ss;
	if ((long)s->orig_rax >= 0) {
		if (rax == -ERESTARTSYS || rax == -ERESTARTNOINTR ||
		    rax == -ERESTARTNOHAND) {
			mc->ax = s->orig_rax;
			mc->ip = s->rip - 2; /* the syscall instruction again */
		} else if (rax == -ERESTART_RESTARTBLOCK) {
			mc->ax = (uint64_t)-EINTR;
		}
	}
}

/* Append the words that call fn with nargs arguments (rdi, rsi, rdx) from
 * the stack: [ret for alignment] [pop rdi] a0 [pop rsi] a1 [pop rdx] a2 fn.
 * *a0_at is the index of a0's word (-1 without arguments).  fn must be
 * entered with rsp = 8 mod 16 (sp0, the first word's address, is). */
static int chain_call(uint64_t *w, size_t *nw, size_t cap,
		      const struct ptrace_gadgets *g, raddr_t fn, int nargs,
		      const uint64_t *a, long *a0_at)
{
	raddr_t pops[3] = { g->pop_arg, g->pop_arg2, g->pop_arg3 };
	size_t need = 2 + 2 * (size_t)nargs;
	int i;

	if (*nw + need > cap)
		return -ENOSPC;
	for (i = 0; i < nargs; i++)
		if (!pops[i])
			return -ENOTSUP;
	/* fn's word at an odd index */
	if ((*nw + 2 * (size_t)nargs) % 2 == 0)
		w[(*nw)++] = g->ret;
	*a0_at = -1;
	for (i = 0; i < nargs; i++) {
		w[(*nw)++] = pops[i];
		if (i == 0)
			*a0_at = (long)*nw;
		w[(*nw)++] = a[i];
	}
	w[(*nw)++] = fn;
	return 0;
}

int arch_layout_call(const struct ptrace_arch_regs *saved, uint64_t sigmask,
		     const struct ptrace_gadgets *g, const struct arch_call *c,
		     struct ptrace_arch_regs *work, struct arch_image *img)
{
	uint64_t w[160];
	long a0_at[PTRACE_MAX_UNDO];
	size_t nw = 0, fplen, fp_off, total, cap = sizeof(w) / sizeof(w[0]);
	raddr_t fp_addr, frame, sp0, slot;
	struct x86_rt_sigframe fr;
	long result_word = -1;
	int i, rc, have_x = saved->have_xstate && saved->xstate_len >= FXSAVE_LEN + 64;
	uint32_t magic1 = 0, xsize = 0;

	if (c->nundo > PTRACE_MAX_UNDO)
		return -ENOSPC;
	/* FP state: the XSAVE image as ptrace gives it (the kernel's user
	 * layout, xstate_len bytes), made a signal frame's: ptrace keeps
	 * XCR0 in the first word of sw_reserved, where a frame has its
	 * _fpx_sw_bytes; MAGIC2 follows the image.  Without XSAVE, the
	 * legacy FXSAVE image (the kernel then resets the rest). */
	(void)magic1;
	xsize = have_x ? (uint32_t)saved->xstate_len : 0;
	fplen = have_x ? (size_t)xsize + 4 : FXSAVE_LEN;
	fp_addr = (c->top - fplen) & ~(raddr_t)63;
	frame = (fp_addr - sizeof(fr)) & ~(raddr_t)15;

	/* the words the chain returns through, from the first call's
	 * return address up to the frame's pretcode */
	if (c->nargs > 6) { /* the 7th argument is read at [rsp + 8] */
		w[nw++] = g->pop_arg;
		w[nw++] = c->args[6];
	}
	for (i = 1; i < c->nsteps; i++) {
		long at;

		rc = chain_call(w, &nw, cap, g, c->steps[i].fn, 1,
				&c->steps[i].arg, &at);
		if (rc < 0)
			return rc;
	}
	if (c->nsteps > 0) {
		if (nw + 1 + (size_t)g->store_pops > cap)
			return -ENOSPC;
		w[nw++] = g->store;
		for (i = 0; i < g->store_pops; i++)
			w[nw++] = 0;
	}
	if (c->notify_sig) { /* raise(notify_sig): trmtop stops it here */
		long at;
		uint64_t sig = (uint64_t)c->notify_sig;

		rc = chain_call(w, &nw, cap, g, g->raise, 1, &sig, &at);
		if (rc < 0)
			return rc;
	}
	/* what trmtop made and nobody took over yet, undone newest first */
	for (i = c->nundo - 1; i >= 0; i--) {
		const struct ptrace_undo *u = &c->undo[i];

		rc = chain_call(w, &nw, cap, g, u->fn, u->nargs, u->arg,
				&a0_at[i]);
		if (rc < 0)
			return rc;
		if (u->kind0 == PTRACE_ARG_RESULT)
			result_word = a0_at[i];
	}
	/* sp0 = frame - 8 * nw must be 8 mod 16 */
	if ((frame - 8 * nw) % 16 != 8)
		frame -= 8;
	sp0 = frame - 8 * nw;
	total = (size_t)(fp_addr + fplen - sp0);
	if (total > img->cap)
		return -ENOSPC;
	for (i = 0; i < c->nundo; i++)
		if (c->undo[i].kind0 == PTRACE_ARG_ADDR) {
			long j = (long)c->undo[i].arg[0];

			if (j < 0 || j >= c->nundo || a0_at[j] < 0)
				return -EINVAL;
			w[a0_at[i]] = sp0 + 8 * (raddr_t)a0_at[j];
		}
	/* the result goes where an undo step takes it, or into siginfo */
	slot = result_word >= 0 ? sp0 + 8 * (raddr_t)result_word
		: frame + offsetof(struct x86_rt_sigframe, info);

	memset(img->buf, 0, total);
	memcpy(img->buf, w, 8 * nw);
	memset(&fr, 0, sizeof(fr));
	fr.pretcode = g->sigreturn;
	fr.uc_flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS |
		      (have_x ? UC_FP_XSTATE : 0);
	fr.ss_flags = 3; /* not a valid mode: rt_sigreturn leaves the
			    thread's alternate signal stack as it is */
	frame_regs(&saved->gp, &fr.mc);
	fr.mc.fpstate = fp_addr;
	fr.sigmask = sigmask;
	memcpy(img->buf + (frame - sp0), &fr, sizeof(fr));
	fp_off = (size_t)(fp_addr - sp0);
	if (have_x) {
		uint32_t m2 = FP_XSTATE_MAGIC2;
		struct {
			uint32_t magic1, extended_size;
			uint64_t xfeatures;
			uint32_t xstate_size, padding[7];
		} sw = { FP_XSTATE_MAGIC1, xsize + 4, 0, xsize, { 0 } };
		uint64_t xcr0, bv;

		memcpy(&xcr0, saved->xstate + SW_BYTES_OFF, 8);
		memcpy(&bv, saved->xstate + FXSAVE_LEN, 8); /* XSTATE_BV */
		/* AMX tile data only when in use (the kernel refuses a frame
		 * that names features the thread has no permission for) */
		sw.xfeatures = xcr0 & ~((uint64_t)3 << 17 & ~bv);
		memcpy(img->buf + fp_off, saved->xstate, xsize);
		memcpy(img->buf + fp_off + SW_BYTES_OFF, &sw, sizeof(sw));
		memcpy(img->buf + fp_off + xsize, &m2, 4);
	} else {
		memcpy(img->buf + fp_off, &saved->fp, FXSAVE_LEN);
		memset(img->buf + fp_off + SW_BYTES_OFF, 0, FXSAVE_LEN - SW_BYTES_OFF);
	}

	img->slot = slot;
	img->base = sp0;
	img->len = total;
	img->ret_sp = frame + 8;
	memcpy(work, saved, sizeof(*work));
	if (c->nsteps > 0) {
		arch_setup_call(work, c->steps[0].fn, c->args, c->nargs, sp0 + 8);
		set_dwarf_reg(&work->gp, g->store_reg,
			      slot - (raddr_t)(int64_t)g->store_disp);
	} else {
		/* no call: a bare return into the chain */
		arch_setup_call(work, g->ret, NULL, 0, sp0 + 8);
	}
	work->gp.rsp = sp0;
	return 0;
}

int arch_at_sigreturn(const struct ptrace_arch_regs *r,
		      const struct ptrace_gadgets *g, raddr_t ret_sp)
{
	return r->gp.orig_rax == NR_RT_SIGRETURN &&
	       r->gp.rip == g->sigreturn + sizeof(sigreturn_code) &&
	       r->gp.rsp == ret_sp;
}

void arch_regs_for_entry_stop(const struct ptrace_arch_regs *saved,
			      int restart_lost, struct ptrace_arch_regs *out)
{
	long rax = (long)saved->gp.rax;

	memcpy(out, saved, sizeof(*out));
	if ((long)saved->gp.orig_rax >= 0 &&
	    (rax == -ERESTARTSYS || rax == -ERESTARTNOINTR ||
	     rax == -ERESTARTNOHAND))
		return; /* orig_rax runs again, as a restart would */
	if ((long)saved->gp.orig_rax >= 0 && rax == -ERESTART_RESTARTBLOCK &&
	    !restart_lost) {
		out->gp.orig_rax = NR_RESTART_SYSCALL;
		return;
	}
	if ((long)saved->gp.orig_rax >= 0 && rax == -ERESTART_RESTARTBLOCK)
		out->gp.rax = (uint64_t)-EINTR;
	out->gp.orig_rax = (uint64_t)-1; /* nothing to run: skip */
}

void arch_regs_restart_lost(const struct ptrace_arch_regs *saved,
			    struct ptrace_arch_regs *out)
{
	memcpy(out, saved, sizeof(*out));
	if ((long)saved->gp.orig_rax >= 0 &&
	    (long)saved->gp.rax == -ERESTART_RESTARTBLOCK)
		out->gp.rax = (uint64_t)-EINTR;
}

int arch_restart_block_result(const struct ptrace_arch_regs *r)
{
	return (long)r->gp.rax == -ERESTART_RESTARTBLOCK;
}
