/* outfile.c - atomic, non-following file output for every CLI writer, and
 * the start and end of a command's output with its exit status 5 (see
 * outfile.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "outfile.h"

#define TMP_TRIES 64
#define TMP_BASE_MAX 200 /* room for ".", ".tmp" and 12 hex digits */

static const char *kind(mode_t m)
{
	if (S_ISLNK(m))
		return "a symbolic link";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

/* Split path into its directory (opened into *dirfd) and base name, check
 * the directory is writable and the name is free or a regular file. */
static int locate(const char *path, int *dirfd, char *base, struct trm_err *err)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	struct stat sb;
	size_t dl;
	int rc = 0;

	*dirfd = -1;
	if (!*path)
		return trm_err_set(err, -ENOENT, "an empty file name");
	if (!slash) {
		memcpy(dir, ".", 2);
		slash = path - 1;
	} else {
		dl = slash == path ? 1 : (size_t)(slash - path);
		if (dl >= sizeof(dir))
			return trm_err_set(err, -ENAMETOOLONG, "%s: %s", path,
					   strerror(ENAMETOOLONG));
		memcpy(dir, path, dl);
		dir[dl] = '\0';
	}
	if (!slash[1] || strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0) {
		rc = trm_err_set(err, -EISDIR, "%s: a directory, not a regular file", path);
		goto hint;
	}
	if (strlen(slash + 1) > NAME_MAX)
		return trm_err_set(err, -ENAMETOOLONG, "%s: %s", path, strerror(ENAMETOOLONG));
	memcpy(base, slash + 1, strlen(slash + 1) + 1);
	*dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd < 0)
		return trm_err_set(err, -errno, "%s: directory %s: %s", path, dir,
				   strerror(errno));
	if (faccessat(*dirfd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
		rc = trm_err_set(err, -errno, "%s: directory %s: %s", path, dir,
				 strerror(errno));
		goto out;
	}
	if (fstatat(*dirfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(sb.st_mode)) {
		rc = trm_err_set(err, S_ISDIR(sb.st_mode) ? -EISDIR : -EEXIST,
				 "%s: %s, not a regular file; not replaced", path,
				 kind(sb.st_mode));
		goto hint;
	}
	return 0;
hint:
	trm_err_hint(err, "name a regular file, or one that does not exist yet");
out:
	if (*dirfd >= 0)
		close(*dirfd);
	*dirfd = -1;
	return rc;
}

int outfile_check(const char *path, struct trm_err *err)
{
	char base[NAME_MAX + 1];
	int dirfd, rc;

	rc = locate(path, &dirfd, base, err);
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}

static ssize_t cookie_write(void *arg, const char *buf, size_t len)
{
	struct outfile *of = arg;
	size_t done = 0;

	if (of->werr) {
		errno = of->werr;
		return -1;
	}
	while (done < len) {
		ssize_t r = write(of->fd, buf + done, len - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			of->werr = r < 0 ? errno : ENOSPC;
			errno = of->werr;
			return done ? (ssize_t)done : -1;
		}
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static int create_tmp(struct outfile *of, mode_t mode)
{
	int i;

	for (i = 0; i < TMP_TRIES; i++) {
		unsigned char r[6];
		size_t bl = strlen(of->base);

		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
			return -errno;
		snprintf(of->tmp, sizeof(of->tmp), ".%.*s.tmp%02x%02x%02x%02x%02x%02x",
			 (int)(bl > TMP_BASE_MAX ? TMP_BASE_MAX : bl), of->base,
			 r[0], r[1], r[2], r[3], r[4], r[5]);
		of->fd = openat(of->dirfd, of->tmp,
				O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (of->fd >= 0)
			return 0;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

int outfile_open(struct outfile *of, const char *path, mode_t mode,
		 struct trm_err *err)
{
	cookie_io_functions_t io = { NULL, cookie_write, NULL, NULL };
	int rc;

	memset(of, 0, sizeof(*of));
	of->path = path;
	of->fd = -1;
	rc = locate(path, &of->dirfd, of->base, err);
	if (rc < 0)
		return rc;
	rc = create_tmp(of, mode);
	if (rc < 0) {
		trm_err_set(err, rc, "%s: creating a temporary file: %s", path, strerror(-rc));
		goto fail;
	}
	of->f = fopencookie(of, "w", io);
	if (!of->f || setvbuf(of->f, NULL, _IOFBF, 1 << 16) != 0) {
		rc = trm_err_set(err, -ENOMEM, "%s: %s", path, strerror(ENOMEM));
		goto fail;
	}
	return 0;
fail:
	outfile_abort(of);
	return rc;
}

int outfile_open_stdout(struct outfile *of, struct trm_err *err)
{
	cookie_io_functions_t io = { NULL, cookie_write, NULL, NULL };

	memset(of, 0, sizeof(*of));
	of->path = "standard output";
	of->dirfd = -1;
	of->fd = STDOUT_FILENO;
	of->is_stdout = 1;
	of->f = fopencookie(of, "w", io);
	if (!of->f || setvbuf(of->f, NULL, isatty(of->fd) ? _IOLBF : _IOFBF, 1 << 16) != 0) {
		outfile_abort(of);
		return trm_err_set(err, -ENOMEM, "%s: %s", of->path, strerror(ENOMEM));
	}
	return 0;
}

static void release(struct outfile *of)
{
	if (of->f)
		fclose(of->f); /* the cookie has no close: fd is ours */
	of->f = NULL;
	if (of->fd >= 0 && !of->is_stdout)
		close(of->fd);
	of->fd = -1;
	if (of->dirfd >= 0)
		close(of->dirfd);
	of->dirfd = -1;
}

void outfile_abort(struct outfile *of)
{
	if (of->dirfd >= 0 && of->tmp[0])
		unlinkat(of->dirfd, of->tmp, 0);
	of->tmp[0] = '\0';
	release(of);
}

int outfile_error(const struct outfile *of, int rc)
{
	return of->werr ? -of->werr : rc;
}

int outfile_reader_gone(const struct outfile *of)
{
	return of->is_stdout && of->werr == EPIPE;
}

int outfile_commit(struct outfile *of, struct trm_err *err)
{
	struct stat sb;
	int rc = 0;

	if (fflush(of->f) != 0 || of->werr)
		rc = -(of->werr ? of->werr : errno ? errno : EIO);
	else if (!of->is_stdout && fsync(of->fd) < 0)
		rc = -errno;
	if (of->is_stdout) {
		if (outfile_reader_gone(of))
			rc = 0; /* `| head`: the report ends there, quietly */
		else if (rc < 0)
			trm_err_set(err, rc, "%s: %s", of->path, strerror(-rc));
		goto out;
	}
	if (rc == 0) {
		fclose(of->f);
		of->f = NULL;
		if (close(of->fd) < 0)
			rc = -errno;
		of->fd = -1;
	}
	if (rc < 0) {
		trm_err_set(err, rc, "%s: %s", of->path, strerror(-rc));
		goto out;
	}
	/* again: something may have been put there meanwhile */
	if (fstatat(of->dirfd, of->base, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !S_ISREG(sb.st_mode)) {
		rc = trm_err_set(err, -EEXIST, "%s: %s, not a regular file; not replaced",
				 of->path, kind(sb.st_mode));
		goto out;
	}
	if (renameat(of->dirfd, of->tmp, of->dirfd, of->base) < 0) {
		rc = trm_err_set(err, -errno, "%s: %s", of->path, strerror(errno));
		goto out;
	}
	of->tmp[0] = '\0';
out:
	outfile_abort(of);
	return rc;
}

int outfile_start(struct outfile *of, const char *path, mode_t mode)
{
	struct trm_err err = { 0 };
	int rc;

	rc = path ? outfile_open(of, path, mode, &err) : outfile_open_stdout(of, &err);
	if (rc < 0) {
		cli_error(&err);
		return EXIT_WRITE;
	}
	return 0;
}

int outfile_finish(struct outfile *of, int rc, const struct trm_err *err)
{
	struct trm_err cerr = { 0 };

	if (rc < 0) {
		if (outfile_reader_gone(of)) {
			/* `| head`: the report ends there, quietly; the
			 * command's status (a --fail-above check) is still
			 * decided */
			outfile_abort(of);
			return 0;
		}
		rc = outfile_error(of, rc);
		if (of->werr || !err || !err->msg[0])
			cli_errorf("%s: %s", of->path, strerror(-rc));
		else
			cli_errorf("%s: %s", of->path, err->msg);
		outfile_abort(of);
		return EXIT_WRITE;
	}
	if (outfile_commit(of, &cerr) < 0) {
		cli_error(&cerr);
		return EXIT_WRITE;
	}
	return 0;
}
