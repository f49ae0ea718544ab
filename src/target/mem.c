/* mem.c - a target's memory and the files it maps.  target_read_mem and
 * target_write_mem use process_vm_readv/writev, and /proc/PID/mem where
 * those are refused (EPERM, ENOSYS, EACCES); target_open_mapped opens a
 * mapped file as the target sees it: /proc/PID/map_files first, then the
 * path inside /proc/PID/root with the mapping's inode checked (a deleted
 * file only through map_files). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "target_int.h"

/* Errors of process_vm_* after which /proc/PID/mem may still work. */
static int vm_refused(int e)
{
	return e == EPERM || e == ENOSYS || e == EACCES;
}

int target_mem_file_io(pid_t pid, raddr_t addr, void *rbuf, const void *wbuf,
		       size_t len)
{
	char path[64];
	size_t done = 0;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, (wbuf ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (done < len) {
		ssize_t r;
		off_t off = (off_t)(addr + done);

		if (wbuf)
			r = pwrite(fd, (const char *)wbuf + done, len - done,
				   off);
		else
			r = pread(fd, (char *)rbuf + done, len - done, off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* EIO: the range is not mapped. */
			rc = errno == EIO ? -EFAULT : -errno;
			goto out;
		}
		if (r == 0) {
			rc = -EFAULT;
			goto out;
		}
		done += (size_t)r;
	}
out:
	close(fd);
	return rc;
}

/* process_vm_readv into rbuf, or process_vm_writev from wbuf (the other
 * NULL); through /proc/PID/mem where those are refused. */
static int mem_io(pid_t pid, raddr_t addr, void *rbuf, const void *wbuf,
		  size_t len)
{
	struct iovec local, remote;
	ssize_t r;

	if (len == 0)
		return 0;
	if (addr + len < addr)
		return -EFAULT;
	local.iov_base = wbuf ? (void *)(uintptr_t)wbuf : rbuf;
	local.iov_len = len;
	remote.iov_base = (void *)(uintptr_t)addr;
	remote.iov_len = len;
	if (wbuf)
		r = process_vm_writev(pid, &local, 1, &remote, 1, 0);
	else
		r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (r < 0) {
		if (vm_refused(errno))
			return target_mem_file_io(pid, addr, rbuf, wbuf, len);
		return -errno;
	}
	return (size_t)r == len ? 0 : -EFAULT;
}

int target_read_mem(pid_t pid, raddr_t addr, void *buf, size_t len)
{
	return mem_io(pid, addr, buf, NULL, len);
}

int target_write_mem(pid_t pid, raddr_t addr, const void *buf, size_t len)
{
	return mem_io(pid, addr, NULL, buf, len);
}

/* The opened file must be the mapped one: same inode (and device when the
 * filesystem reports a matching one). */
static int same_file(int fd, const struct target_map *map)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return 0;
	if (map->inode == 0)
		return 1;
	return (unsigned long)st.st_ino == map->inode;
}

int target_open_mapped(pid_t pid, const struct target_map *map,
		       struct trm_err *err)
{
	char path[TARGET_PATH_MAX + 64];
	int fd, e1 = 0, rc;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid,
		 (unsigned long long)map->start, (unsigned long long)map->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		rc = fd;
		goto out;
	}
	e1 = errno;
	/* A deleted file is only reachable through map_files. */
	if (map->deleted || map->path[0] != '/') {
		rc = trm_err_set(err, -e1, "open %s (%s): %s", path,
				 map->path, strerror(e1));
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid, map->path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = trm_err_set(err, -errno, "open %s: %s (map_files: %s)",
				 path, strerror(errno), strerror(e1));
		goto out;
	}
	if (!same_file(fd, map)) {
		close(fd);
		rc = trm_err_set(err, -ESTALE,
				 "open %s: not the mapped file (replaced?)",
				 path);
		goto out;
	}
	rc = fd;
out:
	return rc;
}
