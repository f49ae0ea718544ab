/* pep768.h - CPython 3.14+ remote execution (PEP 768) without ptrace.
 *
 * Private to the inject module and its unit tests.  Does from outside what
 * CPython's own sys.remote_exec does (Python/remote_debugging.c): find
 * _Py_DebugOffsets at the start of the interpreter's .PyRuntime section,
 * write a script path and debugger_pending_call = 1 into a thread state and
 * set _PY_EVAL_PLEASE_STOP_BIT in its eval_breaker.  The thread runs the
 * script (PyFile_OpenCodeObject + exec in a fresh namespace) at its next
 * eval-breaker check, so only a thread that is running Python code runs it
 * soon; one blocked in join() or accept() runs it whenever it wakes up.
 * All memory access goes through target_read_mem/target_write_mem.
 *
 * The _Py_DebugOffsets layout changes per minor version; pep768.c keeps one
 * explicit layout per supported version (3.14 only for now). */
#ifndef TRMTOP_INJECT_PEP768_H
#define TRMTOP_INJECT_PEP768_H

#include <stddef.h>
#include <sys/types.h>

#include "trmtop/elf.h"
#include "trmtop/err.h"

/* _PY_EVAL_PLEASE_STOP_BIT of Include/internal/pycore_ceval.h (3.14). */
#define PEP768_EVAL_PLEASE_STOP_BIT (1U << 5)

/* Whether pid is 3.14+ with PEP 768 remote debugging available: finds
 * _Py_DebugOffsets in the .PyRuntime section of py->module, checks the
 * cookie "xdebugpy", the version (a layout is known for it: 3.14 final or
 * release candidate), the size and plausibility of the table, that the build
 * is not free-threaded, and that config.remote_debug of the main interpreter
 * is 1 (PYTHON_DISABLE_REMOTE_DEBUG, -X disable-remote-debug and
 * --without-remote-debug builds make it 0).
 * Returns 0 (usable), -TRM_EPYVER (no .PyRuntime / not 3.14 / unknown or
 * implausible layout), -TRM_EFREETHREAD, -EPERM (remote debugging disabled;
 * err says so), -TRM_EBUSY (no interpreter initialised yet), or -errno from
 * reading memory. */
int pep768_probe(pid_t pid, struct elf_proc *ep, const struct elf_pyinfo *py,
		 struct trm_err *err);

/* Write a remote-exec request for script_path (NUL-terminated, strlen must
 * be < debugger_script_path_size, 512 on 3.14) into the thread state of the
 * main interpreter whose native_thread_id is tid, then set
 * debugger_pending_call = 1, then set _PY_EVAL_PLEASE_STOP_BIT in that
 * thread state's eval_breaker (a read-modify-write, as CPython's own
 * remote_exec does: a bit the target changes between our read and our write
 * can be lost or come back; every such bit is benign or re-set by CPython).
 * Performs the checks of pep768_probe first (same return codes), then:
 * -EINVAL (tid <= 0), -ENAMETOOLONG (path too long), -ESRCH (no thread state
 * has that tid), -TRM_EBUSY (a request is already pending on that thread:
 * overwriting its path could run a different script; pep768_cancel first if
 * it is ours), or -errno from memory access. */
int pep768_request(pid_t pid, struct elf_proc *ep, const struct elf_pyinfo *py,
		   pid_t tid, const char *script_path, struct trm_err *err);

/* pep768_request in two steps, so that what may take time (the layout,
 * the checks, finding the thread state: reads) is done before trmtop
 * hands its resources over to the request, and only the writes after
 * (process_vm_writev calls: the window in which a trmtop that dies
 * leaves resources that no request and no undo step own is a few
 * microseconds).  prepare: the checks and errors of pep768_request,
 * nothing written, the addresses and the path kept in *rq.  commit: the
 * writes (path, debugger_pending_call = 1, the stop bit); -errno from
 * memory access (part of the request may be written).  The thread
 * should be held (stopped) in between, so that its thread state stays. */
struct pep768_req {
	pid_t pid;
	raddr_t path_at, pending_at, breaker_at;
	char path[512];
	size_t len;
};

int pep768_prepare(pid_t pid, struct elf_proc *ep, const struct elf_pyinfo *py,
		   pid_t tid, const char *script_path, struct pep768_req *rq,
		   struct trm_err *err);
int pep768_commit(const struct pep768_req *rq, struct trm_err *err);

/* List the native thread ids that have a thread state in the main
 * interpreter, newest thread state first (CPython's list order; thread
 * states not yet bound to a thread, native id 0, are skipped), so the caller
 * can pick one that is running Python.  Stores at most max ids into tids and
 * their number into *n.  Returns 0, -ENOSPC (more than max; the first max
 * are stored), -TRM_EPYVER / -TRM_EFREETHREAD / -TRM_EBUSY as pep768_probe
 * (remote debugging being disabled does not matter here), or -errno. */
int pep768_list_threads(pid_t pid, struct elf_proc *ep,
			const struct elf_pyinfo *py, pid_t *tids, size_t max,
			size_t *n, struct trm_err *err);

/* Withdraw a request not yet run: if debugger_pending_call is still 1 for
 * tid, set it to 0 (the script path stays, harmless; so does the stop bit,
 * which only makes the thread drop and retake the GIL once).  Returns 0 when
 * a pending request was withdrawn, -EALREADY when none was pending (it has
 * been taken by the thread already, or was never made), -ESRCH when no
 * thread state has that tid, or an error as pep768_list_threads.  The
 * target may take the request between our read and our write; it then runs
 * and we return 0: this cannot be excluded from outside without stopping
 * the thread. */
int pep768_cancel(pid_t pid, struct elf_proc *ep, const struct elf_pyinfo *py,
		  pid_t tid, struct trm_err *err);

#endif
