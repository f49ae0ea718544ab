/* load.c - a snapshot file of either format from its path (snapshot.h,
 * "files"): reading the whole of a regular file, and telling a .trm file
 * from a tracemalloc dump by its first bytes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trmtop/snapshot.h"

#define MAX_FILE_SIZE (4ull << 30)

/* The whole of an input file, read to its end (/proc and other
 * pseudo-files report a size of 0).  Opened O_NONBLOCK and checked with
 * fstat before any read: a FIFO or a device is refused instead of
 * blocking. */
static int read_all(const char *path, uint8_t **buf, size_t *len, struct trm_err *err)
{
	struct stat sb;
	size_t got = 0, cap;
	uint8_t *b = NULL;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return trm_err_set(err, -errno, "%s", strerror(errno));
	if (fstat(fd, &sb) < 0) {
		rc = trm_err_set(err, -errno, "%s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = trm_err_set(err, -TRM_EFORMAT, "not a regular file");
		goto out;
	}
	cap = (uint64_t)sb.st_size < MAX_FILE_SIZE ? (size_t)sb.st_size + 4096 : 4096;
	for (;;) {
		ssize_t r;

		if (!b || got == cap) {
			uint8_t *nb;

			if (b && (uint64_t)cap >= MAX_FILE_SIZE) {
				rc = trm_err_set(err, -TRM_EFORMAT, "too large");
				goto out;
			}
			if (b)
				cap *= 2;
			nb = realloc(b, cap);
			if (!nb) {
				rc = trm_err_set(err, -ENOMEM, "out of memory");
				goto out;
			}
			b = nb;
		}
		r = read(fd, b + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = trm_err_set(err, -errno, "%s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*buf = b;
	*len = got;
	b = NULL;
out:
	free(b);
	close(fd);
	return rc;
}

/* The .trm magic (docs/FORMATS.md) and the start of a pickle (a
 * tracemalloc dump): what trmtop can read. */
static const uint8_t trm_magic[8] = "TRMSNAP";

static int is_pickle(const uint8_t *buf, size_t len)
{
	return len >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5;
}

/* A .trm file, or the start of one (shorter than the magic, empty even:
 * the reader says where it is truncated). */
static int is_trm(const uint8_t *buf, size_t len)
{
	return memcmp(buf, trm_magic, len < 8 ? len : 8) == 0;
}

struct snapshot *snapshot_load(const char *path, struct trm_err *err)
{
	struct snapshot *s = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	rc = read_all(path, &buf, &len, err);
	if (rc < 0) {
		errno = rc == -TRM_EFORMAT ? TRM_EFORMAT : -rc;
		return NULL;
	}
	errno = 0;
	if (is_pickle(buf, len)) {
		s = snapshot_read_tracemalloc_mem(buf, len, err);
	} else if (is_trm(buf, len)) {
		s = snapshot_read_trm_mem(buf, len, err);
	} else {
		trm_err_set(err, -TRM_EFORMAT, "not a trmtop snapshot: magic mismatch "
			    "(neither a .trm file nor a tracemalloc dump at byte 0)");
		errno = TRM_EFORMAT;
	}
	rc = errno ? errno : TRM_EFORMAT;
	free(buf);
	if (!s && err && !err->msg[0])
		trm_err_set(err, -rc, "unreadable snapshot");
	errno = rc;
	return s;
}
