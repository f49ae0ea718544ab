/* test_elf_python.c - the Python version of a process read from its
 * modules (elf/python.c): the interpreters of the suite and fixed texts. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
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

/* The real interpreters of this machine: pyenv's (2.7 and up, found
 * here), then those named on the command line (tests/find_pythons.py
 * through meson: Debian's, 3.14; after --free-threaded, builds that must be
 * recognised as free-threaded). */
#define MAX_INTERP 64

struct interp {
	char path[TARGET_PATH_MAX];
	int free_threaded;
	pid_t pid;
	int to_child; /* the child's stdin */
};

static const char child_code[] =
	"import sys; v = sys.version_info; "
	"sys.stdout.write('ready %d %d %d %d\\n' % (v[0], v[1], v[2], "
	"sys.hexversion)); sys.stdout.flush(); sys.stdin.read()";

/* Start the interpreter and wait for its "ready" line (no sleeps). */
static int spawn(struct interp *in, unsigned v[4])
{
	int to[2], from[2];
	char line[128];
	size_t n = 0;
	pid_t pid;

	if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		execl(in->path, in->path, "-S", "-c", child_code, (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	in->pid = pid;
	in->to_child = to[1];
	while (n + 1 < sizeof(line)) {
		ssize_t r = read(from[0], line + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	close(from[0]);
	if (sscanf(line, "ready %u %u %u %u", &v[0], &v[1], &v[2], &v[3]) != 4)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	struct interp *in = *state;
	int st;

	if (in->to_child >= 0)
		close(in->to_child);
	in->to_child = -1;
	if (in->pid > 0) {
		/* EOF on stdin ends it; make sure on failure paths */
		kill(in->pid, SIGKILL);
		waitpid(in->pid, &st, 0);
	}
	in->pid = 0;
	return 0;
}

static int file_is_pie(const char *path)
{
	unsigned char eh[18];
	FILE *f = fopen(path, "rb");
	int pie = -1;

	if (f) {
		if (fread(eh, 1, sizeof(eh), f) == sizeof(eh))
			pie = eh[16] == ET_DYN;
		fclose(f);
	}
	return pie;
}

/* addr is in an r-xp mapping of the module's file */
static int in_text_of(const struct target_maps *maps, raddr_t addr,
		      const char *path)
{
	size_t i;

	for (i = 0; i < maps->n; i++) {
		const struct target_map *m = &maps->v[i];

		if (addr >= m->start && addr < m->end)
			return strcmp(m->perms, "r-xp") == 0 &&
			       strcmp(m->path, path) == 0;
	}
	return 0;
}

/* Every version method on its own: those that answer must be right, and
 * the memory buffer must answer for every interpreter. */
static void check_methods(struct elf_proc *ep, struct interp *in,
			  const struct elf_pyinfo *found, const unsigned v[4])
{
	static const char *const names[] = {"debug offsets", "Py_Version",
					    "buffer", "rodata", "soname"};
	int m;

	for (m = 0; m < ELF_PYVER_NMETHODS; m++) {
		struct elf_pyinfo py;
		int rc;

		memset(&py, 0, sizeof(py));
		py.module = found->module;
		rc = elf_python_version_by(ep, in->pid, m, &py);
		print_message("#   %-13s: %s\n", names[m],
			      rc == 0 ? py.version : "-");
		if (m == ELF_PYVER_DEBUG_OFFSETS)
			assert_int_equal(rc == 0, v[0] == 3 && v[1] >= 13);
		if (m == ELF_PYVER_PY_VERSION)
			assert_int_equal(rc == 0, v[0] == 3 && v[1] >= 11);
		if (m == ELF_PYVER_BUFFER || m == ELF_PYVER_RODATA ||
		    m == ELF_PYVER_SONAME)
			assert_int_equal(rc, 0);
		if (rc != 0)
			continue;
		assert_int_equal(py.major, v[0]);
		assert_int_equal(py.minor, v[1]);
		if (m != ELF_PYVER_SONAME)
			assert_int_equal(py.hexversion, v[3]);
	}
}

/* The main thread is parked in read(2) on stdin: its native stack must go
 * from libc through the interpreter's C API. */
static void check_unwind(struct elf_proc *ep, struct interp *in,
			 const struct elf_pyinfo *py)
{
	struct user_regs_struct r;
	uint64_t d[ELF_NREGS];
	struct elf_frame f[64];
	struct trm_err err = {0};
	size_t n = 0, i;
	int st, in_py = 0, named_py = 0, rc;

	assert_int_equal(ptrace(PTRACE_SEIZE, in->pid, NULL, NULL), 0);
	assert_int_equal(ptrace(PTRACE_INTERRUPT, in->pid, NULL, NULL), 0);
	assert_int_equal(waitpid(in->pid, &st, __WALL), in->pid);
	assert_int_equal(ptrace(PTRACE_GETREGS, in->pid, NULL, &r), 0);
	d[0] = r.rax; d[1] = r.rdx; d[2] = r.rcx; d[3] = r.rbx;
	d[4] = r.rsi; d[5] = r.rdi; d[6] = r.rbp; d[7] = r.rsp;
	d[8] = r.r8; d[9] = r.r9; d[10] = r.r10; d[11] = r.r11;
	d[12] = r.r12; d[13] = r.r13; d[14] = r.r14; d[15] = r.r15;
	d[16] = r.rip;
	rc = elf_unwind(ep, in->pid, d, f, 64, &n, &err);
	ptrace(PTRACE_DETACH, in->pid, NULL, NULL);
	if (rc != 0)
		fail_msg("elf_unwind: %s", err.msg);
	for (i = 0; i < n; i++) {
		print_message("#   #%zu %#llx %s [%d]\n", i,
			      (unsigned long long)f[i].pc, f[i].name,
			      f[i].module);
		if (f[i].module == py->module) {
			in_py++;
			if (f[i].name[0])
				named_py++;
		}
	}
	assert_true(n >= 4);
	assert_true(f[0].pc == r.rip);
	assert_true(in_py >= 2);
	assert_true(named_py >= 2);
}

static void test_interp(void **state)
{
	static const char *const syms[] = {
		"Py_AddPendingCall", "PyRun_SimpleString", "PyGILState_Ensure",
		"PyGILState_Release", "PyGILState_Check",
	};
	struct interp *in = *state;
	struct trm_err err = {0};
	struct target_maps maps = {0};
	struct elf_module_info mi;
	struct elf_pyinfo py;
	struct elf_proc *ep;
	unsigned v[4];
	int expect_shared = 0;
	size_t i, nsyms;

	assert_int_equal(spawn(in, v), 0);
	assert_int_equal(target_read_maps(in->pid, &maps, &err), 0);
	for (i = 0; i < maps.n; i++)
		if (strstr(maps.v[i].path, "/libpython"))
			expect_shared = 1;

	ep = elf_proc_open(in->pid, &err);
	if (!ep)
		fail_msg("elf_proc_open: %s", err.msg);
	if (elf_find_python(ep, in->pid, &py, &err) != 0)
		fail_msg("elf_find_python: %s", err.msg);
	print_message("# %s: %s via %s, hex %#x, shared %d, pie %d, module %d\n",
		      in->path, py.version, py.how, py.hexversion, py.shared,
		      py.pie, py.module);
	assert_int_equal(py.major, v[0]);
	assert_int_equal(py.minor, v[1]);
	if (strcmp(py.how, "soname") != 0) {
		assert_int_equal(py.micro, v[2]);
		assert_int_equal(py.hexversion, v[3]);
	}
	if (v[0] == 3 && v[1] >= 13)
		assert_string_equal(py.how, "Py_DebugOffsets");
	else if (v[0] == 3 && v[1] >= 11)
		assert_string_equal(py.how, "Py_Version");
	assert_int_equal(py.free_threaded, in->free_threaded);
	assert_int_equal(py.shared, expect_shared);
	assert_int_equal(py.pie, file_is_pie(in->path));

	assert_int_equal(elf_proc_module(ep, (size_t)py.module, &mi), 0);
	if (expect_shared)
		assert_non_null(strstr(mi.path, "/libpython"));
	else
		assert_int_equal(mi.is_exe, 1);

	/* PyGILState_Check appeared in 3.4 */
	nsyms = v[0] == 2 ? 4 : 5;
	for (i = 0; i < nsyms; i++) {
		raddr_t addr = 0;
		int mod = -1;

		if (elf_find_symbol(ep, -1, syms[i], &addr, NULL, &mod) != 0)
			fail_msg("%s not found", syms[i]);
		assert_int_equal(mod, py.module);
		if (!in_text_of(&maps, addr, mi.path))
			fail_msg("%s at %#llx: not in r-xp of %s", syms[i],
				 (unsigned long long)addr, mi.path);
	}
	check_methods(ep, in, &py, v);
	check_unwind(ep, in, &py);
	elf_proc_close(ep);
	target_maps_fini(&maps);
}

int main(int argc, char **argv)
{
	static struct interp interps[MAX_INTERP];
	static struct CMUnitTest tests[MAX_INTERP];
	const char *home = getenv("HOME");
	char pat[TARGET_PATH_MAX];
	glob_t g;
	size_t n = 0, i;

	memset(&g, 0, sizeof(g));
	if (home) {
		snprintf(pat, sizeof(pat), "%s/.pyenv/versions/*/bin/python",
			 home);
		if (glob(pat, 0, NULL, &g) != 0)
			g.gl_pathc = 0;
	}
	for (i = 0; i < g.gl_pathc && n + 1 < MAX_INTERP; i++) {
		/* python3 where there is one (python may be 2.x elsewhere) */
		snprintf(interps[n].path, sizeof(interps[n].path), "%s3",
			 g.gl_pathv[i]);
		if (access(interps[n].path, X_OK) != 0)
			snprintf(interps[n].path, sizeof(interps[n].path), "%s",
				 g.gl_pathv[i]);
		n++;
	}
	if (home)
		globfree(&g);
	for (i = 1; i < (size_t)argc && n < MAX_INTERP; i++) {
		if (strcmp(argv[i], "--free-threaded") == 0 &&
		    i + 1 < (size_t)argc) {
			interps[n].free_threaded = 1;
			i++;
		}
		snprintf(interps[n++].path, sizeof(interps[0].path), "%s",
			 argv[i]);
	}
	for (i = 0; i < n; i++) {
		interps[i].to_child = -1;
		tests[i].name = interps[i].path;
		tests[i].test_func = test_interp;
		tests[i].setup_func = NULL;
		tests[i].teardown_func = teardown;
		tests[i].initial_state = &interps[i];
	}
	return _cmocka_run_group_tests("test_elf_python", tests, n, NULL, NULL);
}
