/* attach.c - one attach from start to HELLO, and its retry: the symbols
 * and gadgets it needs, what every path shares (seizing a thread with
 * the kernel's refusals explained, stages with their trace, test pauses
 * and abort checks, progress lines), and the loop over the paths (PEP
 * 768 first on 3.14+, then the pending call, then hijacks while the
 * pending call waits) until the HELLO or the deadline; what it made is
 * taken back when it gives up (inject_reclaim). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "inject_int.h"
#include "pep768.h"
#include "trmtop/target.h"
#include "trmtop/util.h"

/* ---- what the paths share ---------------------------------------------- */

int inject_test_pause(struct trm_abort *ab, const char *stage)
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
	while (inject_sleep(ab, 1000) == 0)
		;
	return -TRM_EINTR;
}

int inject_check_abort(struct attach *a, struct trm_err *err)
{
	int sig = trm_abort_check(a->abort);

	if (!sig)
		return 0;
	return trm_err_set(err, -TRM_EINTR, "interrupted by %s", strsignal(sig));
}

void inject_progress(const struct attach *a, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!a->opts->verbose || !a->opts->progress)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	a->opts->progress(a->opts->progress_ctx, line);
}

void inject_trace(const struct attach *a, const char *stage)
{
	char line[160];

	if (!a->opts->trace || !a->opts->progress)
		return;
	snprintf(line, sizeof(line), "%8.3f ms %s",
		 (double)(util_now_ns() - a->t0) / 1e6, stage);
	a->opts->progress(a->opts->progress_ctx, line);
}

int inject_stage(struct attach *a, const char *stage, struct trm_err *err)
{
	int rc;

	inject_trace(a, stage);
	rc = inject_test_pause(a->abort, stage);
	if (rc < 0)
		return trm_err_set(err, rc, "interrupted at %s", stage);
	return inject_check_abort(a, err);
}

int inject_seize(struct ptrace_thread *t, struct attach *a, pid_t tid,
		 struct trm_err *err)
{
	struct trm_err e = { 0 };
	int rc = ptrace_seize(t, a->pid, tid, a->abort, SEIZE_TIMEOUT_MS, &e);

	/* the kernel refuses a thread that is exiting with EPERM too; we
	 * could read the process's memory, so that is what it means */
	if ((rc == -EPERM || rc == -EACCES) && tid != a->pid)
		return trm_err_set(err, -TRM_EUNSAFE, "thread %d is exiting", (int)tid);
	if (rc == -EPERM || rc == -EACCES)
		return inject_explain_eperm(a->pid, -EPERM, err);
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

int inject_remaining_ms(uint64_t deadline)
{
	uint64_t now = util_now_ns();

	if (now >= deadline)
		return 0;
	return (int)((deadline - now) / 1000000u);
}

void inject_ensure_reader(struct attach *a, struct inject_conn *c)
{
	if (a->have_res && a->data_fd >= 0 && !a->reader) {
		wire_reader_init(&c->rd, a->data_fd, WIRE_MAX_PAYLOAD);
		wire_reader_set_wake(&c->rd, trm_abort_fd(a->abort),
				     inject_wake_on_signal, a->abort);
		a->reader = 1;
	}
}

/* ---- symbols and gadgets ----------------------------------------------- */

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
		{ "pthread_spin_init", &a->sym.libc_spin_init },
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
	if (!a->have_gadgets)
		inject_progress(a, "no return path for guarded remote calls in pid %d: "
				"a trmtop killed during a remote call would crash it",
				(int)a->pid);
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

/* ---- the attach loop ------------------------------------------------------- */

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


/* Wait for the HELLO up to ms, and not past the deadline. */
static int wait_hello_until(struct attach *a, struct inject_conn *c, int ms,
			    struct trm_err *err)
{
	int left = inject_remaining_ms(a->deadline);

