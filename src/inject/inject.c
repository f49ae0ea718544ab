#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "inject_int.h"
#include "pep768.h"
#include "trmtop/agent.h"
#include "trmtop/ptrace.h"
#include "trmtop/util.h"

#define PAGE_LEN 16384u         /* private page: call stack, then text */
#define PAGE_TEXT_OFF 8192u     /* bootstrap text and scratch from here */
#define PAGE_SCRATCH_OFF 15360u /* pipe fds, memfd name */
#define SEIZE_TIMEOUT_MS 2000
#define CALL_TIMEOUT_MS 1000
#define GIL_TIMEOUT_MS 60000

static const char *const unsafe_frames[] = {
	/* the allocator: our Python run would take its locks again */
	"malloc", "free", "calloc", "realloc", "__libc_malloc", "__libc_free",
	"__libc_calloc", "__libc_realloc", "_int_malloc", "_int_free",
	"_int_realloc", "malloc_consolidate", "posix_memalign", "memalign",
	"aligned_alloc", "valloc", "pvalloc", "__libc_memalign", "sysmalloc",
	/* the loader */
	"dlopen", "dlclose", "dlsym", "dlmopen", "__libc_dlopen_mode",
	"dl_open_worker", "_dl_open", "_dl_close", "_dl_map_object",
	"_dl_runtime_resolve", "_dl_runtime_resolve_xsave",
	"_dl_runtime_resolve_xsavec", "_dl_fixup",
	/* taking or handing over the GIL */
	"take_gil", "drop_gil", "PyEval_RestoreThread", "PyEval_AcquireThread",
	"PyEval_AcquireLock", "PyGILState_Ensure", "PyGILState_Release",
	"PyEval_SaveThread", "PyEval_ReleaseThread", "PyEval_ReleaseLock",
	"_PyEval_ReInitThreads", "PyOS_AfterFork_Child", "_Py_HandlePending",
	"Py_MakePendingCalls", "make_pending_calls", "_PyEval_AddPendingCall",
	"Py_AddPendingCall",
	/* fork */
	"fork", "_Fork", "__libc_fork",
	/* condition variables and mutexes: how take_gil waits for the GIL
	 * (often inlined into its caller, so its own name may be missing),
	 * and how C code waits while it holds other locks; Python's own
	 * blocking calls use semaphores or plain syscalls */
	"pthread_cond_wait", "pthread_cond_timedwait", "pthread_cond_clockwait",
	"__pthread_cond_wait", "__pthread_cond_timedwait",
	"__pthread_cond_clockwait", "pthread_mutex_lock", "__pthread_mutex_lock",
	"pthread_mutex_timedlock", "pthread_mutex_clocklock", "__lll_lock_wait",
	"__lll_lock_wait_private", "pthread_rwlock_rdlock", "pthread_rwlock_wrlock",
	/* ... and releasing them: a futex wake is a syscall too */
	"pthread_cond_signal", "pthread_cond_broadcast", "__pthread_cond_signal",
	"__pthread_cond_broadcast", "pthread_mutex_unlock", "__pthread_mutex_unlock",
	"__lll_lock_wake", "__lll_lock_wake_private", "pthread_rwlock_unlock",
	/* a thread ending */
	"PyThread_exit_thread", "_PyThreadState_DeleteCurrent",
	"PyThreadState_Clear",
	/* the interpreter finishing */
	"Py_FinalizeEx", "Py_Finalize", "wait_for_thread_shutdown",
	NULL,
};

/* The eval loop: the thread is running Python code (it called into C,
 * which blocks).  Exported in every supported version, so present even in
 * stripped executables. */
static const char *const python_frames[] = {
	"_PyEval_EvalFrameDefault", "PyEval_EvalFrameEx", NULL,
};

/* Where a thread's stack starts: reached before any eval-loop frame, the
 * thread is starting (its thread state half made, maybe waiting for the
 * GIL in an inlined take_gil) or ending. */
static const char *const thread_roots[] = {
	"thread_run", "t_bootstrap", "pythread_wrapper", "start_thread",
	"clone", "clone3", NULL,
};

static int name_in(const char *name, const char *const *list)
{
	size_t i;

	if (!name || !name[0])
		return 0;
	for (i = 0; list[i]; i++)
		if (strcmp(name, list[i]) == 0)
			return 1;
	return 0;
}

int inject_test_pause(const char *stage)
{
	const char *want = getenv("TRMTOP_TEST_PAUSE");
	const char *fifo = getenv("TRMTOP_TEST_PAUSE_FIFO");
	char line[64];
	int fd, n;

	if (!want || strcmp(want, stage) != 0)
		return 0;
	if (fifo && fifo[0]) {
		fd = open(fifo, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			n = snprintf(line, sizeof(line), "%s\n", stage);
			if (write(fd, line, (size_t)n) < 0) {
				/* the test reads it; nothing to do if it left */
			}
			close(fd);
		}
	}
	/* hold here until a signal arrives; SIGKILL simply ends us */
	while (inject_sleep(1000) == 0)
		;
	return -TRM_EINTR;
}

static int check_abort(struct trm_err *err)
{
	int sig = ptrace_check_signals();

	if (!sig)
		return 0;
	return trm_err_set(err, -TRM_EINTR, "interrupted by %s",
			   strsignal(sig));
}

/* TRMTOP_TRACE=1: the time of each attach stage on stderr */
static uint64_t g_trace_t0;

static void trace_stage(const char *stage)
{
	static int on = -1;

	if (on < 0)
		on = getenv("TRMTOP_TRACE") != NULL;
	if (on)
		fprintf(stderr, "trmtop: %8.3f ms %s\n",
			(double)(util_now_ns() - g_trace_t0) / 1e6, stage);
}

#define PAUSE(stage)                                                   \
	do {                                                           \
		trace_stage(stage);                                    \
		rc = inject_test_pause(stage);                         \
		if (rc < 0) {                                          \
			trm_err_set(err, rc, "interrupted at %s", stage); \
			goto out;                                      \
		}                                                      \
		rc = check_abort(err);                                 \
		if (rc < 0)                                            \
			goto out;                                      \
	} while (0)

/* ---- preflight ---------------------------------------------------- */

