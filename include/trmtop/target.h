/* target.h - what /proc says about a process; memory access.
 *
 * Owns /proc: no other module reads it.  Parsing of maps, status,
 * credentials, root and cwd, the task list, per-thread syscall/wchan, the
 * executable's path and identity, fds; process_vm_readv/writev (with
 * /proc/PID/mem as the fallback).  Never calls ptrace. */
#ifndef TRMTOP_TARGET_H
#define TRMTOP_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "trmtop/err.h"

typedef uint64_t raddr_t; /* an address in the target */

#define TARGET_PATH_MAX 4096

struct target_map {
	raddr_t start, end;
	uint64_t offset;
	unsigned long inode;
	unsigned dev_major, dev_minor;
	char perms[5];          /* "r-xp" */
	const char *path;       /* as shown in maps; "" for anonymous.  Points
				 * into the text of the target_maps it came
				 * from: valid until target_maps_fini */
	int deleted;            /* path ended in " (deleted)" (suffix removed) */
};

struct target_maps {
	struct target_map *v;
	size_t n;
	char *text;             /* the file's text, which the paths point into */
};

/* Read /proc/PID/maps (in one pass, into one buffer: a Python process has
 * hundreds of mappings and this is on the attach path).  Caller frees with
 * target_maps_fini. */
int target_read_maps(pid_t pid, struct target_maps *out, struct trm_err *err);
void target_maps_fini(struct target_maps *maps);

struct target_status {
	char name[64];   /* Name: */
	char state;      /* 'R', 'S', 'D', 'T', 't', 'Z', ... */
	pid_t tgid;
	pid_t ppid;      /* PPid */
	pid_t tracer;    /* TracerPid */
	uid_t uid_real, uid_eff, uid_saved;
	gid_t gid_real, gid_eff, gid_saved;
	pid_t nspid;     /* innermost NSpid (== pid outside containers) */
	pid_t nstgid;    /* innermost NStgid: the process's own pid there */
	int kthread;     /* a kernel thread: "Kthread: 1" (Linux 6.6+), or,
			  * older kernels, a live task with no memory map (no
			  * VmSize line) */
	uint64_t cap_eff; /* CapEff: effective capability set */
	unsigned long vm_rss_kib;
	int threads;
	uint64_t sigblk; /* SigBlk: the thread's blocked signals */
	uint64_t sigcgt; /* SigCgt: signals the process has handlers for */
};

/* Parse /proc/PID/status (or /proc/PID/task/TID/status when tid > 0). */
/* Has pid exited (a zombie, or gone)?  A process's files close before it
 * becomes a zombie, so one whose pipe just hung up may still look alive:
 * waits up to timeout_ms for it to end (its pidfd).  1 exited, 0 not. */
int target_exited(pid_t pid, int timeout_ms);

int target_read_status(pid_t pid, pid_t tid, struct target_status *out,
		       struct trm_err *err);

/* List thread ids (/proc/PID/task).  *tids is the caller's (free()). The
 * first entry is the main thread (tid == pid) when it is alive. */
int target_list_threads(pid_t pid, pid_t **tids, size_t *n, struct trm_err *err);

struct target_syscall {
	int running;     /* 1: "running" (not in a syscall) */
	long nr;         /* syscall number, -1 if not in a syscall */
	uint64_t args[6];
	raddr_t sp, pc;
	char wchan[64];  /* /proc/PID/task/TID/wchan, "" if unavailable */
};

/* Parse /proc/PID/task/TID/syscall and wchan. */
int target_read_syscall(pid_t pid, pid_t tid, struct target_syscall *out,
			struct trm_err *err);

/* Name of an x86_64 syscall number for messages ("futex", "accept4");
 * "syscall N" style text into buf otherwise.  Returns buf or a literal. */
const char *target_syscall_name(long nr, char *buf, size_t len);

/* Whether pid is dumpable (prctl PR_SET_DUMPABLE; a setuid or setgid exec
 * clears it): /proc/PID/status is owned by the process's effective uid
 * when it is, by root when it is not.  1, 0, -ENODATA when the effective
 * uid is root (no difference to see), or -errno. */
int target_read_dumpable(pid_t pid, const struct target_status *st);

/* kernel.yama.ptrace_scope (0 to 3) into *scope; -ENOENT without Yama. */
int target_read_ptrace_scope(int *scope);

