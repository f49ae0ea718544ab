/* fs.c - a process's view for file access: its filesystem credentials
 * (fsuid, fsgid, supplementary groups, effective capabilities, from
 * /proc/PID/status) and its root and working directory (/proc/PID/root,
 * /proc/PID/cwd).  Used to read files with the target's rights, inside its
 * root, never with trmtop's. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "target_int.h"

#define STATUS_MAX ((1u << 20) - 2) /* bytes; 65536 groups fit */
#define DELETED_SUFFIX " (deleted)"

/* The line after "Key:" (blanks skipped), or NULL. */
static const char *field(const char *text, const char *key)
{
	size_t kl = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ':') {
			p += kl + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

/* Up to max unsigned decimal numbers of one line into v; their count, or
 * -EINVAL for anything else on the line. */
static long numbers(const char *p, unsigned long *v, size_t max)
{
	size_t n = 0;

	for (;;) {
		char *end;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\n' || *p == '\0')
			return (long)n;
		if (!isdigit((unsigned char)*p) || n == max)
			return -EINVAL;
		errno = 0;
		v[n++] = strtoul(p, &end, 10);
		if (errno || v[n - 1] > 0xffffffffu)
			return -EINVAL;
		p = end;
	}
}

int target_parse_creds(const char *text, struct target_creds *out)
{
	unsigned long ids[4], *g = NULL;
	const char *p;
	size_t max = 0;
	long n;
	char *end;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	p = field(text, "Uid");
	if (!p || numbers(p, ids, 4) != 4)
		goto out;
	out->fsuid = (uid_t)ids[3];
	p = field(text, "Gid");
	if (!p || numbers(p, ids, 4) != 4)
		goto out;
	out->fsgid = (gid_t)ids[3];
	p = field(text, "CapEff");
	if (!p || !isxdigit((unsigned char)*p))
		goto out;
	errno = 0;
	out->cap_eff = strtoull(p, &end, 16);
	if (errno || (*end != '\n' && *end != '\0'))
		goto out;
	p = field(text, "Groups");
	if (!p)
		goto out;
	for (const char *q = p; *q && *q != '\n'; q++)
		max += *q == ' ' || *q == '\t';
	g = calloc(max + 1, sizeof(*g));
	out->groups = calloc(max + 1, sizeof(*out->groups));
	if (!g || !out->groups) {
		rc = -ENOMEM;
		goto out;
	}
	n = numbers(p, g, max + 1);
	if (n < 0)
		goto out;
	for (long i = 0; i < n; i++)
		out->groups[i] = (gid_t)g[i];
	out->ngroups = (size_t)n;
	rc = 0;
out:
	free(g);
	if (rc < 0)
		target_creds_fini(out);
	return rc;
}

void target_creds_fini(struct target_creds *c)
{
	if (!c)
		return;
	free(c->groups);
	c->groups = NULL;
	c->ngroups = 0;
}

int target_creds_equal(const struct target_creds *a, const struct target_creds *b)
{
	return a->fsuid == b->fsuid && a->fsgid == b->fsgid &&
	       a->cap_eff == b->cap_eff && a->ngroups == b->ngroups &&
	       (a->ngroups == 0 ||
		memcmp(a->groups, b->groups, a->ngroups * sizeof(*a->groups)) == 0);
}

int target_read_creds(pid_t pid, struct target_creds *out, struct trm_err *err)
{
	char path[64];
	char *text = NULL;
	size_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	rc = target_slurp(path, STATUS_MAX, &text, &n);
	if (rc == -EFBIG)
		return trm_err_set(err, -ENOMEM, "read %s: too large", path);
	if (rc < 0)
		return trm_err_set(err, rc, "read %s: %s", path, strerror(-rc));
	rc = target_parse_creds(text, out);
	if (rc < 0)
		rc = trm_err_set(err, rc, "parse %s: %s", path,
				 rc == -ENOMEM ? strerror(ENOMEM) : "no Uid, Gid, Groups or CapEff");
	free(text);
	return rc;
}

/* readlink of /proc/PID/<what> into buf; 0 or -errno. */
static int link_text(pid_t pid, const char *what, char *buf, size_t len)
{
	char path[64];
	ssize_t r;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	r = readlink(path, buf, len);
	if (r < 0)
		return -errno;
	if ((size_t)r >= len)
		return -ENAMETOOLONG;
	buf[r] = '\0';
	return 0;
}

int target_cwd_in_root(const char *root, const char *cwd, char *out, size_t len)
{
	size_t rl = strlen(root), cl = strlen(cwd);
	const char *rest;

	if (root[0] != '/' || cwd[0] != '/')
		return -ENOENT; /* "(unreachable)" and the like */
	if (rl >= sizeof(DELETED_SUFFIX) - 1 &&
	    strcmp(root + rl - (sizeof(DELETED_SUFFIX) - 1), DELETED_SUFFIX) == 0)
		return -ENOENT;
	if (cl >= sizeof(DELETED_SUFFIX) - 1 &&
	    strcmp(cwd + cl - (sizeof(DELETED_SUFFIX) - 1), DELETED_SUFFIX) == 0)
		return -ENOENT;
	if (strcmp(root, "/") == 0)
		rest = cwd;
	else if (strncmp(cwd, root, rl) == 0 && (cwd[rl] == '/' || cwd[rl] == '\0'))
		rest = cwd[rl] ? cwd + rl : "/";
	else
		return -ENOENT; /* the cwd is outside the root */
	if (strlen(rest) >= len)
		return -ENAMETOOLONG;
	memcpy(out, rest, strlen(rest) + 1);
	return 0;
}

int target_open_fs(pid_t pid, struct target_fs *out, struct trm_err *err)
{
	char path[64], root[TARGET_PATH_MAX], cwd[TARGET_PATH_MAX];
	int rc;

	out->root_fd = -1;
	out->cwd[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
	out->root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (out->root_fd < 0)
		return trm_err_set(err, -errno, "open %s: %s", path, strerror(errno));
	/* Strings only: a path that no longer matches makes a relative name
	 * resolve elsewhere inside the same root, which is harmless. */
	rc = link_text(pid, "root", root, sizeof(root));
	if (rc == 0)
		rc = link_text(pid, "cwd", cwd, sizeof(cwd));
	if (rc == 0 && target_cwd_in_root(root, cwd, out->cwd, sizeof(out->cwd)) < 0)
		out->cwd[0] = '\0';
	return 0;
}

void target_close_fs(struct target_fs *fs)
{
	if (!fs)
		return;
	if (fs->root_fd >= 0)
		close(fs->root_fd);
	fs->root_fd = -1;
}