static int explain_eperm(pid_t pid, int code, struct trm_err *err)
{
	struct target_status st;
	char buf[16] = "";
	int fd;
	ssize_t n;

	fd = open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	if (target_read_status(pid, 0, &st, NULL) == 0 && st.uid_real != getuid() &&
	    geteuid() != 0) {
		trm_err_set(err, code,
			    "attach to %d: permission denied: process belongs "
			    "to another user (uid %u)", (int)pid, (unsigned)st.uid_real);
		trm_err_hint(err, "run trmtop as that user, or as root");
		return code;
	}
	if (buf[0] && buf[0] != '0') {
		trm_err_set(err, code,
			    "attach to %d: permission denied: kernel.yama.ptrace_scope is %c",
			    (int)pid, buf[0]);
		trm_err_hint(err, "run as root or with CAP_SYS_PTRACE, or: sysctl kernel.yama.ptrace_scope=0");
		return code;
	}
	trm_err_set(err, code,
		    "attach to %d: permission denied: missing CAP_SYS_PTRACE",
		    (int)pid);
	trm_err_hint(err, "in a container, add --cap-add=SYS_PTRACE; otherwise run as root");
	return code;
}

/* The checks of inject_preflight; with epp the opened ELF view of the
 * process is handed to the caller instead of closed. */
static int preflight(pid_t pid, struct inject_target *t, struct elf_proc **epp,
		     struct trm_err *err)
{
	struct target_status st;
	struct elf_proc *ep = NULL;
	int rc;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	rc = target_read_status(pid, 0, &st, NULL);
	if (rc < 0) {
		if (rc == -ENOENT || rc == -ESRCH)
			return trm_err_set(err, -ESRCH, "pid %d: no such process",
					   (int)pid);
		return trm_err_set(err, rc, "pid %d: %s", (int)pid, strerror(-rc));
	}
	if (st.state == 'Z' || st.state == 'X')
		return trm_err_set(err, -TRM_EEXITED, "pid %d: process has exited (zombie)",
				   (int)pid);
	if (st.tgid != pid)
		return trm_err_set(err, -ESRCH, "pid %d: is a thread of %d, not a process",
				   (int)pid, (int)st.tgid);
	if (st.state == 'T' || st.state == 't') {
		rc = trm_err_set(err, -TRM_ESTOPPED, "pid %d: process is stopped",
				 (int)pid);
		trm_err_hint(err, "resume it first (kill -CONT %d)", (int)pid);
		return rc;
	}
	if (st.tracer != 0) {
		struct target_status tr;
		const char *name = "?";

		if (target_read_status(st.tracer, 0, &tr, NULL) == 0)
			name = tr.name;
		rc = trm_err_set(err, -TRM_ETRACED,
				 "pid %d: already traced by process %d (%s)",
				 (int)pid, (int)st.tracer, name);
		trm_err_hint(err, "detach the other tracer (debugger, strace, profiler) first");
		return rc;
	}
	rc = target_read_exe(pid, t->exe, sizeof(t->exe), NULL);
	if (rc == -EACCES || rc == -EPERM)
		return explain_eperm(pid, -EPERM, err);
	ep = elf_proc_open(pid, err);
	if (!ep) {
		rc = -errno;
		if (rc == -EACCES || rc == -EPERM) {
			trm_err_clear(err);
			return explain_eperm(pid, -EPERM, err);
		}
		return trm_err_set(err, rc ? rc : -EIO, "pid %d: reading its mappings failed",
				   (int)pid);
	}
	rc = elf_find_python(ep, pid, &t->py, err);
	if (rc < 0) {
		trm_err_clear(err);
		rc = trm_err_set(err, -TRM_ENOTPY, "pid %d (%s): not a Python process",
				 (int)pid, st.name);
	} else if (t->py.major < 3 || (t->py.major == 3 && t->py.minor < 8)) {
		rc = trm_err_set(err, -TRM_EPYVER,
				 "pid %d: Python %s is not supported",
				 (int)pid, t->py.version);
		trm_err_hint(err, "trmtop supports CPython 3.8 to 3.14");
	} else if (t->py.free_threaded) {
		rc = trm_err_set(err, -TRM_EFREETHREAD,
				 "pid %d: Python %s is a free-threaded build",
				 (int)pid, t->py.version);
		trm_err_hint(err, "tracemalloc snapshots of free-threaded builds are not supported yet");
	}
	if (rc == 0 && epp)
		*epp = ep;
	else
		elf_proc_close(ep);
	return rc;
}

int inject_preflight(pid_t pid, struct inject_target *t, struct trm_err *err)
{
	return preflight(pid, t, NULL, err);
}

/* ---- the bootstrap script ------------------------------------------ */