/* Inode number of pid's PID namespace (/proc/PID/ns/pid) into *ino.  The
 * initial namespace has TARGET_PIDNS_INIT_INO. */
#define TARGET_PIDNS_INIT_INO 0xEFFFFFFCul /* PROC_PID_INIT_INO */
int target_read_pidns(pid_t pid, unsigned long *ino);

/* What fd of pid refers to: the text of /proc/PID/fd/FD into link, and the
 * inode number and type (st_mode) of the object.  0 or -errno (-ENOENT: no
 * such fd). */
struct target_fd {
	char link[256];
	unsigned long ino;
	unsigned mode;
};
int target_read_fd(pid_t pid, int fd, struct target_fd *out);

/* A descriptor of our own for fd of pid: the same open file, taken with
 * pidfd_getfd where the kernel has it (5.6+; a refusal is returned as it
 * is), else reopened through /proc/PID/fd/FD with flags | O_CLOEXEC |
 * O_NONBLOCK | O_NOCTTY (with the caller's rights: check what it is).
 * Returns the fd or -errno. */
int target_take_fd(pid_t pid, int fd, int flags);

/* The text of /proc/self/fd/FD (what one of our own fds refers to) into
 * buf, NUL-terminated.  Its length, or -errno. */
int target_own_fd_link(int fd, char *buf, size_t len);

/* Executable path (readlink /proc/PID/exe) into buf. */
int target_read_exe(pid_t pid, char *buf, size_t len, struct trm_err *err);

/* The identity of a file, as maps shows it (struct target_map). */
struct target_file_id {
	unsigned dev_major, dev_minor;
	unsigned long inode;
};

/* The executable's identity: stat(2) through /proc/PID/exe, which leads to
 * the file itself (even deleted, or outside our root).  0 or -errno. */
int target_stat_exe(pid_t pid, struct target_file_id *out);

/* Memory access.  Short reads are errors (-EFAULT).  Falls back to
 * /proc/PID/mem when process_vm_* is refused. */
int target_read_mem(pid_t pid, raddr_t addr, void *buf, size_t len);
int target_write_mem(pid_t pid, raddr_t addr, const void *buf, size_t len);

/* Open a mapped file of the target as the target sees it: first
 * /proc/PID/map_files/START-END, then /proc/PID/root/PATH.  Returns an fd
 * (O_RDONLY|O_CLOEXEC) or -errno. */
int target_open_mapped(pid_t pid, const struct target_map *map,
		       struct trm_err *err);

/* A process's rights for file access, from /proc/PID/status: the
 * filesystem ids (the fourth Uid: and Gid: fields), the supplementary groups
 * (Groups:) and the effective capabilities (CapEff:). */
struct target_creds {
	uid_t fsuid;
	gid_t fsgid;
	gid_t *groups;     /* ngroups entries, the caller's: target_creds_fini */
	size_t ngroups;
	uint64_t cap_eff;
};

/* Read them.  0, -errno or -ENOMEM; out is zeroed on error.  The caller
 * releases out with target_creds_fini (NULL accepted). */
int target_read_creds(pid_t pid, struct target_creds *out, struct trm_err *err);
void target_creds_fini(struct target_creds *c);

/* 1 if a and b grant the same (same ids, caps, groups in the same order). */
int target_creds_equal(const struct target_creds *a, const struct target_creds *b);

/* A process's filesystem root and working directory. */
struct target_fs {
	int root_fd;               /* O_PATH directory fd of /proc/PID/root */
	char cwd[TARGET_PATH_MAX]; /* the working directory as a path inside
				    * that root ("/srv/app"); "" when unknown
				    * (deleted, or outside the root) */
};

/* Open them (as the caller, who must be allowed to read /proc/PID/root).
 * 0 or -errno; release with target_close_fs (NULL accepted). */
int target_open_fs(pid_t pid, struct target_fs *out, struct trm_err *err);
void target_close_fs(struct target_fs *fs);

/* 1 if the process exists (kill(pid, 0) or /proc/PID present), else 0. */
int target_alive(pid_t pid);

/* Resident set size in bytes from /proc/PID/statm. */
int target_read_rss(pid_t pid, uint64_t *rss, struct trm_err *err);

/* Count open fds (/proc/PID/fd entries). */
int target_count_fds(pid_t pid, int *n, struct trm_err *err);

#endif