	return inject_wait_hello(a, c, ms < left ? ms : left, err);
}

/* 3.14+: the interpreter's own remote exec, in a thread running Python.
 * INJECT_CONNECTED, -TRM_EUNSAFE (not usable: ptrace instead; err
 * clear), or an error. */
static int try_pep768(struct attach *a, struct inject_conn *c,
		      struct trm_err *err)
{
	struct trm_err perr = { 0 };
	int rc;

	if (a->tgt->py.major != 3 || a->tgt->py.minor < 14)
		return -TRM_EUNSAFE;
	rc = pep768_probe(a->pid, a->ep, &a->tgt->py, &perr);
	if (rc < 0) {
		inject_progress(a, "PEP 768 remote exec not usable (%s); using ptrace",
				perr.msg[0] ? perr.msg : trm_strerror(rc));
		return -TRM_EUNSAFE;
	}
	rc = inject_path_pep768(a, c, err);
	if (rc == -TRM_EUNSAFE)
		trm_err_clear(err);
	return rc;
}

/* Queue the pending call: 0 (queued, or not now: the loop tries again),
 * or an error. */
static int try_pending(struct attach *a, struct inject_conn *c,
		       struct trm_err *err)
{
	int rc = inject_path_pending(a, c, err);

	if (rc < 0 && rc != -TRM_EUNSAFE)
		return rc;
	trm_err_clear(err);
	return 0;
}

/* With -v, once a second: what the main thread waits in. */
static void report_waiting(struct attach *a, uint64_t *last)
{
	char b[160];

	if (!a->opts->verbose || util_now_ns() - *last <= 1000000000u)
		return;
	*last = util_now_ns();
	describe_block(a->pid, a->pid, b, sizeof(b));
	inject_progress(a, "main thread %s for %.1fs; waiting", b,
			(double)(util_now_ns() - a->t0) / 1e9);
}

/* Get the bootstrap to run by one path or another and read its HELLO:
 * 0 (a->hello), 1 the deadline passed without it, or an error. */
static int reach_hello(struct attach *a, struct inject_conn *c,
		       struct trm_err *err)
{
	struct target_status st;
	uint64_t last_report = 0;
	int rc;

