/* test_ptrace_guarded.c - guarded remote calls: the gadget decoder on
 * hand-made code, the layout of a chain and its signal frame (alignment,
 * the words each return takes, undo steps and where results go), and live
 * calls into a forked child of this test: a call's result, undo steps
 * that run when the tracer lets go, and a tracer killed in the middle of
 * a call (the child finishes it and restores itself). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>

#include <cmocka.h>

#include "arch/arch.h"
#include "trmtop/elf.h"
#include "trmtop/ptrace.h"

/* ---- the decoder ------------------------------------------------------ */

static void scan(const uint8_t *code, size_t len, struct ptrace_gadgets *g)
{
	memset(g, 0, sizeof(*g));
	arch_scan_gadgets(code, len, 0x1000, g);
}

static void test_store_patterns(void **state)
{
	/* mov %rax,(%rbx); pop %rbx; ret */
	static const uint8_t rbx[] = { 0x90, 0x48, 0x89, 0x03, 0x5b, 0xc3 };
	/* mov %rax,0x18(%r12); pop %rbp; pop %r12; ret */
	static const uint8_t r12[] = { 0x49, 0x89, 0x44, 0x24, 0x18, 0x5d,
				       0x41, 0x5c, 0xc3 };
	/* mov %rax,0x0(%rip) (rip-relative, mod 0 rm 5): no */
	static const uint8_t rip[] = { 0x48, 0x89, 0x05, 0, 0, 0, 0, 0xc3 };
	/* mov %rcx,(%rbx); ret (not rax): no */
	static const uint8_t rcx[] = { 0x48, 0x89, 0x0b, 0xc3 };
	/* mov %rax,(%rdi); ret (rdi is not callee-saved): no */
	static const uint8_t rdi[] = { 0x48, 0x89, 0x07, 0xc3 };
	/* mov %rax,0x12345678(%r13); ret */
	static const uint8_t r13[] = { 0x49, 0x89, 0x85, 0x78, 0x56, 0x34,
				       0x12, 0xc3 };
	struct ptrace_gadgets g;

	(void)state;
	scan(rbx, sizeof(rbx), &g);
	assert_int_equal(g.store, 0x1001);
	assert_int_equal(g.store_reg, 3);
	assert_int_equal(g.store_disp, 0);
	assert_int_equal(g.store_pops, 1);
	assert_true(arch_check_gadget(&g, ARCH_G_STORE, (const uint8_t[16]){
		0x48, 0x89, 0x03, 0x5b, 0xc3 }));
	assert_false(arch_check_gadget(&g, ARCH_G_STORE, (const uint8_t[16]){
		0x48, 0x89, 0x03, 0xc3 })); /* pops differ */

	scan(r12, sizeof(r12), &g);
	assert_int_equal(g.store, 0x1000);
	assert_int_equal(g.store_reg, 12);
	assert_int_equal(g.store_disp, 0x18);
	assert_int_equal(g.store_pops, 2);

	scan(rip, sizeof(rip), &g);
	assert_int_equal(g.store, 0);
	scan(rcx, sizeof(rcx), &g);
	assert_int_equal(g.store, 0);
	scan(rdi, sizeof(rdi), &g);
	assert_int_equal(g.store, 0);

	scan(r13, sizeof(r13), &g);
	assert_int_equal(g.store, 0x1000);
	assert_int_equal(g.store_reg, 13);
	assert_int_equal(g.store_disp, 0x12345678);
	assert_int_equal(g.store_pops, 0);
}

static void test_other_patterns(void **state)
{
	static const uint8_t code[] = {
		0x90, 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05, /* 1 */
		0x5f, 0xc3,  /* 10: pop %rdi; ret */
		0x5e, 0xc3,  /* 12: pop %rsi; ret */
		0x5a, 0xc3,  /* 14: pop %rdx; ret */
	};
	struct ptrace_gadgets g;

	(void)state;
	scan(code, sizeof(code), &g);
	assert_int_equal(g.sigreturn, 0x1001);
	assert_int_equal(g.pop_arg, 0x100a);
	assert_int_equal(g.ret, 0x100b);
	assert_int_equal(g.pop_arg2, 0x100c);
	assert_int_equal(g.pop_arg3, 0x100e);
}

/* ---- the layout -------------------------------------------------------- */

