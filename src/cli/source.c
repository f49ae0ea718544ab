/* source.c - source lines of a live target's files (source.h).
 *
 * The target chooses the file names, and trmtop usually runs as root: a
 * name such as /etc/shadow, ../../root/x or a symlink planted by the
 * target's owner must not get root-only lines into a snapshot its owner
 * reads.  So:
 *
 * - a reader child is forked per snapshot; it drops to the target's
 *   credentials (target_read_creds: setgroups, setresgid, setresuid to its
 *   fsuid/fsgid; a target with uid 0 keeps no capability it lacks) before
 *   it opens anything, and it is not dumpable;
 * - names are resolved inside the target's root (a directory fd of
 *   /proc/PID/root opened by the parent with target_open_fs: this file
 *   reads no /proc itself): openat2 with RESOLVE_IN_ROOT and no magic
 *   links; without openat2, a walk of the components with O_NOFOLLOW
 *   (".." stops at the root, symlinks are refused);
 * - relative names are taken from the target's working directory, as a
 *   path inside that root;
 * - only regular files, opened O_NONBLOCK, checked with fstat before any
 *   read, up to MAX_SOURCE bytes;
 * - the parent talks to the child over a socket pair (no SIGPIPE) with a
 *   deadline per file and in all; a child that is late is killed, and so
 *   is one still reading when trmtop gets SIGINT, SIGTERM or SIGHUP.
 *
 * Any failure is "no source line". */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "source.h"
#include "trmtop/inject.h"
#include "trmtop/util.h"

#define MAX_SOURCE (8u << 20)
#define MAX_FILES 512
#define MAX_NAME 4096
#define MAX_DEPTH 256
#define FILE_TIMEOUT_MS 3000u
#define TOTAL_TIMEOUT_MS 15000u

struct source_file {
	char *name;
	char *text;     /* NUL-terminated copy, lines split in place */
	char **lines;   /* lines[i] is line i + 1 */
	size_t nlines;
};

struct source_cache {
	pid_t pid;
	pid_t child;    /* the reader, -1 when there is none */
	int sock;       /* our end of the socket pair, -1 when there is none */
	uint64_t deadline_ns;
	struct source_file files[MAX_FILES];
	size_t n;
};

/* A reply: err (0 or an errno value) then len bytes of the file. */
struct reply {
	int32_t err;
	uint32_t len;
};

/* ---- the reader child --------------------------------------------------- */