int inject_bootstrap_text(char *buf, size_t cap, const struct inject_boot *b)
{
	/* One expression statement: binds nothing in __main__, and the inner
	 * try/except keeps every exception (even KeyboardInterrupt) out of
	 * the target's code.  Not compile(): its first call builds the AST
	 * types, 220 KiB the target would keep for ever.  _imp.create_dynamic
	 * loads the agent from the memfd without importlib.util; the memfd is
	 * checked by name first, as its fd number may have been reused by the
	 * time this runs.  As little else as possible: every os call lets the
	 * GIL go, which costs a switch interval against a busy thread, so
	 * start() closes what the target must not keep, in C. */
	int n = snprintf(buf, cap,
		"exec(\"try:\\n"
		" import sys\\n"
		" m=sys.modules.get('_trmtop_agent')\\n"
		" if m is None:\\n"
		"  import posix\\n"
		"  f='/proc/self/fd/%d'\\n"
		"  if posix.readlink(f)=='/memfd:trmtop-%016" PRIx64 " (deleted)':\\n"
		"   import _imp\\n"
		"   m=_imp.create_dynamic(type('s',(),{'name':'_trmtop_agent','origin':f}))\\n"
		"   sys.modules['_trmtop_agent']=m\\n"
		" m.start(%d,%d,%lu,%lu,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%d,%d,%d,%d)\\n"
		"except BaseException:\\n"
		" pass\\n\",{})\n",
		b->memfd, b->token,
		b->ctl_r, b->data_w, b->ctl_ino, b->data_ino, b->token, b->page,
		b->page_len, b->ctl_w, b->data_r, b->memfd, b->script_fd);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

/* ---- one attach ----------------------------------------------------- */

struct syms {
	raddr_t add_pending, run_simple, gil_ensure, gil_release, gil_check;
	raddr_t libc_syscall;
};

struct attach {
	pid_t pid;
	const struct inject_opts *opts;
	struct elf_proc *ep;
	struct inject_target *tgt;
	struct syms sym;
	uint64_t token;
	uint64_t t0;
	/* resources created in the target */
	int have_res;
	int t_memfd, t_ctl_r, t_ctl_w, t_data_r, t_data_w;
	int t_script;        /* memfd holding the script (PEP 768), or -1 */
	unsigned long ctl_ino, data_ino;
	int ctl_fd, data_fd; /* ours */
	int queued;          /* a pending call is queued */
	uint64_t ns_held;    /* threads held by ptrace, in all */
	int reader;          /* c->rd is set up on data_fd */
	struct ptrace_gadgets gadgets; /* what remote calls return through */
	int have_gadgets;
};

static int bootstrap_for(const struct attach *a, raddr_t page, uint64_t page_len,
			 char *buf, size_t cap)
{
	struct inject_boot b = {
		.memfd = a->t_memfd, .script_fd = a->t_script,
		.ctl_r = a->t_ctl_r, .ctl_w = a->t_ctl_w,
		.data_r = a->t_data_r, .data_w = a->t_data_w,
		.ctl_ino = a->ctl_ino, .data_ino = a->data_ino,
		.token = a->token, .page = page, .page_len = page_len,
	};

	return inject_bootstrap_text(buf, cap, &b);
}

static void ensure_reader(struct attach *a, struct inject_conn *c)
{
	if (a->have_res && a->data_fd >= 0 && !a->reader) {
		wire_reader_init(&c->rd, a->data_fd, WIRE_MAX_PAYLOAD);
		wire_reader_set_wake(&c->rd, ptrace_sigfd(), inject_wake_on_signal, NULL);
		a->reader = 1;
	}
}

/* The code remote calls return through (ptrace.h), from the C library
 * first (its rt_sigreturn trampoline), then the interpreter and the
 * executable; checked against the target's memory.  Without it, calls are
 * not guarded against trmtop's death (said with -v). */
static void find_gadgets(struct attach *a, int libc)
{
	int mods[3] = { libc, a->tgt->py.module, 0 };
	size_t i;

	memset(&a->gadgets, 0, sizeof(a->gadgets));
	for (i = 0; i < 3; i++) {
		const uint8_t *code;
		size_t len;
		raddr_t addr;

		if (mods[i] < 0 ||
		    elf_module_code(a->ep, (size_t)mods[i], &code, &len, &addr) < 0)
			continue;
		ptrace_scan_gadgets(code, len, addr, &a->gadgets);
	}
	if (elf_find_symbol(a->ep, libc, "raise", &a->gadgets.raise, NULL,
			    NULL) < 0)
		a->gadgets.raise = 0;
	a->have_gadgets = ptrace_gadgets_check(a->pid, &a->gadgets);
	if (!a->have_gadgets && a->opts->verbose)
		fprintf(stderr, "trmtop: no return path for guarded remote calls "
			"in pid %d: a trmtop killed during a remote call would "
			"crash it\n", (int)a->pid);
}

static int find_syms(struct attach *a, struct trm_err *err)
{
	static const struct {
		const char *name;
		size_t off;
	} need[] = {
		{ "Py_AddPendingCall", offsetof(struct syms, add_pending) },
		{ "PyRun_SimpleString", offsetof(struct syms, run_simple) },
		{ "PyGILState_Ensure", offsetof(struct syms, gil_ensure) },
		{ "PyGILState_Release", offsetof(struct syms, gil_release) },
		{ "PyGILState_Check", offsetof(struct syms, gil_check) },
	};
	size_t i;
	int rc, libc = -1;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		raddr_t *slot = (raddr_t *)((char *)&a->sym + need[i].off);

		rc = elf_find_symbol(a->ep, a->tgt->py.module, need[i].name,
				     slot, NULL, NULL);
		if (rc < 0)
			return trm_err_set(err, -TRM_ENOSYM,
					   "pid %d: symbol %s not found in the interpreter",
					   (int)a->pid, need[i].name);
	}
	rc = elf_find_symbol(a->ep, -1, "syscall", &a->sym.libc_syscall, NULL,
			     &libc);
	if (rc < 0)
		return trm_err_set(err, -TRM_ENOSYM,
				   "pid %d: libc's syscall() not found", (int)a->pid);
	find_gadgets(a, libc);
	return 0;
}

static int rsys(struct ptrace_thread *t, struct attach *a, long nr,
		uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		uint64_t a5, int64_t *ret, struct trm_err *err)
{
	uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };
	int rc;

	rc = ptrace_remote_syscall(t, a->sym.libc_syscall, nr, args, ret, err);
	if (rc < 0)
		return rc;
	return 0;
}

static int open_proc_fd(pid_t pid, int fd, int flags)
{
	char path[64];
	int ours;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	ours = open(path, flags | O_CLOEXEC | O_NONBLOCK);
	if (ours < 0)
		return -errno;
	/* back to blocking: the reader polls, the writer writes whole frames */
	if (fcntl(ours, F_SETFL, fcntl(ours, F_GETFL) & ~O_NONBLOCK) < 0) {
		int rc = -errno;

		close(ours);
		return rc;
	}
	return ours;
}

/* Map a private page in the target through thread t. */
static int map_page(struct ptrace_thread *t, struct attach *a, raddr_t *page,
		    struct trm_err *err)
{
	int64_t r;
	int rc;

	rc = rsys(t, a, SYS_mmap, 0, PAGE_LEN, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &r, err);
	if (rc < 0)
		return rc;
	if (r == -1 || r == 0)
		return trm_err_set(err, -ENOMEM, "pid %d: mmap in the target failed",
				   (int)a->pid);
	*page = (raddr_t)r;
	return 0;
}

/* Create the memfd holding the agent and the two pipes in the target, and
 * open our ends.  Thread t is held. */