static const struct ptrace_gadgets fake = {
	.sigreturn = 0x5000, .store = 0x5100, .pop_arg = 0x5200,
	.ret = 0x5201, .raise = 0x5300, .pop_arg2 = 0x5400,
	.pop_arg3 = 0x5500, .store_reg = 3, .store_disp = 8, .store_pops = 1,
};

static uint8_t img_buf[PTRACE_XSTATE_MAX + 4096];

static uint64_t word(const struct arch_image *img, raddr_t at)
{
	uint64_t v;

	assert_true(at >= img->base && at + 8 <= img->base + img->len);
	memcpy(&v, img->buf + (at - img->base), 8);
	return v;
}

/* Follows the chain the way the CPU would, from the first call's return
 * address: each gadget's effect on rsp and the registers that matter;
 * every function must be entered with rsp = 8 mod 16. */
static void walk(const struct arch_image *img, raddr_t sp, uint64_t *rdi,
		 raddr_t *fns, int *nfns)
{
	int n = 0;

	for (;;) {
		raddr_t at = word(img, sp);

		sp += 8;
		if (at == fake.ret)
			continue;
		if (at == fake.pop_arg || at == fake.pop_arg2 || at == fake.pop_arg3) {
			if (at == fake.pop_arg)
				*rdi = word(img, sp);
			sp += 8;
			continue;
		}
		if (at == fake.store) {
			sp += 8 * (raddr_t)fake.store_pops;
			continue;
		}
		if (at == fake.sigreturn) {
			/* rt_sigreturn's frame is 8 below the sp it sees */
			assert_int_equal(sp, img->ret_sp);
			break;
		}
		/* a function: entered with rsp = 8 mod 16 after the ret */
		assert_int_equal(sp % 16, 8);
		fns[n++] = at;
		assert_true(n < 16);
	}
	*nfns = n;
}

static void test_layout_chain(void **state)
{
	struct ptrace_arch_regs *saved = calloc(1, arch_regs_size());
	struct ptrace_arch_regs *work = calloc(1, arch_regs_size());
	struct ptrace_step steps[3] = { { 0x7000, 0 }, { 0x7100, 42 },
					{ 0x7200, 1 } };
	struct ptrace_undo undo[3] = {
		{ 0x8000, 2, PTRACE_ARG_RESULT, { 0, 16384, 0 } },
		{ 0x8100, 1, PTRACE_ARG_VALUE, { (uint64_t)-1, 0, 0 } },
		{ 0x8200, 3, PTRACE_ARG_ADDR, { 1, 0x9000, 1 } },
	};
	struct arch_call c = { 0 };
	struct arch_image img = { img_buf, sizeof(img_buf), 0, 0, 0, 0 };
	raddr_t fns[16];
	uint64_t rdi = 0;
	int n, i;

	(void)state;
	assert_non_null(saved);
	assert_non_null(work);
	c.steps = steps;
	c.nsteps = 3;
	c.args = &steps[0].arg;
	c.nargs = 1;
	c.notify_sig = SIGURG;
	c.undo = undo;
	c.nundo = 3;
	c.top = 0x7fff0000123;
	assert_int_equal(arch_layout_call(saved, 0x1234, &fake, &c, work, &img), 0);
	assert_true(img.base + img.len <= c.top);
	assert_int_equal(arch_pc(work), 0x7000);
	assert_int_equal(arch_sp(work) % 16, 8);
	assert_int_equal(arch_sp(work), img.base);
	walk(&img, arch_sp(work), &rdi, fns, &n);
	/* the calls, raise, then the undo steps newest first */
	assert_int_equal(n, 6);
	assert_int_equal(fns[0], 0x7100);
	assert_int_equal(fns[1], 0x7200);
	assert_int_equal(fns[2], fake.raise);
	assert_int_equal(fns[3], 0x8200);
	assert_int_equal(fns[4], 0x8100);
	assert_int_equal(fns[5], 0x8000);
	/* the frame: pretcode, then fpstate 64-aligned inside the image */
	assert_int_equal(word(&img, img.ret_sp - 8), fake.sigreturn);
	{
		/* uc_mcontext starts 8 + 40 bytes into the frame; fpstate is
		 * its 21st quadword (after 18 regs, cs/gs/fs/ss, 4 more) */
		raddr_t frame = img.ret_sp - 8;
		uint64_t fp = word(&img, frame + 48 + 8 * 18 + 8 + 8 * 4);
		uint64_t mask = word(&img, frame + 48 + 256);

		assert_int_equal(fp % 64, 0);
		assert_true(fp > frame && fp < img.base + img.len);
		assert_int_equal(mask, 0x1234);
	}
	/* the result goes to the first argument of the RESULT step: the
	 * store writes to rbx + 8, so rbx = slot - 8 */
	for (i = 0; i < 1; i++) {
		raddr_t slot = img.slot;

		assert_true(slot >= img.base && slot < img.ret_sp);
		assert_int_equal(word(&img, slot - 8), fake.pop_arg);
	}
	free(saved);
	free(work);
}

