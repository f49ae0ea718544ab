/* inject.c - the attach state machine: preflight (and why the kernel
 * refused), the bootstrap text, the resources made in the target (a
 * sealed memfd holding the agent, two pipes, a private page), the
 * pending-call and hijack paths, the PEP 768 path's set-up (pep768.c
 * writes the request), waiting for the agent's HELLO, and taking back
 * what an attach that gave up made in the target. */
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

#define PAGE_LEN 32768u         /* private page: call stack, then text */
#define PAGE_TEXT_OFF 24576u    /* bootstrap text and scratch from here:
				   below, room for a call and its signal
				   frame with the largest XSAVE state */
#define PAGE_SCRATCH_OFF 31744u /* pipe fds, memfd name */
#define SEIZE_TIMEOUT_MS 2000
#define CALL_TIMEOUT_MS 1000
#define GIL_TIMEOUT_MS 60000
/* what a memfd of ours is sealed with once written: nobody can change,
 * grow or shrink it any more, nor unseal it */
#define MEMFD_SEALS (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)

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

/* name_in, ignoring a compiler clone suffix (".constprop.0", ".isra.0",
 * ".part.0", ".cold"). */
static int base_name_in(const char *name, const char *const *list)
{
	char base[ELF_SYMNAME_MAX];
	size_t n = name ? strcspn(name, ".") : 0;

	if (n == 0 || n >= sizeof(base))
		return 0;
	memcpy(base, name, n);
	base[n] = '\0';
	return name_in(base, list);
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

#define CAP_SYS_PTRACE_BIT 19

/* The caller's real ids are all of the target's (the kernel's check
 * before it asks for CAP_SYS_PTRACE). */
static int same_ids(const struct target_status *st)
{
	uid_t u = getuid();
	gid_t g = getgid();

	return st->uid_real == u && st->uid_eff == u && st->uid_saved == u &&
	       st->gid_real == g && st->gid_eff == g && st->gid_saved == g;
}

/* " (...)" naming an init process, for the messages. */
static const char *init_note(pid_t pid, int in_container)
{
	if (pid != 1)
		return "";
	return in_container ? " (pid 1: the init process of this PID namespace)"
			    : " (pid 1: the host's init process)";
}

/* The hint for a refusal that CAP_SYS_PTRACE would lift. */
static void hint_cap(struct trm_err *err, int in_container, const char *more)
{
	if (in_container)
		trm_err_hint(err, "run trmtop as root with CAP_SYS_PTRACE (in a container, add "
			     "--cap-add=SYS_PTRACE)%s", more);
	else
		trm_err_hint(err, "run trmtop as root (it has CAP_SYS_PTRACE)%s", more);
}

/* Why the kernel refused pid (EPERM or EACCES from ptrace or /proc): the
 * checks of ptrace_may_access and Yama, in the kernel's order, as far as
 * /proc shows them. */
static int explain_eperm(pid_t pid, int code, struct trm_err *err)
{
	struct target_status st, me;
	unsigned long ns = 0;
	int scope = -1, cap, have, dumpable, in_container;

	have = target_read_status(pid, 0, &st, NULL) == 0;
	cap = target_read_status(getpid(), 0, &me, NULL) == 0
		? (int)((me.cap_eff >> CAP_SYS_PTRACE_BIT) & 1) : geteuid() == 0;
	(void)target_read_ptrace_scope(&scope);
	in_container = target_read_pidns(getpid(), &ns) == 0 && ns != TARGET_PIDNS_INIT_INO;
	dumpable = have ? target_read_dumpable(pid, &st) : -ENODATA;

	if (have && !cap && st.uid_real != getuid()) {
		trm_err_set(err, code, "attach to %d: permission denied: process belongs "
			    "to another user (uid %u)%s", (int)pid, (unsigned)st.uid_real,
			    init_note(pid, in_container));
		trm_err_hint(err, "run trmtop as that user, or as root");
		return code;
	}
	if (have && !cap && !same_ids(&st)) {
		trm_err_set(err, code, "attach to %d: permission denied: it runs a setuid or "
			    "setgid program (uids %u/%u/%u, gids %u/%u/%u)%s", (int)pid,
			    (unsigned)st.uid_real, (unsigned)st.uid_eff, (unsigned)st.uid_saved,
			    (unsigned)st.gid_real, (unsigned)st.gid_eff, (unsigned)st.gid_saved,
			    init_note(pid, in_container));
		hint_cap(err, in_container, ": only CAP_SYS_PTRACE may trace a process whose ids "
			 "are not all yours");
		return code;
	}
	if (!cap && dumpable == 0) {
		trm_err_set(err, code, "attach to %d: permission denied: the process made itself "
			    "non-dumpable (prctl PR_SET_DUMPABLE 0) or runs a setuid, setgid or "
			    "unreadable program%s", (int)pid, init_note(pid, in_container));
		if (scope == 3)
			trm_err_hint(err, "nothing can attach to it: kernel.yama.ptrace_scope is 3");
		else
			hint_cap(err, in_container, ": only CAP_SYS_PTRACE may trace a "
				 "non-dumpable process");
		return code;
	}
	if (scope == 3) {
		trm_err_set(err, code, "attach to %d: permission denied: "
			    "kernel.yama.ptrace_scope is 3 (ptrace disabled)%s", (int)pid,
			    init_note(pid, in_container));
		trm_err_hint(err, "nothing can attach to any process until the next reboot "
			     "(scope 3 cannot be lowered)");
		return code;
	}
	if (!cap && (scope == 1 || scope == 2)) {
		trm_err_set(err, code, "attach to %d: permission denied: kernel.yama.ptrace_scope "
			    "is %d (%s)%s", (int)pid, scope, scope == 1
			    ? "only a parent process may trace" : "only CAP_SYS_PTRACE may trace",
			    init_note(pid, in_container));
		hint_cap(err, in_container, scope == 1
			 ? ", or: sysctl kernel.yama.ptrace_scope=0" : "");
		return code;
	}
	/* ownership, dumpability and Yama allow it: a security module
	 * (Landlock, SELinux, AppArmor) or a policy we cannot see refuses */
	if (pid == 1 && !in_container) {
		trm_err_set(err, code, "attach to 1: permission denied: pid 1 is the host's init "
			    "process, and the kernel refuses to let trmtop trace it%s",
			    cap ? " despite CAP_SYS_PTRACE" : "");
		trm_err_hint(err, "nothing trmtop can do: a security policy (Landlock, SELinux, "
			     "AppArmor) protects init here");
		return code;
	}
	if (cap) {
		trm_err_set(err, code, "attach to %d: permission denied despite CAP_SYS_PTRACE%s: "
			    "a security policy (Landlock, SELinux, AppArmor, seccomp) refuses "
			    "ptrace", (int)pid, pid == 1 ? init_note(pid, in_container)
			    : have && st.nspid == 1 ? " (pid 1 of its PID namespace)" : "");
		trm_err_hint(err, "check the security policy that confines trmtop or the target");
		return code;
	}
	trm_err_set(err, code, "attach to %d: permission denied%s: not by ownership, "
		    "dumpability or Yama, and trmtop lacks CAP_SYS_PTRACE", (int)pid,
		    init_note(pid, in_container));
	hint_cap(err, in_container, ", or check the security policy (SELinux, AppArmor, "
		 "Landlock) that confines trmtop");
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
	if (st.kthread) {
		rc = trm_err_set(err, -TRM_ENOTPY, "pid %d (%s): a kernel thread, not a user "
				 "process", (int)pid, st.name);
		trm_err_hint(err, "trmtop attaches to Python processes; a kernel thread "
			     "runs no user code");
		return rc;
	}
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
		if (!target_alive(pid) ||
		    (target_read_status(pid, 0, &st, NULL) == 0 &&
		     (st.state == 'Z' || st.state == 'X'))) {
			trm_err_clear(err);
			return trm_err_set(err, -TRM_EEXITED, "pid %d: process has exited",
					   (int)pid);
		}
		{
			char inner[TRM_ERR_MSG_MAX];

			snprintf(inner, sizeof(inner), "%s", err && err->msg[0] ? err->msg
				 : strerror(rc ? -rc : EIO));
			trm_err_clear(err);
			return trm_err_set(err, rc ? rc : -EIO, "pid %d: reading its memory maps: %s",
					   (int)pid, inner);
		}
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

int inject_bootstrap_void_text(char *buf, size_t cap, uint64_t token,
			       uint64_t page, uint64_t page_len)
{
	/* No fd, so nothing the application has opened since can be
	 * touched; only the agent, if loaded, is asked to unmap the page */
	int n = snprintf(buf, cap,
		"exec(\"try:\\n"
		" import sys\\n"
		" m=sys.modules.get('_trmtop_agent')\\n"
		" if m is not None:\\n"
		"  m.start(-1,-1,0,0,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ")\\n"
		"except BaseException:\\n"
		" pass\\n\",{})\n",
		token, page, page_len);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

/* ---- one attach ----------------------------------------------------- */

struct syms {
	raddr_t add_pending, run_simple, gil_ensure, gil_release, gil_check;
	raddr_t libc_syscall;
	/* for the undo steps of a held thread (0: not found, no undo) */
	raddr_t libc_munmap, libc_close, libc_wmemcpy;
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
	raddr_t queued_page; /* ... its text is in this page (PAGE_LEN) */
	int script_taken;    /* a PEP 768 run of the bootstrap may be under way */
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
	const struct {
		const char *name;
		raddr_t *addr;
	} fns[] = {
		{ "raise", &a->gadgets.raise },
		{ "munmap", &a->sym.libc_munmap },
		{ "close", &a->sym.libc_close },
		{ "wmemcpy", &a->sym.libc_wmemcpy },
	};
	size_t i;

	const uint8_t *code;
	size_t len;
	raddr_t addr, sa;

	memset(&a->gadgets, 0, sizeof(a->gadgets));
	/* glibc's trampoline sits next to sigaction: look there first (a
	 * whole text is megabytes, and the interpreter has none) */
	if (libc >= 0 &&
	    elf_find_symbol(a->ep, libc, "sigaction", &sa, NULL, NULL) == 0 &&
	    elf_module_code(a->ep, (size_t)libc, &code, &len, &addr) == 0 &&
	    sa >= addr && sa - addr < len) {
		struct ptrace_gadgets near = { 0 };
		size_t off = (size_t)(sa - addr);
		size_t lo = off > 4096 ? off - 4096 : 0;
		size_t hi = len - off > 4096 ? off + 4096 : len;

		ptrace_scan_gadgets(code + lo, hi - lo, addr + lo, &near);
		a->gadgets.sigreturn = near.sigreturn;
	}
	/* the others are common: libc first (its text is the smallest, and
	 * glibc has them all in its first few hundred KiB), then the
	 * interpreter and the executable for what is still missing.  Each
	 * byte scanned is a page fault of our mapping of the file. */
	for (i = 0; i < 3; i++) {
		if (mods[i] < 0 ||
		    elf_module_code(a->ep, (size_t)mods[i], &code, &len, &addr) < 0)
			continue;
		ptrace_scan_gadgets(code, len, addr, &a->gadgets);
	}
	/* libc's functions the chains call (0: not found, which turns off
	 * what needs them); wmemcpy(dst, src, 1) copies one 32-bit int
	 * (memcpy is an IFUNC in glibc: its symbol is the resolver) */
	for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		if (elf_find_symbol(a->ep, libc, fns[i].name, fns[i].addr, NULL,
				    NULL) < 0)
			*fns[i].addr = 0;
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

/* Our own descriptor for the target's fd: the same open file, taken with
 * pidfd_getfd where the kernel has it (5.6+), else reopened through
 * /proc/PID/fd; and only if it is what trmtop made there: an anonymous
 * pipe (memfd_name NULL) or the memfd of that name, open for what flags
 * say.  The target's other threads run meanwhile: one that swapped the
 * number for a file of its choosing (an O_PATH descriptor of a file only
 * root may write, a device, a named FIFO) gets -EPERM, never root's
 * writes or reads (a reopen through /proc would open it with root's
 * rights). */
static int take_fd(struct attach *a, int fd, int flags, const char *memfd_name)
{
	char path[64], link[128], want[128];
	struct stat sb;
	ssize_t n;
	int ours = -1, pidfd, rc = -EPERM;

	pidfd = (int)syscall(SYS_pidfd_open, a->pid, 0);
	if (pidfd >= 0) {
		ours = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
		if (ours < 0)
			rc = -errno;
		close(pidfd);
		if (ours < 0 && rc != -ENOSYS)
			return rc;
	}
	if (ours < 0) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)a->pid, fd);
		ours = open(path, flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (ours < 0)
			return -errno;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ours);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0 || fstat(ours, &sb) < 0 ||
	    (fcntl(ours, F_GETFL) & O_ACCMODE) != (flags & O_ACCMODE))
		goto refuse;
	link[n] = '\0';
	if (memfd_name) {
		snprintf(want, sizeof(want), "/memfd:%s (deleted)", memfd_name);
		if (!S_ISREG(sb.st_mode) || strcmp(link, want) != 0 ||
		    fcntl(ours, F_GET_SEALS) < 0)
			goto refuse;
	} else {
		snprintf(want, sizeof(want), "pipe:[%lu]", (unsigned long)sb.st_ino);
		if (!S_ISFIFO(sb.st_mode) || strcmp(link, want) != 0)
			goto refuse;
	}
	/* blocking: the reader polls, the writer writes whole frames */
	if (fcntl(ours, F_SETFL, fcntl(ours, F_GETFL) & ~O_NONBLOCK) < 0) {
		rc = -errno;
		goto refuse;
	}
	return ours;
refuse:
	close(ours);
	return rc;
}