static int setup_resources(struct ptrace_thread *t, struct attach *a,
			   raddr_t page, struct trm_err *err)
{
	char name[48];
	int32_t fds[4];
	int64_t r;
	struct stat sb;
	int rc, mfd_w = -1;
	raddr_t scratch = page + PAGE_SCRATCH_OFF;

	snprintf(name, sizeof(name), "trmtop-%016" PRIx64, a->token);
	rc = target_write_mem(a->pid, scratch + 64, name, strlen(name) + 1);
	if (rc < 0)
		return trm_err_set(err, rc, "writing to the target: %s", strerror(-rc));
	rc = rsys(t, a, SYS_memfd_create, scratch + 64, MFD_CLOEXEC, 0, 0, 0, 0,
		  &r, err);
	if (rc < 0)
		return rc;
	if (r < 0)
		return trm_err_set(err, -EIO, "pid %d: memfd_create in the target failed",
				   (int)a->pid);
	a->t_memfd = (int)r;
	a->have_res = 1;
	rc = rsys(t, a, SYS_pipe2, scratch, O_CLOEXEC, 0, 0, 0, 0, &r, err);
	if (rc < 0)
		return rc;
	if (r != 0)
		return trm_err_set(err, -EIO, "pid %d: pipe2 in the target failed",
				   (int)a->pid);
	rc = rsys(t, a, SYS_pipe2, scratch + 8, O_CLOEXEC, 0, 0, 0, 0, &r, err);
	if (rc < 0)
		return rc;
	if (r != 0)
		return trm_err_set(err, -EIO, "pid %d: pipe2 in the target failed",
				   (int)a->pid);
	rc = target_read_mem(a->pid, scratch, fds, sizeof(fds));
	if (rc < 0)
		return trm_err_set(err, rc, "reading from the target: %s", strerror(-rc));
	a->t_ctl_r = fds[0];
	a->t_ctl_w = fds[1];
	a->t_data_r = fds[2];
	a->t_data_w = fds[3];

	a->ctl_fd = open_proc_fd(a->pid, a->t_ctl_w, O_WRONLY);
	if (a->ctl_fd < 0)
		return trm_err_set(err, a->ctl_fd, "opening the target's pipe: %s",
				   strerror(-a->ctl_fd));
	a->data_fd = open_proc_fd(a->pid, a->t_data_r, O_RDONLY);
	if (a->data_fd < 0)
		return trm_err_set(err, a->data_fd, "opening the target's pipe: %s",
				   strerror(-a->data_fd));
	if (fstat(a->ctl_fd, &sb) < 0)
		return trm_err_set(err, -errno, "fstat: %s", strerror(errno));
	a->ctl_ino = (unsigned long)sb.st_ino;
	if (fstat(a->data_fd, &sb) < 0)
		return trm_err_set(err, -errno, "fstat: %s", strerror(errno));
	a->data_ino = (unsigned long)sb.st_ino;

	/* the agent's bytes into the memfd, through our own descriptor */
	mfd_w = open_proc_fd(a->pid, a->t_memfd, O_WRONLY);
	if (mfd_w < 0)
		return trm_err_set(err, mfd_w, "opening the target's memfd: %s",
				   strerror(-mfd_w));
	rc = wire_write_all(mfd_w, trm_agent_so, trm_agent_so_len);
	close(mfd_w);
	if (rc < 0)
		return trm_err_set(err, rc, "writing the agent: %s", strerror(-rc));

	/* The target's copies of our ends stay open until the bootstrap's
	 * start() closes them (two remote calls fewer with the target
	 * stopped); start() checks for our hang-up only after that. */
	return 0;
}

/* Through the held thread t: the bootstrap's private page, and the memfd
 * and pipes if this attach has none yet (*created then says so). */
static int map_and_create(struct ptrace_thread *t, struct attach *a,
			  raddr_t *page, int *created, struct trm_err *err)
{
	int rc = map_page(t, a, page, err);

	if (rc < 0 || a->have_res)
		return rc;
	*created = 1;
	return setup_resources(t, a, *page, err);
}

/* Close what we created in the target, through a held thread (only used
 * before any bootstrap could run). */
static void undo_resources(struct ptrace_thread *t, struct attach *a)
{
	int fds[5] = { a->t_memfd, a->t_ctl_r, a->t_ctl_w, a->t_data_r, a->t_data_w };
	int64_t r;
	size_t i;

	for (i = 0; i < 5; i++)
		if (fds[i] >= 0)
			(void)rsys(t, a, SYS_close, (uint64_t)fds[i], 0, 0, 0, 0, 0,
				   &r, NULL);
	a->have_res = 0;
}

static int write_bootstrap(struct attach *a, raddr_t page, raddr_t *text,
			   struct trm_err *err)
{
	char buf[PAGE_SCRATCH_OFF - PAGE_TEXT_OFF];
	int n, rc;

	n = bootstrap_for(a, page, PAGE_LEN, buf, sizeof(buf));
	if (n < 0)
		return trm_err_set(err, n, "bootstrap text too long");
	rc = target_write_mem(a->pid, page + PAGE_TEXT_OFF, buf, (size_t)n + 1);
	if (rc < 0)
		return trm_err_set(err, rc, "writing to the target: %s", strerror(-rc));
	*text = page + PAGE_TEXT_OFF;
	return 0;
}

/* ---- the pending-call path ----------------------------------------- */

static int seize_explained(struct ptrace_thread *t, struct attach *a, pid_t tid,
			   struct trm_err *err)
{
	struct trm_err e = { 0 };
	int rc = ptrace_seize(t, a->pid, tid, SEIZE_TIMEOUT_MS, &e);

	/* the kernel refuses a thread that is exiting with EPERM too; we
	 * could read the process's memory, so that is what it means */
	if ((rc == -EPERM || rc == -EACCES) && tid != a->pid)
		return trm_err_set(err, -TRM_EUNSAFE, "thread %d is exiting", (int)tid);
	if (rc == -EPERM || rc == -EACCES)
		return explain_eperm(a->pid, -EPERM, err);
	if (rc == -ESRCH || rc == -TRM_EEXITED) {
		if (!target_alive(a->pid))
			return trm_err_set(err, -TRM_EEXITED,
					   "pid %d: target exited during attach",
					   (int)a->pid);
		return trm_err_set(err, -TRM_EUNSAFE, "thread %d exited", (int)tid);
	}
	if (rc < 0)
		return trm_err_set(err, rc, "%s", e.msg);
	t->gadgets = a->have_gadgets ? &a->gadgets : NULL;
	return 0;
}

static const char *symbol_at(struct attach *a, raddr_t pc, const char **mod)
{
	const char *name = "";
	uint64_t off;

	*mod = "";
	if (elf_symbolize(a->ep, pc, &name, mod, &off) < 0)
		return "";
	return name ? name : "";
}

static int unsafe_pc(struct attach *a, raddr_t pc)
{
	const char *mod, *name = symbol_at(a, pc, &mod);

	if (mod && strstr(mod, "/ld-linux"))
		return 1;
	return name_in(name, unsafe_frames);
}