	rc = try_pep768(a, c, err);
	if (rc == INJECT_CONNECTED)
		return 0;
	if (rc != -TRM_EUNSAFE)
		return rc;
	/* a main thread running Python reaches a safe point in milliseconds */
	if (target_read_status(a->pid, a->pid, &st, NULL) == 0 && st.state == 'R') {
		rc = try_pending(a, c, err);
		if (rc < 0)
			return rc;
	}
	for (;;) {
		inject_ensure_reader(a, c);
		if (a->have_res) {
			rc = inject_stage(a, "detached", err);
			if (rc == 0)
				rc = wait_hello_until(a, c, a->queued ? 20 : 0, err);
			if (rc != -TRM_ETIMEOUT)
				return rc;
		}
		rc = inject_check_abort(a, err);
		if (rc < 0)
			return rc;
		if (!target_alive(a->pid))
			return trm_err_set(err, -TRM_EEXITED,
					   "pid %d: target exited during attach", (int)a->pid);
		if (inject_remaining_ms(a->deadline) == 0)
			return 1;
		rc = inject_path_hijack(a, c, err);
		if (rc == INJECT_RAN) {
			inject_ensure_reader(a, c);
			/* the bootstrap has run: HELLO is in the pipe already */
			return inject_wait_hello(a, c, inject_remaining_ms(a->deadline) + 1000,
						 err);
		}
		if (rc != -TRM_EUNSAFE)
			return rc;
		if (!a->queued) {
			rc = try_pending(a, c, err);
			if (rc < 0)
				return rc;
			continue;
		}
		report_waiting(a, &last_report);
		/* nothing to hijack yet: wait for the pending call a little; after
		 * a round that stopped threads for nothing, wait longer before
		 * stopping them again */
		rc = wait_hello_until(a, c, a->hijack_tried ? 200 : 50, err);
		if (rc != -TRM_ETIMEOUT)
			return rc;
	}
}

static int no_safe_point(struct attach *a, struct trm_err *err)
{
	char b[160];
	int rc;

	describe_block(a->pid, a->pid, b, sizeof(b));
	rc = trm_err_set(err, -TRM_ETIMEOUT,
			 "pid %d: no safe point reached within %.1fs: main thread %s",
			 (int)a->pid, a->opts->attach_timeout_ms / 1000.0, b);
	if (a->why[0])
		trm_err_hint(err, "no other thread could be used (%s); retry with a longer "
			     "--attach-timeout", a->why);
	else
		trm_err_hint(err, "retry with a longer --attach-timeout, or when the process is busy");
	return rc;
}

/* The HELLO was read: hand our pipe ends over to c. */
static int connected(struct attach *a, struct inject_conn *c, struct trm_err *err)
{
	int rc;

	c->ns_to_hello = util_now_ns() - a->t0;
	c->ns_held = a->ns_held;
	inject_trace(a, "hello");
	rc = inject_test_pause(a->abort, "connected");
	if (rc < 0)
		return trm_err_set(err, rc, "interrupted at connected");
	c->ctl_fd = a->ctl_fd;
	c->data_fd = a->data_fd;
	a->ctl_fd = a->data_fd = -1;
	return 0;
}

/* The attach failed: take back what it made unless a bootstrap has
 * answered, and close our reader (our ends closed, a bootstrap still
 * queued sees POLLHUP and does nothing). */
static void give_up(struct attach *a, struct inject_conn *c)
{
	if (!a->hello)
		inject_reclaim(a);
	if (a->reader) {
		wire_reader_fini(&c->rd);
		memset(&c->rd, 0, sizeof(c->rd));
	}
}

static int attach_once(pid_t pid, const struct inject_opts *opts,
		       struct inject_conn *c, struct trm_err *err)
{
	struct attach a;
	int rc;

	memset(c, 0, sizeof(*c));
	c->ctl_fd = c->data_fd = -1;
	c->abort = opts->abort;
	memset(&a, 0, sizeof(a));
	a.pid = pid;
	a.opts = opts;
	a.abort = opts->abort;
	a.tgt = &c->target;
	a.ctl_fd = a.data_fd = -1;
	a.t_memfd = a.t_ctl_r = a.t_ctl_w = a.t_data_r = a.t_data_w = -1;
	a.t_script = -1;
	a.t0 = util_now_ns();
	a.deadline = a.t0 + (uint64_t)opts->attach_timeout_ms * 1000000u;

	rc = inject_preflight(pid, &c->target, &a.ep, err);
	if (rc < 0)
		return rc;
	rc = find_syms(&a, err);
	if (rc == 0) {
		inject_trace(&a, "symbols");
		if (getrandom(&a.token, sizeof(a.token), 0) != (ssize_t)sizeof(a.token))
			a.token = util_now_ns() ^ ((uint64_t)getpid() << 32);
		rc = reach_hello(&a, c, err);
	}
	if (rc == 1)
		rc = no_safe_point(&a, err);
	if (rc == 0)
		rc = connected(&a, c, err);
	if (rc < 0)
		give_up(&a, c);
	if (a.ctl_fd >= 0)
		close(a.ctl_fd);
	if (a.data_fd >= 0)
		close(a.data_fd);
	elf_proc_close(a.ep);
	return rc;
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
		rc = trm_abort_check(opts->abort);
		if (rc)
			return trm_err_set(err, -TRM_EINTR, "interrupted by %s",
					   strsignal(rc));
		if (inject_sleep(opts->abort, 2 * tries) < 0)
			return trm_err_set(err, -TRM_EINTR, "pid %d: interrupted",
					   (int)pid);
	}
}