/* Map a private page in the target through thread t. */
static int map_page(struct ptrace_thread *t, struct attach *a, raddr_t *page,
		    struct trm_err *err)
{
	int64_t r;
	int rc;

	int u = ptrace_undo_push(t, a->sym.libc_munmap, 2, PTRACE_ARG_RESULT,
				 0, PAGE_LEN, 0);

	rc = rsys(t, a, SYS_mmap, 0, PAGE_LEN, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &r, err);
	if (rc < 0)
		return rc;
	if (r == -1 || r == 0) {
		ptrace_undo_truncate(t, u);
		return trm_err_set(err, -ENOMEM, "pid %d: mmap in the target failed",
				   (int)a->pid);
	}
	*page = (raddr_t)r;
	return 0;
}

/* pipe2(fds) in the target with undo steps that close both ends, should
 * trmtop die during the call or before it hands them over: the kernel
 * writes the fds into fds (set to -1 first), and each undo close takes
 * its fd from there by a wmemcpy into its own argument.  Once the call
 * returned, plain closes of the two numbers instead. */
static int rpipe(struct ptrace_thread *t, struct attach *a, raddr_t fds,
		 int32_t out[2], struct trm_err *err)
{
	static const int32_t none[2] = { -1, -1 };
	int64_t r;
	int rc, u0, u = -1, i;

	rc = target_write_mem(a->pid, fds, none, sizeof(none));
	if (rc < 0)
		return trm_err_set(err, rc, "writing to the target: %s", strerror(-rc));
	u0 = t->nundo;
	for (i = 0; i < 2 && a->sym.libc_wmemcpy; i++) {
		u = ptrace_undo_push(t, a->sym.libc_close, 1, PTRACE_ARG_VALUE,
				     (uint64_t)-1, 0, 0);
		if (u >= 0)
			u = ptrace_undo_push(t, a->sym.libc_wmemcpy, 3,
					     PTRACE_ARG_ADDR, (uint64_t)u,
					     fds + 4 * (raddr_t)i, 1);
		if (u < 0)
			break;
	}
	if (u < 0)
		ptrace_undo_truncate(t, u0); /* all or nothing */
	rc = rsys(t, a, SYS_pipe2, fds, O_CLOEXEC, 0, 0, 0, 0, &r, err);
	if (rc < 0)
		return rc;
	ptrace_undo_truncate(t, u0);
	if (r != 0)
		return trm_err_set(err, -EIO, "pid %d: pipe2 in the target failed",
				   (int)a->pid);
	rc = target_read_mem(a->pid, fds, out, 2 * sizeof(int32_t));
	if (rc < 0)
		return trm_err_set(err, rc, "reading from the target: %s", strerror(-rc));
	for (i = 0; i < 2; i++)
		(void)ptrace_undo_push(t, a->sym.libc_close, 1, PTRACE_ARG_VALUE,
				       (uint64_t)(uint32_t)out[i], 0, 0);
	return 0;
}