static int pending_path(struct attach *a, struct trm_err *err)
{
	struct ptrace_thread t;
	raddr_t page = 0, text;
	uint64_t ret = 0;
	uint64_t args[2];
	int rc, tries, created = 0;

	rc = seize_explained(&t, a, a->pid, err);
	if (rc < 0)
		return rc;
	PAUSE("seized");
	for (tries = 0; unsafe_pc(a, ptrace_saved_pc(&t)) && tries < 50; tries++) {
		rc = ptrace_resume_briefly(&t, 500, SEIZE_TIMEOUT_MS, err);
		if (rc < 0)
			goto out;
	}
	rc = map_and_create(&t, a, &page, &created, err);
	if (rc < 0)
		goto out;
	PAUSE("remote");
	rc = write_bootstrap(a, page, &text, err);
	if (rc < 0)
		goto out;
	args[0] = a->sym.run_simple;
	args[1] = text;
	rc = ptrace_remote_call(&t, a->sym.add_pending, args, 2,
				page + PAGE_TEXT_OFF - 64, CALL_TIMEOUT_MS, &ret, err);
	if (rc == -TRM_ETIMEOUT || (rc < 0 && t.in_call)) {
		/* it may or may not be queued: leave it, it checks for us */
		a->queued = 1;
		page = 0;
		goto out;
	}
	if (rc < 0)
		goto out;
	if ((int)ret != 0) {
		rc = trm_err_set(err, -TRM_EBUSY, "Py_AddPendingCall failed (queue full)");
		goto out;
	}
	a->queued = 1;
	page = 0; /* the bootstrap unmaps it when it runs */
	rc = ptrace_restore(&t, err);
	if (rc < 0)
		goto out;
	PAUSE("queued");
out:
	if (t.stopped && rc < 0 && !a->queued) {
		int64_t r;

		(void)ptrace_restore(&t, NULL);
		if (created)
			undo_resources(&t, a);
		if (page)
			(void)rsys(&t, a, SYS_munmap, page, PAGE_LEN, 0, 0, 0, 0, &r,
				   NULL);
	}
	ptrace_release(&t);
	a->ns_held += t.ns_held;
	return rc;
}

/* ---- the hijack of a parked thread --------------------------------- */

static int check_stack(struct attach *a, struct ptrace_thread *t, char *why,
		       size_t whylen)
{
	uint64_t regs[ELF_NREGS];
	struct elf_frame frames[128];
	size_t n = 0, i;
	int python = 0;

	ptrace_saved_dwarf_regs(t, regs);
	if (elf_unwind(a->ep, t->tid, regs, frames, 128, &n, NULL) < 0 || n == 0) {
		snprintf(why, whylen, "its stack could not be unwound");
		return 0;
	}
	for (i = 0; i < n; i++) {
		const char *mod = frames[i].module >= 0
			? elf_proc_module_path(a->ep, (size_t)frames[i].module) : "";

		if (strstr(mod, "/ld-linux")) {
			snprintf(why, whylen, "it is in the dynamic loader");
			return 0;
		}
		if (name_in(frames[i].name, unsafe_frames)) {
			snprintf(why, whylen, "it is in %s", frames[i].name);
			return 0;
		}
		if (name_in(frames[i].name, python_frames))
			python = 1;
		if (!python && name_in(frames[i].name, thread_roots)) {
			snprintf(why, whylen, "it is starting or ending (in %s)",
				 frames[i].name);
			return 0;
		}
	}
	if (!python) {
		snprintf(why, whylen, "it is not running Python code");
		return 0;
	}
	return 1;
}

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

static int hijack(struct attach *a, pid_t tid, char *why, size_t whylen,
		  struct trm_err *err)
{
	struct ptrace_thread t;
	raddr_t page = 0, text, sp_top;
	uint64_t ret = 0, gstate = 0, arg;
	long nr, sret;
	int rc, created = 0;

	rc = seize_explained(&t, a, tid, err);
	if (rc < 0)
		return rc;
	nr = ptrace_saved_syscall(&t, &sret);
	if (nr < 0 || !interrupted_wait(sret)) {
		snprintf(why, whylen, "it is not blocked in a syscall");
		rc = -TRM_EUNSAFE;
		goto out;
	}
	if (!check_stack(a, &t, why, whylen)) {
		rc = -TRM_EUNSAFE;
		goto out;
	}
	PAUSE("hijack");
	sp_top = ptrace_saved_sp(&t) - 8192;
	rc = ptrace_remote_call(&t, a->sym.gil_check, NULL, 0, sp_top,
				CALL_TIMEOUT_MS, &ret, err);
	if (rc < 0)
		goto out;
	if ((int)ret != 0) {
		snprintf(why, whylen, "it holds the GIL");
		rc = -TRM_EUNSAFE;
		goto out;
	}
	rc = map_and_create(&t, a, &page, &created, err);
	if (rc < 0)
		goto out;
	PAUSE("remote");
	rc = write_bootstrap(a, page, &text, err);
	if (rc < 0)
		goto out;
	created = 0; /* from here on the bootstrap owns them */
	if (t.gadgets) {
		/* one guarded chain: should trmtop die in it, the thread
		 * still runs the bootstrap (which finds trmtop gone), lets the
		 * GIL go and restores itself.  PyGILState_Check said 0, so
		 * Ensure returns PyGILState_UNLOCKED (1) for Release. */
		struct ptrace_step chain[3] = {
			{ a->sym.gil_ensure, 0 },
			{ a->sym.run_simple, text },
			{ a->sym.gil_release, 1 },
		};

		page = 0; /* the bootstrap unmaps it */
		rc = ptrace_remote_chain(&t, chain, 3, sp_top, GIL_TIMEOUT_MS,
					 NULL, err);
		trace_stage("gil-ensure-run-release");
		if (rc < 0 && t.in_call)
			a->queued = 1; /* it runs on, and checks for us */
		if (rc < 0)
			goto out;
		rc = ptrace_restore(&t, err);
		goto out;
	}
	rc = ptrace_remote_call(&t, a->sym.gil_ensure, NULL, 0, sp_top,
				GIL_TIMEOUT_MS, &gstate, err);
	trace_stage("gil-ensure");
	if (rc < 0)
		goto out;
	page = 0; /* the bootstrap unmaps it */
	arg = text;
	rc = ptrace_remote_call(&t, a->sym.run_simple, &arg, 1, sp_top,
				GIL_TIMEOUT_MS, &ret, err);
	trace_stage("run");
	arg = gstate;
	{
		int rc2 = ptrace_remote_call(&t, a->sym.gil_release, &arg, 1,
					     sp_top, GIL_TIMEOUT_MS, NULL, err);

		if (rc == 0)
			rc = rc2;
	}
	if (rc < 0)
		goto out;
	trace_stage("gil-release");
	rc = ptrace_restore(&t, err);
out:
	if (t.stopped && rc < 0) {
		int64_t r;

		(void)ptrace_restore(&t, NULL);
		if (created)
			undo_resources(&t, a);
		if (page)
			(void)rsys(&t, a, SYS_munmap, page, PAGE_LEN, 0, 0, 0, 0, &r,
				   NULL);
		(void)ptrace_restore(&t, NULL);
	}
	ptrace_release(&t);
	a->ns_held += t.ns_held;
	return rc;
}