static int full_read(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, (char *)buf + got, len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int full_send(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

/* Close every fd but 0-2, a and b. */
static void close_others(int a, int b)
{
	unsigned keep[2] = { (unsigned)(a < b ? a : b), (unsigned)(a < b ? b : a) };
	unsigned from = 3;

	for (int i = 0; i < 2; i++) {
		if (keep[i] > from && close_range(from, keep[i] - 1, 0) < 0)
			goto slow;
		if (keep[i] + 1 > from)
			from = keep[i] + 1;
	}
	if (close_range(from, ~0u, 0) == 0)
		return;
slow:
	for (int fd = 3; fd < 65536; fd++)
		if (fd != a && fd != b)
			close(fd);
}

static int cmp_gid(const void *x, const void *y)
{
	gid_t a = *(const gid_t *)x, b = *(const gid_t *)y;

	return (a > b) - (a < b);
}

/* 1 if our supplementary groups are exactly c's (as sets). */
static int same_groups(const struct target_creds *c)
{
	gid_t *mine = NULL, *theirs = NULL;
	int n = getgroups(0, NULL), same = 0;

	if (n < 0 || (size_t)n != c->ngroups)
		return 0;
	if (n == 0)
		return 1;
	mine = calloc((size_t)n, sizeof(*mine));
	theirs = calloc((size_t)n, sizeof(*theirs));
	if (mine && theirs && getgroups(n, mine) == n) {
		memcpy(theirs, c->groups, (size_t)n * sizeof(*theirs));
		qsort(mine, (size_t)n, sizeof(*mine), cmp_gid);
		qsort(theirs, (size_t)n, sizeof(*theirs), cmp_gid);
		same = memcmp(mine, theirs, (size_t)n * sizeof(*mine)) == 0;
	}
	free(mine);
	free(theirs);
	return same;
}

/* Keep no capability the target does not have (effective set; permitted
 * cut to the same, none inheritable). */
static int limit_caps(uint64_t target_eff)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	uint64_t perm;

	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	perm = ((uint64_t)d[1].permitted << 32 | d[0].permitted) & target_eff;
	d[0].effective = d[0].permitted = (uint32_t)perm;
	d[1].effective = d[1].permitted = (uint32_t)(perm >> 32);
	d[0].inheritable = d[1].inheritable = 0;
	return syscall(SYS_capset, &h, d) < 0 ? -1 : 0;
}

/* Take the target's credentials for file access.  An unprivileged trmtop
 * (same user as the target) cannot call setgroups: fine when its groups
 * are already the target's. */
static int become(const struct target_creds *c)
{
	if (setgroups(c->ngroups, c->groups) < 0 && !(errno == EPERM && same_groups(c)))
		return -1;
	if (setresgid(c->fsgid, c->fsgid, c->fsgid) < 0 ||
	    setresuid(c->fsuid, c->fsuid, c->fsuid) < 0)
		return -1;
	return limit_caps(c->cap_eff);
}

/* Without openat2: path (absolute, inside root) walked one component at a
 * time with O_NOFOLLOW; ".." is lexical and stops at the root (no symlink
 * is followed, so lexical is what the kernel would do). */
static int walk_in_root(int root, const char *path)
{
	char buf[2 * MAX_NAME + 2];
	char *comp[MAX_DEPTH], *p, *next;
	size_t n = 0, i;
	int dir = root, fd = -1;

	if (strlen(path) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, strlen(path) + 1);
	for (p = buf; *p; p = next) {
		next = p + strcspn(p, "/");
		if (*next)
			*next++ = '\0';
		if (*p == '\0' || strcmp(p, ".") == 0)
			continue;
		if (strcmp(p, "..") == 0) {
			if (n)
				n--;
			continue;
		}
		if (n == MAX_DEPTH) {
			errno = ENAMETOOLONG;
			return -1;
		}
		comp[n++] = p;
	}
	if (n == 0) {
		errno = EISDIR;
		return -1;
	}
	for (i = 0; i + 1 < n; i++) {
		struct stat sb;
		int sub = openat(dir, comp[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (sub >= 0 && (fstat(sub, &sb) < 0 || !S_ISDIR(sb.st_mode))) {
			close(sub);
			sub = -1;
			errno = ENOTDIR;
		}
		if (dir != root)
			close(dir);
		if (sub < 0)
			return -1;
		dir = sub;
	}
	fd = openat(dir, comp[n - 1], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (dir != root) {
		int e = errno;

		close(dir);
		errno = e;
	}
	return fd;
}

static int open_in_root(int root, const char *path, int use_openat2)
{
	struct open_how how;
	int tries = 0;
	long fd;

	if (use_openat2) {
		memset(&how, 0, sizeof(how));
		how.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
		how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
		do
			fd = syscall(SYS_openat2, root, path, &how, sizeof(how));
		while (fd < 0 && errno == EAGAIN && ++tries < 3); /* a racing rename */
		if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
			return (int)fd;
	}
	return walk_in_root(root, path);
}

/* Read one file for a request; *text is malloc'ed.  0 or an errno value. */
static int read_source(const struct target_fs *fs, const char *name, int use_openat2,
		       char **text, uint32_t *len)
{
	char path[2 * MAX_NAME + 2];
	struct stat sb;
	size_t got = 0;
	int fd, e = 0;

	*text = NULL;
	*len = 0;
	if (name[0] == '/')
		snprintf(path, sizeof(path), "%s", name);
	else if (fs->cwd[0])
		snprintf(path, sizeof(path), "%s/%s", fs->cwd, name);
	else
		return ENOENT; /* relative, and the cwd is unknown */
	fd = open_in_root(fs->root_fd, path, use_openat2);
	if (fd < 0)
		return errno;
	if (fstat(fd, &sb) < 0)
		e = errno;
	else if (!S_ISREG(sb.st_mode))
		e = EINVAL;
	else if ((uint64_t)sb.st_size > MAX_SOURCE)
		e = EFBIG;
	else if (!(*text = malloc((size_t)sb.st_size + 1)))
		e = ENOMEM;
	while (!e && got < (size_t)sb.st_size) {
		ssize_t r = read(fd, *text + got, (size_t)sb.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			e = errno;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (e) {
		free(*text);
		*text = NULL;
		return e;
	}
	*len = (uint32_t)got;
	return 0;
}

/* The child: requests are a u32 length and a name; each gets a reply. */
static int reader_main(int sock, const struct target_fs *fs,
		       const struct target_creds *c, pid_t parent, int use_openat2)
{
	char name[MAX_NAME + 1];

	close_others(sock, fs->root_fd);
	if (prctl(PR_SET_DUMPABLE, 0) < 0 || become(c) < 0)
		return 1;
	/* a change of credentials clears the parent-death signal: set it now */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		return 1;
	for (;;) {
		struct reply rep = { 0, 0 };
		char *text = NULL;
		uint32_t len;

		if (full_read(sock, &len, sizeof(len)) < 0)
			return 0; /* the parent is done */
		if (len == 0 || len > MAX_NAME || full_read(sock, name, len) < 0)
			return 1;
		name[len] = '\0';
		rep.err = read_source(fs, name, use_openat2, &text, &rep.len);
		if (full_send(sock, &rep, sizeof(rep)) < 0 ||
		    (rep.len && full_send(sock, text, rep.len) < 0))
			return 1;
		free(text);
	}
}

/* ---- the parent's side -------------------------------------------------- */

static void reader_stop(struct source_cache *sc, int kill_it)
{
	int status;

	if (sc->sock >= 0)
		close(sc->sock);
	sc->sock = -1;
	if (sc->child <= 0)
		return;
	if (kill_it) {
		kill(sc->child, SIGKILL);
		/* one stuck in an uninterruptible read is left to init */
		(void)waitpid(sc->child, &status, WNOHANG);
	} else {
		/* it ends on the EOF of its socket */
		while (waitpid(sc->child, &status, 0) < 0 && errno == EINTR)
			;
	}
	sc->child = -1;
}

static void reader_start(struct source_cache *sc, const struct target_creds *seen)
{
	struct target_creds now = { 0 };
	struct target_fs fs = { -1, "" };
	int sv[2] = { -1, -1 };
	int use_openat2 = !getenv("TRMTOP_TEST_NO_OPENAT2");
	pid_t parent = getpid();

	if (target_read_creds(sc->pid, &now, NULL) < 0 ||
	    (seen && !target_creds_equal(seen, &now)) ||
	    target_open_fs(sc->pid, &fs, NULL) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		goto out;
	sc->child = fork();
	if (sc->child == 0) {
		close(sv[0]);
		_exit(reader_main(sv[1], &fs, &now, parent, use_openat2));
	}
	if (sc->child > 0) {
		sc->sock = sv[0];
		sv[0] = -1;
		sc->deadline_ns = util_now_ns() + TOTAL_TIMEOUT_MS * 1000000ull;
	}
out:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	target_close_fs(&fs);
	target_creds_fini(&now);
}

/* Receive len bytes before the deadline and before an aborting signal
 * to trmtop (inject.h, "Waiting"); 0 or -1. */
static int recv_until(int fd, void *buf, size_t len, uint64_t deadline)
{
	size_t got = 0;

	while (got < len) {
		uint64_t now = util_now_ns();
		ssize_t r;

		if (now >= deadline)
			return -1;
		r = inject_wait_fd(cli_abort(), fd, POLLIN,
				   (int)((deadline - now) / 1000000u) + 1);
		if (r <= 0)
			return -1;
		r = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* Ask the reader for sf's file; its text, or NULL (no such file, not
 * readable by the target, ...; a reader that misbehaves or is late is
 * stopped for good). */
static char *fetch(struct source_cache *sc, const char *name, uint32_t *len)
{
	uint32_t nl = (uint32_t)strlen(name);
	uint64_t deadline = util_now_ns() + FILE_TIMEOUT_MS * 1000000ull;
	struct reply rep;
	char *text = NULL;

	if (sc->sock < 0 || nl == 0 || nl > MAX_NAME)
		return NULL;
	if (deadline > sc->deadline_ns)
		deadline = sc->deadline_ns;
	if (full_send(sc->sock, &nl, sizeof(nl)) < 0 || full_send(sc->sock, name, nl) < 0 ||
	    recv_until(sc->sock, &rep, sizeof(rep), deadline) < 0)
		goto bad;
	if (rep.err)
		return NULL;
	if (rep.len > MAX_SOURCE || !(text = malloc((size_t)rep.len + 1)))
		goto bad;
	if (recv_until(sc->sock, text, rep.len, deadline) < 0)
		goto bad;
	text[rep.len] = '\0';
	*len = rep.len;
	return text;
bad:
	free(text);
	reader_stop(sc, 1);
	return NULL;
}

struct source_cache *source_cache_new(pid_t pid, const struct target_creds *seen)
{
	struct source_cache *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	sc->pid = pid;
	sc->child = -1;
	sc->sock = -1;
	reader_start(sc, seen);
	return sc;
}

void source_cache_free(struct source_cache *sc)
{
	size_t i;

	if (!sc)
		return;
	reader_stop(sc, 0);
	for (i = 0; i < sc->n; i++) {
		free(sc->files[i].name);
		free(sc->files[i].text);
		free(sc->files[i].lines);
	}
	free(sc);
}

static void load(struct source_cache *sc, struct source_file *sf)
{
	uint32_t len = 0;
	size_t i, n = 0;
	char *text, *p;

	text = fetch(sc, sf->name, &len);
	if (!text)
		return;
	if (memchr(text, '\0', len))
		goto out; /* binary */
	for (i = 0; i < len; i++)
		n += text[i] == '\n';
	sf->lines = calloc(n + 1, sizeof(char *));
	if (!sf->lines)
		goto out;
	p = text;
	for (i = 0; i <= n && p; i++) {
		char *nl = strchr(p, '\n');

		sf->lines[i] = p;
		if (nl)
			*nl = '\0';
		p = nl ? nl + 1 : NULL;
	}
	sf->nlines = i;
	sf->text = text;
	text = NULL;
out:
	free(text);
}

const char *source_line(struct source_cache *sc, const char *filename,
			uint32_t lineno)
{
	struct source_file *sf = NULL;
	char *line, *end;
	size_t i;

	if (!sc || !filename || !*filename || filename[0] == '<' || lineno == 0)
		return NULL;
	for (i = 0; i < sc->n; i++)
		if (strcmp(sc->files[i].name, filename) == 0)
			sf = &sc->files[i];
	if (!sf) {
		if (sc->n >= MAX_FILES)
			return NULL;
		sf = &sc->files[sc->n];
		sf->name = strdup(filename);
		if (!sf->name)
			return NULL;
		sc->n++;
		load(sc, sf);
	}
	if (!sf->lines || lineno > sf->nlines)
		return NULL;
	line = sf->lines[lineno - 1];
	/* strip in place, like linecache.getline(...).strip() */
	while (*line && isspace((unsigned char)*line))
		line++;
	end = line + strlen(line);
	while (end > line && isspace((unsigned char)end[-1]))
		*--end = '\0';
	sf->lines[lineno - 1] = line;
	return line;
}
