/* proc.c - what /proc says about a process: maps, status, threads, the
 * syscall a thread is in, its executable (path and identity), fds (and
 * taking one of them), dumpability, PID namespace and the system's Yama
 * ptrace scope.  Parsing is kept apart from reading (target_parse_*,
 * unit-tested on fixed texts). */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "target_int.h"
#include "trmtop/util.h"

#define DELETED_SUFFIX " (deleted)"
#define SLURP_FIRST 32768 /* a Python process's maps: hundreds of lines */
#define SLURP_ROOM 4096   /* the least a read is given */

/* Read a small /proc file into buf (NUL-terminated).  0 or -errno. */
static int read_text(const char *path, char *buf, size_t len, size_t *got)
{
	size_t n = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (n + 1 < len) {
		ssize_t r = read(fd, buf + n, len - 1 - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
out:
	buf[n] = '\0';
	if (got)
		*got = n;
	close(fd);
	return rc;
}

/* read_text, failing with "read PATH: why" in err. */
static int read_text_err(const char *path, char *buf, size_t len,
			 struct trm_err *err)
{
	int rc = read_text(path, buf, len, NULL);

	return rc < 0 ? trm_err_set(err, rc, "read %s: %s", path, strerror(-rc)) : 0;
}

/* Read the directory path, calling each(name, arg) for every entry whose
 * name starts with a digit (a /proc list of tasks or fds), until each
 * fails.  0, or -errno with "open PATH: why" or "read PATH: why" in err
 * (each's -errno too). */
static int each_numbered(const char *path, int (*each)(const char *name, void *arg),
			 void *arg, struct trm_err *err)
{
	struct dirent *de;
	DIR *d;
	int rc = 0;

	d = opendir(path);
	if (!d)
		return trm_err_set(err, -errno, "open %s: %s", path,
				   strerror(errno));
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = trm_err_set(err, -errno, "read %s: %s",
						 path, strerror(errno));
			break;
		}
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		rc = each(de->d_name, arg);
		if (rc < 0) {
			rc = trm_err_set(err, rc, "read %s: %s", path,
					 strerror(-rc));
			break;
		}
	}
	closedir(d);
	return rc;
}

/* Cursor helpers: advance *s on success, return -1 on failure. */
static int cur_hex(const char **s, uint64_t *v)
{
	char *end;

	if (!isxdigit((unsigned char)**s))
		return -1;
	errno = 0;
	*v = strtoull(*s, &end, 16);
	if (errno)
		return -1;
	*s = end;
	return 0;
}

static int cur_dec(const char **s, long long *v)
{
	char *end;

	if (!isdigit((unsigned char)**s) && **s != '-')
		return -1;
	errno = 0;
	*v = strtoll(*s, &end, 10);
	if (errno || end == *s)
		return -1;
	*s = end;
	return 0;
}

static int cur_char(const char **s, char c)
{
	if (**s != c)
		return -1;
	(*s)++;
	return 0;
}

static void cur_spaces(const char **s)
{
	while (**s == ' ' || **s == '\t')
		(*s)++;
}