/* ---- waiting for the agent ------------------------------------------ */

static int wait_hello(struct attach *a, struct inject_conn *c, int timeout_ms,
		      struct trm_err *err)
{
	struct wire_msg msg;
	struct wire_error e;
	int rc;

	rc = wire_read_frame(&c->rd, &msg, timeout_ms);
	if (rc == -ETIMEDOUT)
		return -TRM_ETIMEOUT;
	if (rc == -EINTR)
		return trm_err_set(err, -TRM_EINTR, "pid %d: interrupted waiting for "
				   "the agent's greeting", (int)a->pid);
	if (rc == 0)
		return trm_err_set(err, -TRM_EAGENT,
				   "pid %d: the agent closed the connection", (int)a->pid);
	if (rc < 0)
		return trm_err_set(err, rc == -EPROTO ? -TRM_EPROTO : rc,
				   "pid %d: reading from the agent: %s", (int)a->pid,
				   strerror(-rc));
	if (msg.type == WIRE_ERROR && wire_dec_error(&msg, &e) == 0) {
		if (e.code == WIRE_ERR_ENDING)
			return trm_err_set(err, -EAGAIN, "pid %d: agent: %s", (int)a->pid,
					   e.text);
		rc = trm_err_set(err, -TRM_EAGENT, "pid %d: agent: %s", (int)a->pid,
				 e.text);
		if (e.code == WIRE_ERR_BUSY)
			trm_err_hint(err, "another trmtop is connected to this process");
		return rc;
	}
	if (msg.type != WIRE_HELLO || wire_dec_hello(&msg, &c->hello) < 0)
		return trm_err_set(err, -TRM_EPROTO, "pid %d: bad greeting from the agent",
				   (int)a->pid);
	if ((c->hello.proto >> 16) != (WIRE_PROTO_VERSION >> 16))
		return trm_err_set(err, -TRM_EPROTO,
				   "pid %d: agent speaks protocol %#x, trmtop %#x",
				   (int)a->pid, c->hello.proto, WIRE_PROTO_VERSION);
	if (c->hello.token != a->token)
		return trm_err_set(err, -TRM_EPROTO, "pid %d: greeting for another session",
				   (int)a->pid);
	return 0;
}

static void describe_block(pid_t pid, pid_t tid, char *buf, size_t len)
{
	struct target_syscall sc;
	char nbuf[32];

	if (target_read_syscall(pid, tid, &sc, NULL) < 0) {
		snprintf(buf, len, "in an unknown state");
		return;
	}
	if (sc.running || sc.nr < 0)
		snprintf(buf, len, "running native code");
	else
		snprintf(buf, len, "blocked in %s%s%s%s",
			 target_syscall_name(sc.nr, nbuf, sizeof(nbuf)),
			 sc.wchan[0] ? " (" : "", sc.wchan, sc.wchan[0] ? ")" : "");
}

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = util_now_ns();

	if (now >= deadline)
		return 0;
	return (int)((deadline - now) / 1000000u);
}

/* One round of hijack attempts over the parked threads, main first. */
static int try_hijacks(struct attach *a, int *tried, char *why, size_t whylen,
		       struct trm_err *err)
{
	pid_t *tids = NULL;
	size_t n = 0, i;
	int rc;

	*tried = 0;
	rc = target_list_threads(a->pid, &tids, &n, NULL);
	if (rc < 0)
		return target_alive(a->pid) ? 0
			: trm_err_set(err, -TRM_EEXITED, "pid %d: target exited during attach",
				      (int)a->pid);
	for (i = 0; i < n; i++) {
		struct target_syscall sc;
		char w[128] = "";

		if (target_read_syscall(a->pid, tids[i], &sc, NULL) < 0 ||
		    sc.running || sc.nr < 0)
			continue;
		(*tried)++;
		rc = hijack(a, tids[i], w, sizeof(w), err);
		if (rc == 0) {
			free(tids);
			return 1;
		}
		if (rc != -TRM_EUNSAFE)
			break;
		if (tids[i] == a->pid || !why[0])
			snprintf(why, whylen, "thread %d: %s", (int)tids[i], w);
		trm_err_clear(err);
		if (a->opts->verbose)
			fprintf(stderr, "trmtop: not using thread %d: %s\n",
				(int)tids[i], w);
		rc = 0;
	}
	free(tids);
	return rc;
}

/* ---- PEP 768 (3.14+) -------------------------------------------------- */

/* Put the bootstrap into a memfd of its own in the target (through the
 * held thread t): PEP 768 runs a script from a path, /proc/self/fd/N. */
static int setup_script(struct ptrace_thread *t, struct attach *a, raddr_t page,
			struct trm_err *err)
{
	char name[64], buf[PAGE_SCRATCH_OFF - PAGE_TEXT_OFF];
	int64_t r;
	int rc, fd, n;

	snprintf(name, sizeof(name), "trmtop-script-%016" PRIx64, a->token);
	rc = target_write_mem(a->pid, page + PAGE_SCRATCH_OFF, name, strlen(name) + 1);
	if (rc < 0)
		return trm_err_set(err, rc, "writing to the target: %s", strerror(-rc));
	rc = rsys(t, a, SYS_memfd_create, page + PAGE_SCRATCH_OFF, MFD_CLOEXEC, 0,
		  0, 0, 0, &r, err);
	if (rc < 0)
		return rc;
	if (r < 0)
		return trm_err_set(err, -EIO, "pid %d: memfd_create in the target failed",
				   (int)a->pid);
	a->t_script = (int)r;
	n = bootstrap_for(a, 0, 0, buf, sizeof(buf));
	if (n < 0)
		return trm_err_set(err, n, "bootstrap text too long");
	fd = open_proc_fd(a->pid, a->t_script, O_WRONLY);
	if (fd < 0)
		return trm_err_set(err, fd, "opening the target's memfd: %s",
				   strerror(-fd));
	rc = wire_write_all(fd, buf, (size_t)n);
	close(fd);
	if (rc < 0)
		return trm_err_set(err, rc, "writing the script: %s", strerror(-rc));
	return 0;
}

/* A thread of the main interpreter that is running (state R), main
 * first; 0 if none. */
static pid_t running_python_thread(struct attach *a)
{
	pid_t tids[256];
	size_t n = 0, i;
	struct target_status st;
	pid_t best = 0;

	if (pep768_list_threads(a->pid, a->ep, &a->tgt->py, tids, 256, &n, NULL) < 0 &&
	    n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (target_read_status(a->pid, tids[i], &st, NULL) < 0 || st.state != 'R')
			continue;
		if (tids[i] == a->pid)
			return tids[i];
		if (!best)
			best = tids[i];
	}
	return best;
}

