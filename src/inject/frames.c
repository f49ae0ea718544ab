/* frames.c - reading a held thread's native stack (elf_unwind,
 * elf_symbolize): the frames in which running Python would deadlock or
 * corrupt (allocator, loader, GIL, locks, fork, a thread starting or
 * ending, finalisation), whether a parked thread runs Python code at all,
 * and whether a bootstrap of ours is running on it. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "inject_int.h"

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

static const char *symbol_at(struct attach *a, raddr_t pc, const char **mod)
{
	const char *name = "";
	uint64_t off;

	*mod = "";
	if (elf_symbolize(a->ep, pc, &name, mod, &off) < 0)
		return "";
	return name ? name : "";
}

int inject_unsafe_pc(struct attach *a, raddr_t pc)
{
	const char *mod, *name = symbol_at(a, pc, &mod);

	if (mod && strstr(mod, "/ld-linux"))
		return 1;
	return name_in(name, unsafe_frames);
}

int inject_safe_stack(struct attach *a, struct ptrace_thread *t, char *why,
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
int inject_bootstrap_running(struct attach *a, struct ptrace_thread *t)
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