int target_parse_map_line(char *line, struct target_map *out)
{
	const char *s = line;
	uint64_t start, end, off, maj, min, ino;
	char *e, *path;
	size_t plen;

	memset(out, 0, sizeof(*out));
	out->path = "";
	if (cur_hex(&s, &start) || cur_char(&s, '-') || cur_hex(&s, &end) ||
	    cur_char(&s, ' '))
		return -EINVAL;
	if (strnlen(s, 5) < 5 || s[4] != ' ')
		return -EINVAL;
	memcpy(out->perms, s, 4);
	out->perms[4] = '\0';
	s += 5;
	if (cur_hex(&s, &off) || cur_char(&s, ' ') || cur_hex(&s, &maj) ||
	    cur_char(&s, ':') || cur_hex(&s, &min) || cur_char(&s, ' '))
		return -EINVAL;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	ino = strtoull(s, &e, 10);
	s = e;
	if (errno || end < start)
		return -EINVAL;
	cur_spaces(&s);
	path = line + (s - line);
	plen = strcspn(path, "\n");
	if (plen >= TARGET_PATH_MAX)
		return -EINVAL;
	path[plen] = '\0';
	if (plen >= sizeof(DELETED_SUFFIX) &&
	    strcmp(path + plen - (sizeof(DELETED_SUFFIX) - 1),
		   DELETED_SUFFIX) == 0) {
		out->deleted = 1;
		path[plen - (sizeof(DELETED_SUFFIX) - 1)] = '\0';
	}
	out->path = path;
	out->start = start;
	out->end = end;
	out->offset = off;
	out->dev_major = (unsigned)maj;
	out->dev_minor = (unsigned)min;
	out->inode = (unsigned long)ino;
	return 0;
}

int target_slurp(const char *path, size_t max, char **text, size_t *len)
{
	size_t n = 0, cap = 0;
	char *buf = NULL;
	int fd, rc = 0;

	*text = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t r;

		/* room for a read of SLURP_ROOM - 1 bytes and the NUL, or
		 * for one byte more than max */
		if (cap - n < SLURP_ROOM) {
			size_t need = n + SLURP_ROOM;

			if (max + 2 - n < SLURP_ROOM)
				need = max + 2;

			if (util_grow_max((void **)&buf, &cap, need, 1, SLURP_FIRST,
					  max + 2) < 0) {
				rc = -ENOMEM;
				break;
			}
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			rc = -EFBIG;
			break;
		}
	}
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

int target_read_maps(pid_t pid, struct target_maps *out, struct trm_err *err)
{
	char path[64];
	char *text = NULL, *line, *next;
	size_t len = 0, alloc = 0, n = 0, i;
	struct target_map *v = NULL;
	int rc;

	out->v = NULL;
	out->n = 0;
	out->text = NULL;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	rc = target_slurp(path, SIZE_MAX / 2, &text, &len);
	if (rc < 0)
		return trm_err_set(err, rc, "read %s: %s", path, strerror(-rc));
	for (i = 0; i < len; i++)
		alloc += text[i] == '\n';
	alloc++;
	v = malloc(alloc * sizeof(*v));
	if (!v) {
		rc = trm_err_set(err, -ENOMEM, "read %s: %s", path,
				 strerror(ENOMEM));
		goto out;
	}
	for (line = text; *line && n < alloc; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0'; /* one line, also in an error message */
		else
			next = line + strlen(line);
		if (target_parse_map_line(line, &v[n]) != 0) {
			rc = trm_err_set(err, -EINVAL,
					 "parse %s: bad line \"%.80s\"", path,
					 line);
			goto out;
		}
		n++;
	}
	if (n == 0) {
		/* A zombie or kernel thread: nothing mapped. */
		rc = trm_err_set(err, -ESRCH, "read %s: empty", path);
		goto out;
	}
	out->v = v;
	out->n = n;
	out->text = text;
	return 0;
out:
	free(v);
	free(text);
	return rc;
}

void target_maps_fini(struct target_maps *maps)
{
	if (!maps)
		return;
	free(maps->v);
	free(maps->text);
	maps->v = NULL;
	maps->text = NULL;
	maps->n = 0;
}

/* Value of "Key:" in a status text (pointer after the colon and blanks), or
 * NULL. */