/* Seize thread tid only for the remote syscalls that create the memfds and
 * pipes, then ask the interpreter (PEP 768) to run the bootstrap in a
 * thread that is running Python.  -TRM_EUNSAFE when no thread qualifies
 * or it did not run in time (the request is withdrawn): the caller falls
 * back to ptrace. */
static int pep768_path(struct attach *a, struct inject_conn *c, uint64_t deadline,
		       struct trm_err *err)
{
	struct ptrace_thread t;
	struct trm_err rerr = { 0 };
	raddr_t page = 0;
	char path[64];
	pid_t tid;
	int64_t r;
	int rc, wait;

	tid = running_python_thread(a);
	if (!tid)
		return -TRM_EUNSAFE;
	rc = seize_explained(&t, a, tid, err);
	if (rc < 0)
		return rc;
	PAUSE("seized");
	rc = map_page(&t, a, &page, err);
	if (rc < 0)
		goto out;
	if (!a->have_res) {
		rc = setup_resources(&t, a, page, err);
		if (rc < 0)
			goto out;
	}
	if (a->t_script < 0) {
		rc = setup_script(&t, a, page, err);
		if (rc < 0)
			goto out;
	}
	(void)rsys(&t, a, SYS_munmap, page, PAGE_LEN, 0, 0, 0, 0, &r, NULL);
	page = 0;
	rc = ptrace_restore(&t, err);
	if (rc < 0)
		goto out;
	PAUSE("remote");
	ptrace_release(&t);
	a->ns_held += t.ns_held;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", a->t_script);
	rc = pep768_request(a->pid, a->ep, &a->tgt->py, tid, path, &rerr);
	if (rc < 0) {
		/* busy, or the thread state changed under us (threads come and
		 * go): ptrace instead.  Should part of the request have been
		 * written, a second run of the bootstrap does nothing. */
		if (a->opts->verbose)
			fprintf(stderr, "trmtop: PEP 768 request on thread %d failed (%s); using ptrace\n",
				(int)tid, rerr.msg[0] ? rerr.msg : trm_strerror(rc));
		return -TRM_EUNSAFE;
	}
	c->path = "PEP 768 remote exec";
	c->via_tid = tid;
	PAUSE("queued");
	ensure_reader(a, c);
	wait = remaining_ms(deadline) < 500 ? remaining_ms(deadline) : 500;
	rc = wait_hello(a, c, wait, err);
	if (rc == -TRM_EINTR)
		(void)pep768_cancel(a->pid, a->ep, &a->tgt->py, tid, NULL);
	if (rc != -TRM_ETIMEOUT)
		return rc;
	/* it did not run: withdraw, unless the thread has just taken it.  A
	 * thread that has ended in the meantime (its thread state is gone)
	 * never will. */
	rc = pep768_cancel(a->pid, a->ep, &a->tgt->py, tid, NULL);
	if (rc != -EALREADY)
		return -TRM_EUNSAFE;
	rc = wait_hello(a, c, remaining_ms(deadline) + 1000, err);
	if (rc == -TRM_ETIMEOUT)
		trm_err_set(err, rc, "pid %d: thread %d took the remote-exec request "
			    "but the bootstrap did not answer", (int)a->pid, (int)tid);
	return rc;
out:
	if (t.stopped) {
		(void)ptrace_restore(&t, NULL);
		if (page)
			(void)rsys(&t, a, SYS_munmap, page, PAGE_LEN, 0, 0, 0, 0, &r,
				   NULL);
	}
	ptrace_release(&t);
	a->ns_held += t.ns_held;
	return rc;
}

static int attach_once(pid_t pid, const struct inject_opts *opts,
		       struct inject_conn *c, struct trm_err *err)
{
	struct attach a;
	struct target_status st;
	uint64_t deadline;
	char why[256] = "";
	uint64_t last_report = 0;
	int rc, tried = 0, hello = 0;

	memset(c, 0, sizeof(*c));
	c->ctl_fd = c->data_fd = -1;
	memset(&a, 0, sizeof(a));
	a.pid = pid;
	a.opts = opts;
	a.tgt = &c->target;
	a.ctl_fd = a.data_fd = -1;
	a.t_memfd = a.t_ctl_r = a.t_ctl_w = a.t_data_r = a.t_data_w = -1;
	a.t_script = -1;
	a.t0 = g_trace_t0 = util_now_ns();
	deadline = a.t0 + (uint64_t)opts->attach_timeout_ms * 1000000u;

	rc = preflight(pid, &c->target, &a.ep, err);
	if (rc < 0)
		return rc;
	rc = find_syms(&a, err);
	if (rc < 0)
		goto out;
	trace_stage("symbols");
	if (getrandom(&a.token, sizeof(a.token), 0) != (ssize_t)sizeof(a.token))
		a.token = util_now_ns() ^ ((uint64_t)getpid() << 32);