/* Does the target's memfd fd hold exactly data[0, len)?  0 or -EIO. */
static int memfd_holds(int fd, const uint8_t *data, size_t len)
{
	uint8_t buf[8192];
	size_t off = 0;
	ssize_t n;

	for (;;) {
		n = pread(fd, buf, sizeof(buf), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((size_t)n > len - off || memcmp(buf, data + off, (size_t)n) != 0)
			return -EIO;
		off += (size_t)n;
	}
	if (n < 0)
		return -errno;
	return off == len ? 0 : -EIO;
}

static int fill_memfd(struct attach *a, int fd, const char *name,
		      const void *data, size_t len, const char *what,
		      struct trm_err *err)
{
	int w, rc;

	w = take_fd(a, fd, O_RDWR, name);
	if (w < 0)
		return trm_err_set(err, w, "opening the target's memfd: %s", strerror(-w));
	rc = wire_write_all(w, data, len);
	if (rc < 0) {
		trm_err_set(err, rc, "writing the %s: %s", what, strerror(-rc));
	} else if (fcntl(w, F_ADD_SEALS, MEMFD_SEALS) < 0) {
		rc = -errno;
		trm_err_set(err, rc, "sealing the %s's memfd: %s", what, strerror(errno));
	} else if ((rc = memfd_holds(w, data, len)) < 0) {
		trm_err_set(err, rc, "pid %d: the %s's memfd changed before it was sealed",
			    (int)a->pid, what);
	}
	close(w);
	return rc;
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
	int rc, u;
	raddr_t scratch = page + PAGE_SCRATCH_OFF;

	snprintf(name, sizeof(name), "trmtop-%016" PRIx64, a->token);
	rc = target_write_mem(a->pid, scratch + 64, name, strlen(name) + 1);
	if (rc < 0)
		return trm_err_set(err, rc, "writing to the target: %s", strerror(-rc));
	u = ptrace_undo_push(t, a->sym.libc_close, 1, PTRACE_ARG_RESULT, 0, 0, 0);
	rc = rsys(t, a, SYS_memfd_create, scratch + 64, MFD_CLOEXEC | MFD_ALLOW_SEALING,
		  0, 0, 0, 0, &r, err);
	if (rc < 0)
		return rc;
	if (r < 0) {
		ptrace_undo_truncate(t, u);
		return trm_err_set(err, -EIO, "pid %d: memfd_create in the target failed",
				   (int)a->pid);
	}
	a->t_memfd = (int)r;
	a->have_res = 1;
	rc = rpipe(t, a, scratch, fds, err);
	if (rc < 0)
		return rc;
	rc = rpipe(t, a, scratch + 8, fds + 2, err);
	if (rc < 0)
		return rc;
	a->t_ctl_r = fds[0];
	a->t_ctl_w = fds[1];
	a->t_data_r = fds[2];
	a->t_data_w = fds[3];

	a->ctl_fd = take_fd(a, a->t_ctl_w, O_WRONLY, NULL);
	if (a->ctl_fd < 0)
		return trm_err_set(err, a->ctl_fd, "opening the target's pipe: %s",
				   strerror(-a->ctl_fd));
	a->data_fd = take_fd(a, a->t_data_r, O_RDONLY, NULL);
	if (a->data_fd < 0)
		return trm_err_set(err, a->data_fd, "opening the target's pipe: %s",
				   strerror(-a->data_fd));
	if (fstat(a->ctl_fd, &sb) < 0)
		return trm_err_set(err, -errno, "fstat: %s", strerror(errno));
	a->ctl_ino = (unsigned long)sb.st_ino;
	if (fstat(a->data_fd, &sb) < 0)
		return trm_err_set(err, -errno, "fstat: %s", strerror(errno));
	a->data_ino = (unsigned long)sb.st_ino;

	/* the agent's bytes into the memfd, sealed before any bootstrap can
	 * load them: who can open the target's fds cannot swap the agent */
	rc = fill_memfd(a, a->t_memfd, name, trm_agent_so, trm_agent_so_len, "agent",
			err);
	if (rc < 0)
		return rc;

	/* The target's copies of our ends stay open until the bootstrap's
	 * start() closes them (two remote calls fewer with the target
	 * stopped); start() checks for our hang-up only after that. */
	return 0;
}

/* Resources made by an earlier attempt that no bootstrap owns (a PEP 768
 * request that was withdrawn): the held thread t undoes them too, should
 * trmtop die before it hands them over. */
static void cover_unowned(struct ptrace_thread *t, struct attach *a)
{
	int fds[6] = { a->t_memfd, a->t_ctl_r, a->t_ctl_w, a->t_data_r,
		       a->t_data_w, a->t_script };
	int i;

	for (i = 0; i < 6; i++)
		if (fds[i] >= 0)
			(void)ptrace_undo_push(t, a->sym.libc_close, 1,
					       PTRACE_ARG_VALUE,
					       (uint64_t)(uint32_t)fds[i], 0, 0);
}

/* Through the held thread t: the bootstrap's private page, and the memfd
 * and pipes if this attach has none yet (*created then says so). */
static int map_and_create(struct ptrace_thread *t, struct attach *a,
			  raddr_t *page, int *created, struct trm_err *err)
{
	int rc = map_page(t, a, page, err);

	if (rc < 0)
		return rc;
	if (a->have_res) {
		if (!a->queued && !a->script_taken) {
			cover_unowned(t, a);
			return ptrace_undo_arm(t, err);
		}
		return 0;
	}
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

/* An attempt failed with thread t held: take back what it made (the
 * page, and the fds if created).  A thread with undo steps does it by
 * itself once released (its registers run them); otherwise remote calls. */
static void undo_held(struct ptrace_thread *t, struct attach *a, int created,
		      raddr_t page)
{
	int64_t r;

	if (t->nundo > 0) {
		if (created) {
			a->have_res = 0;
			a->t_memfd = a->t_ctl_r = a->t_ctl_w = -1;
			a->t_data_r = a->t_data_w = -1;
		}
		return;
	}
	(void)ptrace_restore(t, NULL);
	if (created)
		undo_resources(t, a);
	if (page)
		(void)rsys(t, a, SYS_munmap, page, PAGE_LEN, 0, 0, 0, 0, &r, NULL);
	(void)ptrace_restore(t, NULL);
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
	/* queued, the bootstrap owns the page and the fds; a call that fails
	 * is undone the ordinary way below */
	ptrace_undo_truncate(&t, 0);
	rc = ptrace_remote_call(&t, a->sym.add_pending, args, 2,
				page + PAGE_TEXT_OFF - 64, CALL_TIMEOUT_MS, &ret, err);
	if (rc == -TRM_ETIMEOUT || (rc < 0 && t.in_call)) {
		/* it may or may not be queued: leave it, it checks for us */
		a->queued = 1;
		a->queued_page = page;
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
	a->queued_page = page;
	page = 0; /* the bootstrap unmaps it when it runs */
	rc = ptrace_restore(&t, err);
	if (rc < 0)
		goto out;
	PAUSE("queued");
out:
	if (t.stopped && rc < 0 && !a->queued)
		undo_held(&t, a, created, page);
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
	sp_top = 0; /* the thread's own stack */
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
	ptrace_undo_truncate(&t, 0);
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
	if (t.stopped && rc < 0)
		undo_held(&t, a, created, page);
	ptrace_release(&t);
	a->ns_held += t.ns_held;
	return rc;
}

/* ---- giving up: taking back what the attach made -------------------- */

/* Where a bootstrap runs: a pending call's or a hijack's PyRun_SimpleString,
 * a PEP 768 remote exec. */
static const char *const bootstrap_frames[] = {
	"PyRun_SimpleString", "PyRun_SimpleStringFlags",
	"_PyRun_SimpleStringFlagsWithName", "_PyRunRemoteDebugger", NULL,
};

/* What calls PyRun_SimpleString* when it runs no bootstrap of ours:
 * `python -c` runs its command with it, from main. */
static const char *const main_frames[] = {
	"pymain_run_command", "pymain_run_python", "Py_RunMain", "Py_BytesMain",
	"Py_Main", "main", "__libc_start_main", "__libc_start_call_main", NULL,
};

/* Is a bootstrap running on the held thread t?  Yes when a
 * bootstrap_frames frame is called from anything but main_frames (the
 * eval loop, where pending calls and remote execs run; in stripped
 * interpreters the nearest named frame below may be PyEval_EvalCode or a
 * PyRun_* function: frames without a name are skipped).  Also yes when we
 * cannot tell: the stack does not unwind, or ends inside such a frame. */
static int bootstrap_running(struct attach *a, struct ptrace_thread *t)
{
	uint64_t regs[ELF_NREGS];
	struct elf_frame frames[128];
	size_t n = 0, i;
	int in_run = 0;

	ptrace_saved_dwarf_regs(t, regs);
	if (elf_unwind(a->ep, t->tid, regs, frames, 128, &n, NULL) < 0 || n == 0)
		return 1;
	for (i = 0; i < n; i++) {
		const char *name = frames[i].name;

		if (name_in(name, bootstrap_frames)) {
			in_run = 1;
			continue;
		}
		if (!in_run || !name[0])
			continue;
		if (!base_name_in(name, main_frames))
			return 1;
		in_run = 0;
	}
	return in_run;
}

/* Has anything come on (or hung up) our end of the data pipe: has a
 * bootstrap's start() run? */
static int data_pending(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return fd < 0 || (poll(&pfd, 1, 0) > 0 && pfd.revents);
}

/* Is the target's fd still what this attach made: the memfd named
 * trmtop-<kind><token>, or (kind NULL) a pipe with inode ino? */
static int still_ours(struct attach *a, int fd, const char *kind, unsigned long ino)
{
	struct target_fd f;
	char want[96];

	if (fd < 0 || target_read_fd(a->pid, fd, &f) < 0)
		return 0;
	if (!kind)
		return S_ISFIFO(f.mode) && f.ino == ino;
	snprintf(want, sizeof(want), "/memfd:trmtop-%s%016" PRIx64 " (deleted)", kind,
		 a->token);
	return strcmp(f.link, want) == 0;
}

/* Rewrite the queued pending call's text (thread t, the main thread, is
 * held and not running it) so that it names no fd, and unmap all of its
 * page but the part holding that text. */
static int void_queued_text(struct ptrace_thread *t, struct attach *a)
{
	char buf[512];
	long ps = sysconf(_SC_PAGESIZE);
	raddr_t text = a->queued_page + PAGE_TEXT_OFF, keep = a->queued_page;
	uint64_t keep_len = PAGE_LEN;
	int64_t r;
	int n, rc;

	if (ps > 0 && PAGE_TEXT_OFF % (unsigned long)ps == 0 &&
	    (unsigned long)ps <= PAGE_SCRATCH_OFF - PAGE_TEXT_OFF) {
		keep = text;
		keep_len = (uint64_t)ps;
	}
	n = inject_bootstrap_void_text(buf, sizeof(buf), a->token, keep, keep_len);
	if (n < 0 || (uint64_t)n >= keep_len)
		return -ENOSPC;
	rc = target_write_mem(a->pid, text, buf, (size_t)n + 1);
	if (rc < 0 || keep_len == PAGE_LEN)
		return rc;
	/* unmapping is best effort: what stays is only more of the page */
	(void)rsys(t, a, SYS_munmap, a->queued_page, PAGE_TEXT_OFF, 0, 0, 0, 0, &r, NULL);
	(void)rsys(t, a, SYS_munmap, keep + keep_len, PAGE_LEN - PAGE_TEXT_OFF - keep_len,
		   0, 0, 0, 0, &r, NULL);
	a->queued_page = 0;
	return 0;
}

/* The attach gives up (timeout, error) having made the memfd and pipes
 * in the target: close them there with remote close calls, and leave the
 * pending call, which cannot be dequeued, a one-page text that names no
 * fd.  Only when no bootstrap can be using them: no PEP 768 run may be
 * under way, nothing has come on the data pipe (no start() has run), and
 * the main thread -- the only one that runs pending calls -- is held and
 * not inside a bootstrap.  Best effort: whatever is not taken back stays
 * as before, and a bootstrap that finds it checks it is still ours. */
static void reclaim(struct attach *a)
{
	struct ptrace_thread t;
	int64_t r;
	size_t i;
	struct {
		int fd;
		const char *kind;
		unsigned long ino;
	} res[6] = {
		{ a->t_memfd, "", 0 },           { a->t_script, "script-", 0 },
		{ a->t_ctl_r, NULL, a->ctl_ino }, { a->t_ctl_w, NULL, a->ctl_ino },
		{ a->t_data_r, NULL, a->data_ino }, { a->t_data_w, NULL, a->data_ino },
	};

	if (!a->have_res || a->script_taken || data_pending(a->data_fd))
		return;
	memset(&t, 0, sizeof(t));
	if (ptrace_seize(&t, a->pid, a->pid, SEIZE_TIMEOUT_MS, NULL) < 0)
		goto out;
	/* start() closes these first: if one is gone, start() has run and the
	 * pipes are a session's */
	if (bootstrap_running(a, &t) || data_pending(a->data_fd) ||
	    !still_ours(a, a->t_memfd, "", 0) ||
	    !still_ours(a, a->t_ctl_w, NULL, a->ctl_ino) ||
	    !still_ours(a, a->t_data_r, NULL, a->data_ino)) {
		trace_stage("reclaim: a bootstrap has run or runs");
		goto out;
	}
	if (a->queued_page && void_queued_text(&t, a) < 0)
		goto out;
	for (i = 0; i < sizeof(res) / sizeof(res[0]); i++)
		if (still_ours(a, res[i].fd, res[i].kind, res[i].ino))
			(void)rsys(&t, a, SYS_close, (uint64_t)res[i].fd, 0, 0, 0, 0, 0,
				   &r, NULL);
	a->have_res = 0;
	trace_stage("reclaimed");
out:
	if (t.stopped)
		(void)ptrace_restore(&t, NULL);
	ptrace_release(&t);
	a->ns_held += t.ns_held;
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
	int rc, n, u;

	snprintf(name, sizeof(name), "trmtop-script-%016" PRIx64, a->token);
	rc = target_write_mem(a->pid, page + PAGE_SCRATCH_OFF, name, strlen(name) + 1);
	if (rc < 0)
		return trm_err_set(err, rc, "writing to the target: %s", strerror(-rc));
	u = ptrace_undo_push(t, a->sym.libc_close, 1, PTRACE_ARG_RESULT, 0, 0, 0);
	rc = rsys(t, a, SYS_memfd_create, page + PAGE_SCRATCH_OFF,
		  MFD_CLOEXEC | MFD_ALLOW_SEALING, 0, 0, 0, 0, &r, err);
	if (rc < 0)
		return rc;
	if (r < 0) {
		ptrace_undo_truncate(t, u);
		return trm_err_set(err, -EIO, "pid %d: memfd_create in the target failed",
				   (int)a->pid);
	}
	a->t_script = (int)r;
	n = bootstrap_for(a, 0, 0, buf, sizeof(buf));
	if (n < 0)
		return trm_err_set(err, n, "bootstrap text too long");
	return fill_memfd(a, a->t_script, name, buf, (size_t)n, "script", err);
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
	int rc, wait, page_undo, page_undo_ok;

	tid = running_python_thread(a);
	if (!tid)
		return -TRM_EUNSAFE;
	rc = seize_explained(&t, a, tid, err);
	if (rc < 0)
		return rc;
	PAUSE("seized");
	page_undo = t.nundo;
	rc = map_page(&t, a, &page, err);
	page_undo_ok = t.nundo > page_undo; /* its munmap step was pushed */
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
	/* the page is unmapped next, by us: its undo step goes first (a
	 * second munmap could hit whatever is mapped there by then) */
	if (page_undo_ok ? ptrace_undo_drop(&t, page_undo) < 0 : 0)
		ptrace_undo_truncate(&t, 0);
	(void)rsys(&t, a, SYS_munmap, page, PAGE_LEN, 0, 0, 0, 0, &r, NULL);
	page = 0;
	PAUSE("remote");
	/* The request is written with the thread still held, after its own
	 * registers are back (a death in between leaves the fds; one after
	 * it leaves the request, which runs the bootstrap): handed over */
	ptrace_undo_truncate(&t, 0);
	rc = ptrace_restore(&t, err);
	if (rc < 0)
		goto out;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", a->t_script);
	rc = pep768_request(a->pid, a->ep, &a->tgt->py, tid, path, &rerr);
	ptrace_release(&t);
	a->ns_held += t.ns_held;
	if (rc < 0 && rc > -4096 && rc != -ESRCH && rc != -EINVAL && rc != -ENAMETOOLONG)
		a->script_taken = 1; /* a memory error: part of it may be written */
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
	a->script_taken = 1; /* until withdrawn */
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
	if (rc != -EALREADY) {
		/* withdrawn, or the thread is gone: it will not run now */
		if (rc == 0 || rc == -ESRCH)
			a->script_taken = 0;
		return -TRM_EUNSAFE;
	}
	rc = wait_hello(a, c, remaining_ms(deadline) + 1000, err);
	if (rc == -TRM_ETIMEOUT)
		trm_err_set(err, rc, "pid %d: thread %d took the remote-exec request "
			    "but the bootstrap did not answer", (int)a->pid, (int)tid);
	return rc;
out:
	if (t.stopped)
		undo_held(&t, a, 0, page);
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
	if (rc < 0 && !hello)
		reclaim(&a);
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