static const char *status_field(const char *text, const char *key)
{
	size_t kl = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ':') {
			p += kl + 1;
			cur_spaces(&p);
			return p;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

static long long status_num(const char *text, const char *key, long long dflt)
{
	const char *p = status_field(text, key);
	long long v;

	if (!p || cur_dec(&p, &v))
		return dflt;
	return v;
}

/* The real, effective and saved ids of a "Uid:" or "Gid:" line (0 when
 * missing). */
static void status_id3(const char *text, const char *key, long long ids[3])
{
	const char *p = status_field(text, key);
	int i;

	ids[0] = ids[1] = ids[2] = 0;
	for (i = 0; p && i < 3; i++) {
		if (cur_dec(&p, &ids[i]))
			break;
		cur_spaces(&p);
	}
}

int target_parse_status(const char *text, struct target_status *out)
{
	const char *p;
	size_t l;
	long long v, ids[3];

	memset(out, 0, sizeof(*out));
	p = status_field(text, "Name");
	if (!p)
		return -EINVAL;
	l = strcspn(p, "\n");
	if (l >= sizeof(out->name))
		l = sizeof(out->name) - 1;
	memcpy(out->name, p, l);
	out->name[l] = '\0';

	p = status_field(text, "State");
	if (!p || !*p || *p == '\n')
		return -EINVAL;
	out->state = *p;

	v = status_num(text, "Tgid", -1);
	if (v < 0)
		return -EINVAL;
	out->tgid = (pid_t)v;
	out->tracer = (pid_t)status_num(text, "TracerPid", 0);
	out->threads = (int)status_num(text, "Threads", 0);
	out->vm_rss_kib = (unsigned long)status_num(text, "VmRSS", 0);
	p = status_field(text, "SigBlk");
	if (p && cur_hex(&p, &out->sigblk) != 0)
		out->sigblk = 0;
	p = status_field(text, "SigCgt");
	if (!p || cur_hex(&p, &out->sigcgt) != 0)
		out->sigcgt = ~(uint64_t)0; /* unknown: assume all caught */

	out->ppid = (pid_t)status_num(text, "PPid", 0);
	status_id3(text, "Uid", ids);
	out->uid_real = (uid_t)ids[0];
	out->uid_eff = (uid_t)ids[1];
	out->uid_saved = (uid_t)ids[2];
	status_id3(text, "Gid", ids);
	out->gid_real = (gid_t)ids[0];
	out->gid_eff = (gid_t)ids[1];
	out->gid_saved = (gid_t)ids[2];
	v = status_num(text, "Kthread", -1);
	out->kthread = v >= 0 ? v == 1 : !status_field(text, "VmSize");
	p = status_field(text, "CapEff");
	if (p) {
		uint64_t cap;

		if (cur_hex(&p, &cap) == 0)
			out->cap_eff = cap;
	}

	/* NSpid lists the pid from the outermost to the innermost namespace. */
	out->nspid = (pid_t)status_num(text, "Pid", 0);
	p = status_field(text, "NSpid");
	if (p) {
		while (cur_dec(&p, &v) == 0) {
			out->nspid = (pid_t)v;
			cur_spaces(&p);
		}
	}
	out->nstgid = out->tgid;
	p = status_field(text, "NStgid");
	if (p) {
		while (cur_dec(&p, &v) == 0) {
			out->nstgid = (pid_t)v;
			cur_spaces(&p);
		}
	}
	return 0;
}

int target_read_status(pid_t pid, pid_t tid, struct target_status *out,
		       struct trm_err *err)
{
	char path[64];
	char buf[8192];
	int rc;

	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status",
			 (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	rc = read_text_err(path, buf, sizeof(buf), err);
	if (rc < 0)
		goto out;
	rc = target_parse_status(buf, out);
	if (rc < 0)
		rc = trm_err_set(err, rc, "parse %s: missing fields", path);
out:
	return rc;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

struct tid_list {
	pid_t *v;
	size_t n, cap;
};

static int add_tid(const char *name, void *arg)
{
	struct tid_list *l = arg;
	char *end;
	long t;

	t = strtol(name, &end, 10);
	if (*end || t <= 0)
		return 0;
	if (UTIL_GROW(l->v, l->cap, l->n + 1, 16) < 0)
		return -ENOMEM;
	l->v[l->n++] = (pid_t)t;
	return 0;
}

int target_list_threads(pid_t pid, pid_t **tids, size_t *n, struct trm_err *err)
{
	char path[64];
	struct tid_list l = { 0 };
	pid_t *v;
	size_t cnt, i;
	int rc;

	*tids = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	rc = each_numbered(path, add_tid, &l, err);
	v = l.v;
	cnt = l.n;
	if (rc < 0)
		goto out;
	if (cnt == 0) {
		rc = trm_err_set(err, -ESRCH, "read %s: no threads", path);
		goto out;
	}
	qsort(v, cnt, sizeof(*v), cmp_pid);
	/* The main thread first. */
	for (i = 0; i < cnt; i++) {
		if (v[i] == pid) {
			memmove(v + 1, v, i * sizeof(*v));
			v[0] = pid;
			break;
		}
	}
	*tids = v;
	*n = cnt;
	v = NULL;
out:
	free(v);
	return rc;
}

int target_parse_syscall(const char *text, struct target_syscall *out)
{
	const char *s = text;
	long long nr;
	uint64_t v[8];
	int i, nv;

	memset(out->args, 0, sizeof(out->args));
	out->running = 0;
	out->nr = -1;
	out->sp = 0;
	out->pc = 0;
	if (strncmp(s, "running", 7) == 0) {
		out->running = 1;
		return 0;
	}
	if (cur_dec(&s, &nr))
		return -EINVAL;
	/* "-1 sp pc" (blocked, not in a syscall) or "nr a0..a5 sp pc". */
	nv = nr < 0 ? 2 : 8;
	for (i = 0; i < nv; i++) {
		if (cur_char(&s, ' ') || cur_char(&s, '0') || cur_char(&s, 'x') ||
		    cur_hex(&s, &v[i]))
			return -EINVAL;
	}
	if (nr < 0) {
		out->sp = v[0];
		out->pc = v[1];
		return 0;
	}
	out->nr = (long)nr;
	for (i = 0; i < 6; i++)
		out->args[i] = v[i];
	out->sp = v[6];
	out->pc = v[7];
	return 0;
}

int target_read_syscall(pid_t pid, pid_t tid, struct target_syscall *out,
			struct trm_err *err)
{
	char path[80];
	char buf[512];
	size_t got;
	int rc;

	memset(out, 0, sizeof(*out));
	out->nr = -1;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid,
		 (int)tid);
	rc = read_text_err(path, buf, sizeof(buf), err);
	if (rc < 0)
		goto out;
	rc = target_parse_syscall(buf, out);
	if (rc < 0) {
		rc = trm_err_set(err, rc, "parse %s: \"%.60s\"", path, buf);
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", (int)pid,
		 (int)tid);
	if (read_text(path, buf, sizeof(buf), &got) == 0) {
		size_t l = strcspn(buf, "\n");
		if (l >= sizeof(out->wchan))
			l = sizeof(out->wchan) - 1;
		buf[l] = '\0';
		/* "0" means not blocked in the kernel. */
		if (strcmp(buf, "0") != 0)
			memcpy(out->wchan, buf, l + 1);
	}
out:
	return rc;
}

int target_read_dumpable(pid_t pid, const struct target_status *st)
{
	char path[64];
	struct stat sb;

	if (st->uid_eff == 0)
		return -ENODATA;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (stat(path, &sb) < 0)
		return -errno;
	return sb.st_uid == st->uid_eff;
}

int target_read_ptrace_scope(int *scope)
{
	char buf[16];
	int rc;

	rc = read_text("/proc/sys/kernel/yama/ptrace_scope", buf, sizeof(buf), NULL);
	if (rc < 0)
		return rc;
	if (buf[0] < '0' || buf[0] > '9')
		return -EINVAL;
	*scope = buf[0] - '0';
	return 0;
}

int target_read_pidns(pid_t pid, unsigned long *ino)
{
	char path[64];
	struct stat sb;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	if (stat(path, &sb) < 0)
		return -errno;
	*ino = (unsigned long)sb.st_ino;
	return 0;
}

int target_read_fd(pid_t pid, int fd, struct target_fd *out)
{
	char path[64];
	struct stat sb;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	n = readlink(path, out->link, sizeof(out->link) - 1);
	if (n < 0)
		return -errno;
	out->link[n] = '\0';
	if (stat(path, &sb) < 0)
		return -errno;
	out->ino = (unsigned long)sb.st_ino;
	out->mode = (unsigned)sb.st_mode;
	return 0;
}

int target_exited(pid_t pid, int timeout_ms)
{
	struct target_status st;
	struct pollfd p;
	int pidfd, n;

	if (target_read_status(pid, 0, &st, NULL) < 0 || st.state == 'Z' ||
	    st.state == 'X')
		return 1;
	/* Its files (the agent's pipes) close before it becomes a zombie:
	 * wait for that, as its pidfd says (readable once it has exited). */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return errno == ESRCH;
	p = (struct pollfd){ pidfd, POLLIN, 0 };
	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	close(pidfd);
	return n > 0;
}

int target_take_fd(pid_t pid, int fd, int flags)
{
	char path[64];
	int ours = -1, pidfd, rc;

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd >= 0) {
		ours = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
		rc = ours < 0 ? -errno : 0;
		close(pidfd);
		if (ours >= 0)
			return ours;
		if (rc != -ENOSYS)
			return rc;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	ours = open(path, flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	return ours < 0 ? -errno : ours;
}

int target_own_fd_link(int fd, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	if (len == 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

int target_read_exe(pid_t pid, char *buf, size_t len, struct trm_err *err)
{
	char path[64];
	ssize_t r;
	int rc = 0;

	if (len == 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	r = readlink(path, buf, len);
	if (r < 0) {
		rc = trm_err_set(err, -errno, "readlink %s: %s", path,
				 strerror(errno));
		buf[0] = '\0';
		goto out;
	}
	if ((size_t)r >= len) {
		rc = trm_err_set(err, -ENAMETOOLONG, "readlink %s: %s", path,
				 strerror(ENAMETOOLONG));
		buf[0] = '\0';
		goto out;
	}
	buf[r] = '\0';
out:
	return rc;
}

int target_stat_exe(pid_t pid, struct target_file_id *out)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (stat(path, &st) < 0)
		return -errno;
	out->dev_major = major(st.st_dev);
	out->dev_minor = minor(st.st_dev);
	out->inode = (unsigned long)st.st_ino;
	return 0;
}

int target_alive(pid_t pid)
{
	char path[64];

	if (pid <= 0)
		return 0;
	if (kill(pid, 0) == 0 || errno == EPERM)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return access(path, F_OK) == 0;
}

int target_read_rss(pid_t pid, uint64_t *rss, struct trm_err *err)
{
	char path[64];
	char buf[256];
	const char *s = buf;
	long long size, res;
	long page;
	int rc;

	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	rc = read_text_err(path, buf, sizeof(buf), err);
	if (rc < 0)
		goto out;
	if (cur_dec(&s, &size) || cur_char(&s, ' ') || cur_dec(&s, &res) ||
	    res < 0) {
		rc = trm_err_set(err, -EINVAL, "parse %s: \"%.60s\"", path, buf);
		goto out;
	}
	page = sysconf(_SC_PAGESIZE);
	*rss = (uint64_t)res * (uint64_t)(page > 0 ? page : 4096);
out:
	return rc;
}

static int count_one(const char *name, void *arg)
{
	(void)name;
	++*(int *)arg;
	return 0;
}

int target_count_fds(pid_t pid, int *n, struct trm_err *err)
{
	char path[64];
	int cnt = 0, rc;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	rc = each_numbered(path, count_one, &cnt, err);
	if (rc == 0)
		*n = cnt;
	return rc;
}