	/* 3.14+: the interpreter's own remote exec, in a thread running Python */
	if (c->target.py.major == 3 && c->target.py.minor >= 14) {
		struct trm_err perr = { 0 };

		rc = pep768_probe(pid, a.ep, &c->target.py, &perr);
		if (rc == 0) {
			rc = pep768_path(&a, c, deadline, err);
			if (rc == 0) {
				hello = 1;
				goto connected;
			}
			if (rc != -TRM_EUNSAFE)
				goto out;
			trm_err_clear(err);
		} else if (opts->verbose) {
			fprintf(stderr, "trmtop: PEP 768 remote exec not usable (%s); using ptrace\n",
				perr.msg[0] ? perr.msg : trm_strerror(rc));
		}
	}
	/* a main thread running Python reaches a safe point in milliseconds */
	if (!a.queued && target_read_status(pid, pid, &st, NULL) == 0 && st.state == 'R') {
		rc = pending_path(&a, err);
		if (rc < 0 && rc != -TRM_EUNSAFE)
			goto out;
		trm_err_clear(err);
		c->path = "pending call";
	}
	for (;;) {
		ensure_reader(&a, c);
		if (a.have_res) {
			int wait = a.queued ? 20 : 0;

			if (remaining_ms(deadline) < wait)
				wait = remaining_ms(deadline);
			PAUSE("detached");
			rc = wait_hello(&a, c, wait, err);
			if (rc == 0) {
				hello = 1;
				break;
			}
			if (rc != -TRM_ETIMEOUT)
				goto out;
		}
		rc = check_abort(err);
		if (rc < 0)
			goto out;
		if (!target_alive(pid)) {
			rc = trm_err_set(err, -TRM_EEXITED,
					 "pid %d: target exited during attach", (int)pid);
			goto out;
		}
		if (remaining_ms(deadline) == 0)
			break;
		rc = try_hijacks(&a, &tried, why, sizeof(why), err);
		if (rc < 0)
			goto out;
		if (rc == 1) {
			c->path = "hijack";
			ensure_reader(&a, c);
			/* the bootstrap has run: HELLO is in the pipe already */
			rc = wait_hello(&a, c, remaining_ms(deadline) + 1000, err);
			if (rc < 0)
				goto out;
			hello = 1;
			break;
		}
		if (!a.queued) {
			rc = pending_path(&a, err);
			if (rc < 0 && rc != -TRM_EUNSAFE)
				goto out;
			trm_err_clear(err);
			c->path = "pending call";
			continue;
		}
		if (opts->verbose && util_now_ns() - last_report > 1000000000u) {
			char b[160];

			last_report = util_now_ns();
			describe_block(pid, pid, b, sizeof(b));
			fprintf(stderr, "trmtop: main thread %s for %.1fs; waiting\n", b,
				(double)(util_now_ns() - a.t0) / 1e9);
		}
		/* nothing to hijack yet: wait for the pending call a little; after
		 * a round that stopped threads for nothing, wait longer before
		 * stopping them again */
		{
			int wait = tried ? 200 : 50;

			if (remaining_ms(deadline) < wait)
				wait = remaining_ms(deadline);
			rc = wait_hello(&a, c, wait, err);
		}
		if (rc == 0) {
			hello = 1;
			break;
		}
		if (rc != -TRM_ETIMEOUT)
			goto out;
	}
	if (!hello) {
		char b[160];

		describe_block(pid, pid, b, sizeof(b));
		rc = trm_err_set(err, -TRM_ETIMEOUT,
				 "pid %d: no safe point reached within %.1fs: main thread %s",
				 (int)pid, opts->attach_timeout_ms / 1000.0, b);
		if (why[0])
			trm_err_hint(err, "no other thread could be used (%s); retry with a longer --attach-timeout", why);
		else
			trm_err_hint(err, "retry with a longer --attach-timeout, or when the process is busy");
		goto out;
	}
connected:
	c->ns_to_hello = util_now_ns() - a.t0;
	c->ns_held = a.ns_held;
	trace_stage("hello");
	rc = inject_test_pause("connected");
	if (rc < 0) {
		trm_err_set(err, rc, "interrupted at connected");
		goto out;
	}
	c->ctl_fd = a.ctl_fd;
	c->data_fd = a.data_fd;
	a.ctl_fd = a.data_fd = -1;
	rc = 0;
out:
	if (rc < 0 && a.reader) {
		/* our ends closed: a bootstrap still queued sees POLLHUP and does
		 * nothing */
		wire_reader_fini(&c->rd);
		memset(&c->rd, 0, sizeof(c->rd));
	}
	if (a.ctl_fd >= 0)
		close(a.ctl_fd);
	if (a.data_fd >= 0)
		close(a.data_fd);
	elf_proc_close(a.ep);
	return rc;
}

int inject_request(struct inject_conn *c, const uint8_t *frame, size_t len,
		   uint16_t want_type, struct wire_msg *reply, int timeout_ms,
		   struct trm_err *err)
{
	struct wire_error e;
	int rc;

	rc = wire_write_all(c->ctl_fd, frame, len);
	if (rc == -EPIPE)
		return inject_agent_gone(c->target.pid, err);
	if (rc < 0)
		return trm_err_set(err, -TRM_EAGENT, "pid %d: writing to the agent: %s",
				   (int)c->target.pid, strerror(-rc));
	for (;;) {
		rc = wire_read_frame(&c->rd, reply, timeout_ms);
		if (rc == 0)
			return inject_agent_gone(c->target.pid, err);
		if (rc == -EINTR)
			return trm_err_set(err, -TRM_EINTR, "pid %d: interrupted waiting "
					   "for the agent's answer", (int)c->target.pid);
		if (rc == -ETIMEDOUT)
			return trm_err_set(err, -TRM_ETIMEOUT,
					   "pid %d: no answer from the agent",
					   (int)c->target.pid);
		if (rc < 0)
			return trm_err_set(err, rc == -EPROTO ? -TRM_EPROTO : rc,
					   "pid %d: reading from the agent: %s",
					   (int)c->target.pid, strerror(-rc));
		if (reply->type == want_type)
			return 0;
		if (reply->type == WIRE_ERROR) {
			if (wire_dec_error(reply, &e) < 0)
				snprintf(e.text, sizeof(e.text), "malformed error");
			return trm_err_set(err, -TRM_EAGENT, "pid %d: agent: %s",
					   (int)c->target.pid, e.text);
		}
		/* anything else is an event we do not wait for: skip it */
	}
}

void inject_close(struct inject_conn *c)
{
	uint8_t buf[WIRE_HDR_SIZE];
	int n;

	if (c->ctl_fd >= 0) {
		n = wire_enc_empty(buf, sizeof(buf), WIRE_DETACH);
		if (n > 0)
			(void)wire_write_all(c->ctl_fd, buf, (size_t)n);
		close(c->ctl_fd);
	}
	if (c->data_fd >= 0) {
		close(c->data_fd);
		wire_reader_fini(&c->rd);
	}
	c->ctl_fd = c->data_fd = -1;
}

int inject_attach(pid_t pid, const struct inject_opts *opts,
		  struct inject_conn *c, struct trm_err *err)
{
	uint64_t t0 = util_now_ns();
	int rc, tries = 0;

	/* A trmtop that has just exited leaves its session ending for a moment
	 * (`trmtop start; trmtop stop`): the agent says so, and a new attach
	 * a little later finds it gone. */
	for (;;) {
		uint64_t spent;

		rc = attach_once(pid, opts, c, err);
		if (rc != -EAGAIN)
			return rc;
		spent = (util_now_ns() - t0) / 1000000u;
		if (++tries >= 50 || spent >= (uint64_t)opts->attach_timeout_ms) {
			trm_err_set(err, -TRM_EAGENT,
				    "pid %d: the previous trmtop's session did not end in %.1fs",
				    (int)pid, (double)spent / 1e3);
			trm_err_hint(err, "retry in a moment");
			return -TRM_EAGENT;
		}
		trm_err_clear(err);
		rc = check_abort(err);
		if (rc == 0)
			rc = inject_sleep(2 * tries);
		if (rc < 0)
			return trm_err_set(err, -TRM_EINTR, "pid %d: interrupted",
					   (int)pid);
	}
}