/* An undo chain alone (a held thread between calls): no call, no raise. */
static void test_layout_undo_only(void **state)
{
	struct ptrace_arch_regs *saved = calloc(1, arch_regs_size());
	struct ptrace_arch_regs *work = calloc(1, arch_regs_size());
	struct ptrace_undo undo[2] = {
		{ 0x8000, 1, PTRACE_ARG_VALUE, { 5, 0, 0 } },
		{ 0x8100, 2, PTRACE_ARG_VALUE, { 6, 7, 0 } },
	};
	struct arch_call c = { 0 };
	struct arch_image img = { img_buf, sizeof(img_buf), 0, 0, 0, 0 };
	raddr_t fns[16];
	uint64_t rdi = 0;
	int n;

	(void)state;
	c.undo = undo;
	c.nundo = 2;
	c.top = 0x7fff0000000;
	assert_int_equal(arch_layout_call(saved, 0, &fake, &c, work, &img), 0);
	assert_int_equal(arch_pc(work), fake.ret);
	walk(&img, arch_sp(work), &rdi, fns, &n);
	assert_int_equal(n, 2);
	assert_int_equal(fns[0], 0x8100);
	assert_int_equal(fns[1], 0x8000);
	assert_int_equal(rdi, 5);
	free(saved);
	free(work);
}

/* ---- live calls in a child -------------------------------------------- */

static pid_t child;

/* The syscall a task waits in (/proc/PID/syscall), -1 if running or
 * unknown. */
static long syscall_of(pid_t pid)
{
	char path[64], buf[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || buf[0] < '0' || buf[0] > '9')
		return -1;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}


/* The child: parked in read() on a pipe nobody writes, so that it is
 * held inside an interruptible wait, as a hijacked thread is. */
static int spawn_child(int *hold)
{
	int p[2];

	if (pipe(p) < 0)
		return -1;
	child = fork();
	if (child == 0) {
		char b;

		close(p[1]);
		for (;;)
			if (read(p[0], &b, 1) == 0)
				_exit(0);
	}
	close(p[0]);
	*hold = p[1];
	if (child < 0)
		return -1;
	/* parked in its read (it closed its copy of the write end first) */
	for (int i = 0; i < 5000 && syscall_of(child) != SYS_read; i++)
		usleep(200);
	return syscall_of(child) == SYS_read ? 0 : -1;
}

static int open_gadgets(pid_t pid, struct elf_proc **epp,
			struct ptrace_gadgets *g, raddr_t *sys, raddr_t *cls)
{
	struct trm_err err = { 0 };
	struct elf_proc *ep = elf_proc_open(pid, &err);
	int libc = -1;
	size_t i;

	if (!ep)
		return -1;
	memset(g, 0, sizeof(*g));
	if (elf_find_symbol(ep, -1, "syscall", sys, NULL, &libc) < 0 ||
	    elf_find_symbol(ep, libc, "raise", &g->raise, NULL, NULL) < 0 ||
	    elf_find_symbol(ep, libc, "close", cls, NULL, NULL) < 0)
		return -1;
	for (i = 0; i < elf_proc_nmodules(ep); i++) {
		const uint8_t *code;
		size_t len;
		raddr_t addr;

		if (elf_module_code(ep, i, &code, &len, &addr) == 0)
			ptrace_scan_gadgets(code, len, addr, g);
	}
	*epp = ep;
	return ptrace_gadgets_check(pid, g) ? 0 : -1;
}

