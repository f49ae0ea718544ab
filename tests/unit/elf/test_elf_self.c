/* test_elf_self.c - elf on trmtop's own test process: its modules,
 * symbols, sections and a libdw unwind of its own stack. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "elf_int.h"

/* Known symbols of the test binary (in .symtab, not exported). */
__attribute__((noinline, used)) int trm_test_marker_fn(int x);
int trm_test_marker_fn(int x)
{
	return x * 3 + 1;
}

int trm_test_marker_obj[16] = {1, 2, 3};

static void test_modules(void **state)
{
	struct trm_err err = {0};
	struct elf_proc *ep = elf_proc_open(getpid(), &err);
	struct elf_module_info mi;
	char exe[TARGET_PATH_MAX];
	size_t i, n;
	int libc = 0;
	FILE *f;
	unsigned char eh[18];

	(void)state;
	assert_non_null(ep);
	n = elf_proc_nmodules(ep);
	assert_true(n >= 3);
	assert_int_equal(target_read_exe(getpid(), exe, sizeof(exe), NULL), 0);
	assert_int_equal(elf_proc_module(ep, 0, &mi), 0);
	assert_int_equal(mi.is_exe, 1);
	assert_string_equal(mi.path, exe);
	assert_true(strlen(mi.build_id) == 40);
	/* pie flag agrees with e_type on disk */
	f = fopen("/proc/self/exe", "rb");
	assert_non_null(f);
	assert_int_equal(fread(eh, 1, sizeof(eh), f), sizeof(eh));
	fclose(f);
	assert_int_equal(mi.pie, eh[16] == ET_DYN);
	assert_true(mi.lo <= (raddr_t)(uintptr_t)&trm_test_marker_fn);
	assert_true(mi.hi > (raddr_t)(uintptr_t)&trm_test_marker_fn);
	for (i = 1; i < n; i++) {
		int rc = elf_proc_module(ep, i, &mi);

		/* data files mapped by the process are listed, not usable */
		assert_true(rc == 0 || rc == -TRM_EBADELF);
		if (rc)
			continue;
		assert_int_equal(mi.is_exe, 0);
		if (strncmp(mi.soname, "libc.so", 7) == 0)
			libc = 1;
	}
	assert_true(libc);
	assert_int_equal(elf_proc_module(ep, n, &mi), -EINVAL);
	elf_proc_close(ep);
	elf_proc_close(NULL);
}

static void test_find_symbol(void **state)
{
	struct trm_err err = {0};
	struct elf_proc *ep = elf_proc_open(getpid(), &err);
	raddr_t addr = 0;
	size_t size = 0;
	int mod = -2;

	(void)state;
	assert_non_null(ep);
	/* .symtab of the executable */
	assert_int_equal(elf_find_symbol(ep, -1, "trm_test_marker_fn", &addr,
					 &size, &mod),
			 0);
	assert_true(addr == (raddr_t)(uintptr_t)&trm_test_marker_fn);
	assert_true(size > 0);
	assert_int_equal(mod, 0);
	assert_int_equal(elf_find_symbol(ep, 0, "trm_test_marker_obj", &addr,
					 &size, NULL),
			 0);
	assert_true(addr == (raddr_t)(uintptr_t)trm_test_marker_obj);
	assert_int_equal(size, sizeof(trm_test_marker_obj));
	/* .dynsym of libc */
	assert_int_equal(elf_find_symbol(ep, -1, "getppid", &addr, NULL, &mod),
			 0);
	assert_true(addr == (raddr_t)(uintptr_t)&getppid);
	assert_true(mod > 0);
	assert_int_equal(elf_find_symbol(ep, 0, "getppid", &addr, NULL, NULL),
			 -TRM_ENOSYM);
	assert_int_equal(elf_find_symbol(ep, -1, "no_such_symbol_xyz", NULL,
					 NULL, NULL),
			 -TRM_ENOSYM);
	assert_int_equal(elf_find_symbol(ep, 999, "getppid", NULL, NULL, NULL),
			 -EINVAL);
	elf_proc_close(ep);
}

