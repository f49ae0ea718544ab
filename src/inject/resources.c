/* resources.c - what an attach makes in the target through a held thread
 * and takes back: the private page (call stack and bootstrap text), the
 * sealed memfd holding the agent, the two pipes (and our ends of them,
 * taken with take_fd), the PEP 768 script's memfd; the undo steps that
 * make a held thread take them back by itself should trmtop die; the one
 * undo path of a path that fails (inject_let_go); and reclaim, which
 * takes them back when the whole attach gives up. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "inject_int.h"
#include "trmtop/agent.h"
#include "trmtop/target.h"

/* what a memfd of ours is sealed with once written: nobody can change,
 * grow or shrink it any more, nor unseal it */
#define MEMFD_SEALS (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)

/* every page size mmap may use is a multiple of this */
#define PAGE_ALIGN_MIN 4096u

int inject_rsys(struct ptrace_thread *t, struct attach *a, long nr,
		uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		uint64_t a5, int64_t *ret, struct trm_err *err)
{
	uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };

	return ptrace_remote_syscall(t, a->sym.libc_syscall, nr, args, ret, err);
}

/* Our own descriptor for the target's fd: the same open file, taken with
 * pidfd_getfd where the kernel has it (5.6+), else reopened through
 * /proc/PID/fd (target_take_fd); and only if it is what trmtop made
 * there: an anonymous pipe (memfd_name NULL) or the memfd of that name,
 * open for what flags say.  The target's other threads run meanwhile: one that swapped the
 * number for a file of its choosing (an O_PATH descriptor of a file only
 * root may write, a device, a named FIFO) gets -EPERM, never root's
 * writes or reads (a reopen through /proc would open it with root's
 * rights). */