static int count_fds(pid_t pid)
{
	char path[64];
	int n = 0;

	for (int fd = 0; fd < 64; fd++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

static void test_live_call_and_undo(void **state)
{
	struct ptrace_thread t;
	struct ptrace_gadgets g;
	struct trm_err err = { 0 };
	struct elf_proc *ep = NULL;
	raddr_t sys, cls;
	uint64_t args[6] = { 0 };
	int64_t r = 0;
	int hold, fds0, st;

	(void)state;
	assert_int_equal(spawn_child(&hold), 0);
	assert_int_equal(open_gadgets(child, &ep, &g, &sys, &cls), 0);
	fds0 = count_fds(child);
	assert_int_equal(ptrace_seize(&t, child, child, NULL, 2000, &err), 0);
	t.gadgets = &g;
	assert_true(t.notify_sig > 0);
	/* getpid, guarded: the child's own pid */
	assert_int_equal(ptrace_remote_syscall(&t, sys, SYS_getpid, args, &r,
					       &err), 0);
	assert_int_equal(r, child);
	/* dup(0) with an undo close of its result, left to the child */
	assert_true(ptrace_undo_push(&t, cls, 1, PTRACE_ARG_RESULT, 0, 0, 0) >= 0);
	assert_int_equal(ptrace_remote_syscall(&t, sys, SYS_dup, args, &r, &err), 0);
	assert_true(r >= 0);
	assert_int_equal(count_fds(child), fds0 + 1);
	ptrace_release(&t); /* the child runs its undo step, then reads on */
	for (int i = 0; i < 2000 && count_fds(child) != fds0; i++)
		usleep(1000);
	assert_int_equal(count_fds(child), fds0);
	/* still parked in its read, alive */
	assert_int_equal(waitpid(child, &st, WNOHANG), 0);
	close(hold);
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	elf_proc_close(ep);
}

/* A tracer killed while its call runs: the tracer is a child of ours,
 * the target a sibling; the call is nanosleep(300 ms), and the kill lands
 * once the target sleeps in it.  The target must finish the call, close the fd its
 * undo step names, and go back to its read. */
static void test_tracer_killed_in_call(void **state)
{
	struct ptrace_gadgets g;
	struct elf_proc *ep = NULL;
	raddr_t sys, cls;
	int hold, fds0, st, sync[2];
	pid_t tracer;

	(void)state;
	assert_int_equal(spawn_child(&hold), 0);
	assert_int_equal(open_gadgets(child, &ep, &g, &sys, &cls), 0);
	fds0 = count_fds(child);
	assert_int_equal(pipe(sync), 0);
	tracer = fork();
	if (tracer == 0) {
		struct ptrace_thread t;
		struct trm_err err = { 0 };
		uint64_t args[6] = { 0 };
		struct timespec ts = { 0, 300 * 1000 * 1000 };
		int64_t r;
		raddr_t scratch;

		if (ptrace_seize(&t, child, child, NULL, 2000, &err) < 0)
			_exit(2);
		t.gadgets = &g;
		/* a dup(0) to undo, then a nanosleep whose timespec sits
		 * below the call's stack */
		if (ptrace_undo_push(&t, cls, 1, PTRACE_ARG_RESULT, 0, 0, 0) < 0 ||
		    ptrace_remote_syscall(&t, sys, SYS_dup, args, &r, &err) < 0)
			_exit(3);
		scratch = ptrace_saved_sp(&t) - 1024; /* free: above the frame */
		if (target_write_mem(child, scratch, &ts, sizeof(ts)) < 0)
			_exit(4);
		args[0] = scratch;
		if (write(sync[1], "x", 1) != 1)
			_exit(5);
		(void)ptrace_remote_syscall(&t, sys, SYS_nanosleep, args, &r, &err);
		_exit(6);
	}
	close(sync[1]);
	{
		char b;

		if (read(sync[0], &b, 1) != 1) {
			assert_int_equal(waitpid(tracer, &st, 0), tracer);
			fail_msg("the tracer ended early: status %#x", st);
		}
	}
	close(sync[0]);
	/* kill the tracer once the child sleeps in the call's nanosleep */
	for (int i = 0; i < 5000 && syscall_of(child) != SYS_nanosleep; i++)
		usleep(200);
	assert_int_equal(syscall_of(child), SYS_nanosleep);
	kill(tracer, SIGKILL);
	assert_int_equal(waitpid(tracer, &st, 0), tracer);
	for (int i = 0; i < 2000 && count_fds(child) != fds0; i++)
		usleep(1000);
	assert_int_equal(count_fds(child), fds0);
	assert_int_equal(waitpid(child, &st, WNOHANG), 0); /* alive */
	close(hold);
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	elf_proc_close(ep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_patterns),
		cmocka_unit_test(test_other_patterns),
		cmocka_unit_test(test_layout_chain),
		cmocka_unit_test(test_layout_undo_only),
		cmocka_unit_test(test_live_call_and_undo),
		cmocka_unit_test(test_tracer_killed_in_call),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