static void test_symbolize(void **state)
{
	struct trm_err err = {0};
	struct elf_proc *ep = elf_proc_open(getpid(), &err);
	const char *name, *path;
	char exe[TARGET_PATH_MAX];
	uint64_t off;
	raddr_t a = (raddr_t)(uintptr_t)&trm_test_marker_fn;

	(void)state;
	assert_non_null(ep);
	assert_int_equal(target_read_exe(getpid(), exe, sizeof(exe), NULL), 0);
	assert_int_equal(elf_symbolize(ep, a + 2, &name, &path, &off), 0);
	assert_string_equal(name, "trm_test_marker_fn");
	assert_string_equal(path, exe);
	assert_int_equal(off, 2);
	assert_int_equal(elf_symbolize(ep, (raddr_t)(uintptr_t)&getppid,
				       &name, &path, &off),
			 0);
	assert_non_null(strstr(name, "getppid"));
	assert_int_equal(off, 0);
	assert_int_equal(elf_symbolize(ep, 16, &name, &path, &off),
			 -TRM_ENOSYM);
	assert_string_equal(name, "");
	elf_proc_close(ep);
}

static void test_find_section(void **state)
{
	struct trm_err err = {0};
	struct elf_proc *ep = elf_proc_open(getpid(), &err);
	raddr_t addr;
	size_t size;
	raddr_t fn = (raddr_t)(uintptr_t)&trm_test_marker_fn;
	raddr_t obj = (raddr_t)(uintptr_t)trm_test_marker_obj;

	(void)state;
	assert_non_null(ep);
	assert_int_equal(elf_find_section(ep, 0, ".text", &addr, &size), 0);
	assert_true(fn >= addr && fn < addr + size);
	assert_int_equal(elf_find_section(ep, 0, ".data", &addr, &size), 0);
	assert_true(obj >= addr && obj < addr + size);
	assert_int_equal(elf_find_section(ep, 0, ".PyRuntime", &addr, &size),
			 -TRM_ENOSYM);
	elf_proc_close(ep);
}

static void test_not_python(void **state)
{
	struct trm_err err = {0};
	struct elf_proc *ep = elf_proc_open(getpid(), &err);
	struct elf_pyinfo py;

	(void)state;
	assert_non_null(ep);
	assert_int_equal(elf_find_python(ep, getpid(), &py, &err), -TRM_ENOTPY);
	assert_int_equal(err.code, -TRM_ENOTPY);
	elf_proc_close(ep);
}

static void test_open_gone(void **state)
{
	struct trm_err err = {0};
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	errno = 0;
	assert_null(elf_proc_open(pid, &err));
	assert_int_equal(errno, ENOENT);
	assert_int_equal(err.code, -ENOENT);
}

static void test_parse_version(void **state)
{
	unsigned a, b, c, lv, se;

	(void)state;
	assert_int_equal(elf_parse_version("3.8.18", 6, &a, &b, &c, &lv, &se),
			 6);
	assert_int_equal(a, 3);
	assert_int_equal(b, 8);
	assert_int_equal(c, 18);
	assert_int_equal(lv, 0xF);
	assert_int_equal(elf_parse_version("3.13.0rc2 (x", 12, &a, &b, &c, &lv,
					   &se),
			 9);
	assert_int_equal(b, 13);
	assert_int_equal(lv, 0xC);
	assert_int_equal(se, 2);
	assert_int_equal(elf_parse_version("3.12.0a7+", 9, &a, &b, &c, &lv,
					   &se),
			 9);
	assert_int_equal(lv, 0xA);
	assert_int_equal(se, 7);
	assert_int_equal(elf_parse_version("2.7.18", 6, &a, &b, &c, &lv, &se),
			 6);
	assert_int_equal(a, 2);
	assert_int_equal(elf_parse_version("3.8", 3, &a, &b, &c, &lv, &se), 0);
	assert_int_equal(elf_parse_version("3.100.1", 7, &a, &b, &c, &lv, &se),
			 0);
	assert_int_equal(elf_parse_version("x3.8.1", 6, &a, &b, &c, &lv, &se),
			 0);
	/* length-bounded */
	assert_int_equal(elf_parse_version("3.8.18", 4, &a, &b, &c, &lv, &se),
			 0);
}

