/* preflight.c - before anything is stopped: is pid a live, user-space,
 * untraced, running CPython 3.8+ (not free-threaded) that trmtop may read;
 * and, when the kernel refuses (EPERM or EACCES from ptrace or /proc),
 * why: ownership, setuid ids, dumpability, Yama, init, a security
 * policy, as far as /proc shows them (through target). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "inject_int.h"
#include "trmtop/target.h"

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
int inject_explain_eperm(pid_t pid, int code, struct trm_err *err)
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
int inject_preflight(pid_t pid, struct inject_target *t, struct elf_proc **epp,
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
		return inject_explain_eperm(pid, -EPERM, err);
	ep = elf_proc_open(pid, err);
	if (!ep) {
		rc = -errno;
		if (rc == -EACCES || rc == -EPERM) {
			trm_err_clear(err);
			return inject_explain_eperm(pid, -EPERM, err);
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