static int take_fd(struct attach *a, int fd, int flags, const char *memfd_name)
{
	char link[128], want[128];
	struct stat sb;
	int ours, rc = -EPERM;

	ours = target_take_fd(a->pid, fd, flags);
	if (ours < 0)
		return ours;
	if (target_own_fd_link(ours, link, sizeof(link)) < 0 || fstat(ours, &sb) < 0 ||
	    (fcntl(ours, F_GETFL) & O_ACCMODE) != (flags & O_ACCMODE))
		goto refuse;
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
int inject_map_page(struct ptrace_thread *t, struct attach *a, raddr_t *page,
		    struct trm_err *err)
{
	int64_t r;
	int rc;

	int u = ptrace_undo_push(t, a->sym.libc_munmap, 2, PTRACE_ARG_RESULT,
				 0, PAGE_LEN, 0);

	rc = inject_rsys(t, a, SYS_mmap, 0, PAGE_LEN, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &r, err);
	if (rc < 0)
		return rc;
	if (r == -1 || r == 0) {
		ptrace_undo_truncate(t, u);
		return trm_err_set(err, -ENOMEM, "pid %d: mmap in the target failed",
				   (int)a->pid);
	}
	/* never write to what is not a page of ours: a result that is no
	 * page address means the call did not run as laid out (its undo
	 * step, which would unmap that address, goes too) */
	if (r < 0 || ((uint64_t)r & (PAGE_ALIGN_MIN - 1)) != 0) {
		ptrace_undo_truncate(t, u);
		return trm_err_set(err, -EIO, "pid %d: mmap in the target returned "
				   "%#llx, not a page address", (int)a->pid,
				   (unsigned long long)r);
	}
	*page = (raddr_t)r;
	return 0;
}

/* memfd_create(name) in the target, name written at where first, with
 * an undo step that closes it should trmtop die before it hands it over:
 * the fd into *fd.  0 or the error. */
static int rmemfd(struct ptrace_thread *t, struct attach *a, raddr_t where,
		  const char *name, int *fd, struct trm_err *err)
{
	int64_t r;
	int rc, u;

	rc = target_write_mem(a->pid, where, name, strlen(name) + 1);
	if (rc < 0)
		return trm_err_set(err, rc, "writing to the target: %s", strerror(-rc));
	u = ptrace_undo_push(t, a->sym.libc_close, 1, PTRACE_ARG_RESULT, 0, 0, 0);
	rc = inject_rsys(t, a, SYS_memfd_create, where,
			 MFD_CLOEXEC | MFD_ALLOW_SEALING, 0, 0, 0, 0, &r, err);
	if (rc < 0)
		return rc;
	if (r < 0) {
		ptrace_undo_truncate(t, u);
		return trm_err_set(err, -EIO, "pid %d: memfd_create in the target failed",
				   (int)a->pid);
	}
	*fd = (int)r;
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
	rc = inject_rsys(t, a, SYS_pipe2, fds, O_CLOEXEC, 0, 0, 0, 0, &r, err);
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
	/* held on those plain closes now: the chain armed by the call takes
	 * the fds from fds[], which the next call's text overwrites (the
	 * script memfd's name goes there: a trmtop killed in between left
	 * this pipe in the target) */
	return ptrace_undo_arm(t, err);
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

int inject_setup_resources(struct ptrace_thread *t, struct attach *a,
			   raddr_t page, struct trm_err *err)
{
	char name[48];
	int32_t fds[4];
	struct stat sb;
	int rc;
	raddr_t scratch = page + PAGE_SCRATCH_OFF;

	snprintf(name, sizeof(name), "trmtop-%016" PRIx64, a->token);
	rc = rmemfd(t, a, scratch + 64, name, &a->t_memfd, err);
	if (rc < 0)
		return rc;
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

int inject_map_and_create(struct ptrace_thread *t, struct attach *a,
			  raddr_t *page, int *created, struct trm_err *err)
{
	int rc = inject_map_page(t, a, page, err);

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
	return inject_setup_resources(t, a, *page, err);
}

/* Close what we created in the target, through a held thread (only used
 * before any bootstrap could run). */
static void undo_resources(struct ptrace_thread *t, struct attach *a)
{
	int fds[6] = { a->t_memfd, a->t_ctl_r, a->t_ctl_w, a->t_data_r, a->t_data_w,
		       a->t_script };
	int64_t r;
	size_t i;

	a->t_script = -1;
	for (i = 0; i < 6; i++)
		if (fds[i] >= 0)
			(void)inject_rsys(t, a, SYS_close, (uint64_t)fds[i], 0, 0,
					  0, 0, 0, &r, NULL);
	a->have_res = 0;
}

/* A path failed with thread t held: take back what it made (the page,
 * and the fds if created).  A thread with undo steps does it by itself
 * once released (its registers run them); otherwise remote calls. */
static void undo_held(struct ptrace_thread *t, struct attach *a, int created,
		      raddr_t page)
{
	int64_t r;

	if (t->nundo > 0) {
		if (created) {
			/* the released thread closes them (its undo steps): a
			 * later attempt makes its own */
			a->have_res = 0;
			a->t_memfd = a->t_ctl_r = a->t_ctl_w = -1;
			a->t_data_r = a->t_data_w = -1;
			a->t_script = -1;
			if (!a->reader) {
				if (a->ctl_fd >= 0)
					close(a->ctl_fd);
				if (a->data_fd >= 0)
					close(a->data_fd);
				a->ctl_fd = a->data_fd = -1;
			}
		}
		return;
	}
	if (created)
		undo_resources(t, a);
	if (page)
		(void)inject_rsys(t, a, SYS_munmap, page, PAGE_LEN, 0, 0, 0, 0, &r,
				  NULL);
}

void inject_let_go(struct ptrace_thread *t, struct attach *a, int take_back,
		   int created, raddr_t page)
{
	if (take_back && t->stopped)
		undo_held(t, a, created, page);
	/* writes the saved registers back (unless an undo chain or a
	 * guarded call given up on restores the thread itself) */
	ptrace_release(t);
	a->ns_held += t->ns_held;
}

int inject_setup_script(struct ptrace_thread *t, struct attach *a, raddr_t page,
			struct trm_err *err)
{
	char name[64], buf[PAGE_SCRATCH_OFF - PAGE_TEXT_OFF];
	int rc, n;

	snprintf(name, sizeof(name), "trmtop-script-%016" PRIx64, a->token);
	rc = rmemfd(t, a, page + PAGE_SCRATCH_OFF, name, &a->t_script, err);
	if (rc < 0)
		return rc;
	n = inject_bootstrap_for(a, 0, 0, buf, sizeof(buf));
	if (n < 0)
		return trm_err_set(err, n, "bootstrap text too long");
	return fill_memfd(a, a->t_script, name, buf, (size_t)n, "script", err);
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
	(void)inject_rsys(t, a, SYS_munmap, a->queued_page, PAGE_TEXT_OFF, 0, 0,
			  0, 0, &r, NULL);
	(void)inject_rsys(t, a, SYS_munmap, keep + keep_len,
			  PAGE_LEN - PAGE_TEXT_OFF - keep_len, 0, 0, 0, 0, &r, NULL);
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
void inject_reclaim(struct attach *a)
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
	if (ptrace_seize(&t, a->pid, a->pid, a->abort, SEIZE_TIMEOUT_MS, NULL) < 0)
		goto out;
	/* start() closes these first: if one is gone, start() has run and the
	 * pipes are a session's */
	if (inject_bootstrap_running(a, &t) || data_pending(a->data_fd) ||
	    !still_ours(a, a->t_memfd, "", 0) ||
	    !still_ours(a, a->t_ctl_w, NULL, a->ctl_ino) ||
	    !still_ours(a, a->t_data_r, NULL, a->data_ino)) {
		inject_trace(a, "reclaim: a bootstrap has run or runs");
		goto out;
	}
	if (a->queued_page && void_queued_text(&t, a) < 0)
		goto out;
	for (i = 0; i < sizeof(res) / sizeof(res[0]); i++)
		if (still_ours(a, res[i].fd, res[i].kind, res[i].ino))
			(void)inject_rsys(&t, a, SYS_close, (uint64_t)res[i].fd,
					  0, 0, 0, 0, 0, &r, NULL);
	a->have_res = 0;
	inject_trace(a, "reclaimed");
out:
	inject_let_go(&t, a, 0, 0, 0);
}