/* The unwinding test: a child stops itself three calls deep. */
__attribute__((noinline)) int trm_unwind_level1(int x);
__attribute__((noinline)) int trm_unwind_level2(int x);
__attribute__((noinline)) int trm_unwind_level3(int x);

int trm_unwind_level1(int x)
{
	raise(SIGSTOP);
	return x + 1;
}

int trm_unwind_level2(int x)
{
	return trm_unwind_level1(x) * 2;
}

int trm_unwind_level3(int x)
{
	return trm_unwind_level2(x) + 3;
}

static void regs_to_dwarf(const struct user_regs_struct *r, uint64_t d[ELF_NREGS])
{
	d[0] = r->rax;
	d[1] = r->rdx;
	d[2] = r->rcx;
	d[3] = r->rbx;
	d[4] = r->rsi;
	d[5] = r->rdi;
	d[6] = r->rbp;
	d[7] = r->rsp;
	d[8] = r->r8;
	d[9] = r->r9;
	d[10] = r->r10;
	d[11] = r->r11;
	d[12] = r->r12;
	d[13] = r->r13;
	d[14] = r->r14;
	d[15] = r->r15;
	d[16] = r->rip;
}

static int frame_index(const struct elf_frame *f, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(f[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void test_unwind_child(void **state)
{
	struct trm_err err = {0};
	struct user_regs_struct regs;
	uint64_t dregs[ELF_NREGS];
	struct elf_frame frames[64];
	struct elf_proc *ep;
	size_t n = 0, i;
	pid_t pid;
	int st, i1, i2, i3;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		volatile int r;

		ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		r = trm_unwind_level3(getpid() & 1);
		_exit(r > 100);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSTOPPED(st));
	assert_int_equal(WSTOPSIG(st), SIGSTOP);
	assert_int_equal(ptrace(PTRACE_GETREGS, pid, NULL, &regs), 0);
	regs_to_dwarf(&regs, dregs);

	ep = elf_proc_open(pid, &err);
	assert_non_null(ep);
	assert_int_equal(elf_unwind(ep, pid, dregs, frames, 64, &n, &err), 0);
	for (i = 0; i < n; i++)
		print_message("# frame %zu: %#llx %s (module %d)\n", i,
			      (unsigned long long)frames[i].pc, frames[i].name,
			      frames[i].module);
	i1 = frame_index(frames, n, "trm_unwind_level1");
	i2 = frame_index(frames, n, "trm_unwind_level2");
	i3 = frame_index(frames, n, "trm_unwind_level3");
	assert_true(i1 > 0);
	assert_int_equal(i2, i1 + 1);
	assert_int_equal(i3, i2 + 1);
	assert_int_equal(frames[i1].module, 0);
	assert_true(frames[0].pc == regs.rip);
	assert_true(frames[0].module > 0); /* inside libc */
	assert_true(frame_index(frames, n, "main") > i3);

	/* a second unwind reuses the state; a small buffer truncates */
	assert_int_equal(elf_unwind(ep, pid, dregs, frames, 2, &n, &err), 0);
	assert_int_equal(n, 2);
	elf_proc_close(ep);

	kill(pid, SIGKILL);
	ptrace(PTRACE_CONT, pid, NULL, NULL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modules),
		cmocka_unit_test(test_find_symbol),
		cmocka_unit_test(test_symbolize),
		cmocka_unit_test(test_find_section),
		cmocka_unit_test(test_not_python),
		cmocka_unit_test(test_open_gone),
		cmocka_unit_test(test_parse_version),
		cmocka_unit_test(test_unwind_child),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
