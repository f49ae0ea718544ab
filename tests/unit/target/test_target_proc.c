/* test_target_proc.c - the target module against fixed /proc texts
 * (maps lines, status, syscall, credentials, cwd in root) and against
 * this process and its children: maps, status, threads, memory access
 * (process_vm_* and the /proc/PID/mem fallback), mapped files, the
 * executable's path and identity, fds, the whole-file reader, the
 * filesystem view. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "target_int.h"
#include "trmtop/util.h"

static char g_buf[64] = "trmtop target test buffer";

/* target_parse_map_line writes into its line: parse a copy */
static int parse_line(const char *text, struct target_map *m)
{
	static char line[512];

	snprintf(line, sizeof(line), "%s", text);
	return target_parse_map_line(line, m);
}

static void test_parse_map_line(void **state)
{
	struct target_map m;

	(void)state;
	assert_int_equal(parse_line("55d0c8a00000-55d0c8a21000 r-xp 00002000 fd:01 1315011"
				    "                    /usr/bin/cat\n",
				    &m),
			 0);
	assert_true(m.start == 0x55d0c8a00000ULL);
	assert_true(m.end == 0x55d0c8a21000ULL);
	assert_string_equal(m.perms, "r-xp");
	assert_true(m.offset == 0x2000);
	assert_int_equal(m.dev_major, 0xfd);
	assert_int_equal(m.dev_minor, 1);
	assert_true(m.inode == 1315011);
	assert_string_equal(m.path, "/usr/bin/cat");
	assert_int_equal(m.deleted, 0);

	assert_int_equal(parse_line("7ffd5e1f0000-7ffd5e211000 rw-p 00000000 00:00 0 "
				    "                         [stack]",
				    &m),
			 0);
	assert_string_equal(m.path, "[stack]");

	assert_int_equal(parse_line("7f0000000000-7f0000001000 rw-p 00000000 00:00 0\n",
				    &m),
			 0);
	assert_string_equal(m.path, "");
	assert_true(m.inode == 0);

	assert_int_equal(parse_line("7f0000000000-7f0000001000 r--s 00000000 00:05 42 "
				    "/tmp/a b (deleted)\n",
				    &m),
			 0);
	assert_string_equal(m.path, "/tmp/a b");
	assert_int_equal(m.deleted, 1);

	assert_int_equal(parse_line("garbage", &m), -EINVAL);
	assert_int_equal(parse_line("1000-2000 r-xp", &m), -EINVAL);
	assert_int_equal(parse_line("1000-2000 r-x", &m), -EINVAL);
	assert_int_equal(parse_line("", &m), -EINVAL);
	assert_string_equal(m.path, "");
}

/* a function whose code must be in an r-x mapping of the executable */
static void test_read_maps_self(void **state)
{
	struct target_maps maps = {0};
	struct trm_err err = {0};
	char exe[TARGET_PATH_MAX];
	raddr_t fn = (raddr_t)(uintptr_t)&test_read_maps_self;
	raddr_t data = (raddr_t)(uintptr_t)g_buf;
	int found_fn = 0, found_data = 0;
	size_t i;

	(void)state;
	assert_int_equal(target_read_exe(getpid(), exe, sizeof(exe), &err), 0);
	assert_int_equal(target_read_maps(getpid(), &maps, &err), 0);
	assert_true(maps.n > 5);
	for (i = 0; i < maps.n; i++) {
		const struct target_map *m = &maps.v[i];

		assert_true(m->start < m->end);
		if (fn >= m->start && fn < m->end) {
			assert_int_equal(m->perms[0], 'r');
			assert_int_equal(m->perms[2], 'x');
			assert_string_equal(m->path, exe);
			found_fn = 1;
		}
		if (data >= m->start && data < m->end) {
			assert_int_equal(m->perms[1], 'w');
			found_data = 1;
		}
	}
	assert_true(found_fn);
	assert_true(found_data);
	target_maps_fini(&maps);
	assert_null(maps.v);
	target_maps_fini(NULL);
}

static void test_read_maps_missing(void **state)
{
	struct target_maps maps;
	struct trm_err err = {0};
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(target_read_maps(pid, &maps, &err), -ENOENT);
	assert_int_equal(err.code, -ENOENT);
	assert_non_null(strstr(err.msg, "maps"));
	assert_int_equal(target_alive(pid), 0);
	assert_int_equal(target_alive(getpid()), 1);
}

static void test_parse_status(void **state)
{
	struct target_status s;
	const char *text = "Name:\tpython3\n"
			   "Umask:\t0022\n"
			   "State:\tS (sleeping)\n"
			   "Tgid:\t1234\n"
			   "Ngid:\t0\n"
			   "Pid:\t1234\n"
			   "PPid:\t1\n"
			   "TracerPid:\t99\n"
			   "Uid:\t1000\t1001\t1000\t1000\n"
			   "NSpid:\t1234\t7\n"
			   "VmRSS:\t   10240 kB\n"
			   "Threads:\t3\n";

	(void)state;
	assert_int_equal(target_parse_status(text, &s), 0);
	assert_string_equal(s.name, "python3");
	assert_int_equal(s.state, 'S');
	assert_int_equal(s.tgid, 1234);
	assert_int_equal(s.tracer, 99);
	assert_int_equal(s.uid_real, 1000);
	assert_int_equal(s.uid_eff, 1001);
	assert_int_equal(s.nspid, 7);
	assert_int_equal(s.vm_rss_kib, 10240);
	assert_int_equal(s.threads, 3);
	assert_int_equal(s.ppid, 1);
	assert_int_equal(s.uid_saved, 1000);
	assert_int_equal(s.gid_real, 0); /* no Gid line */
	assert_int_equal(s.kthread, 1);  /* no Kthread, no VmSize line */
	assert_int_equal(target_parse_status("Name:\tx\n", &s), -EINVAL);
}

static void test_parse_status_ids_kthread_caps(void **state)
{
	struct target_status s;

	(void)state;
	assert_int_equal(target_parse_status("Name:\tsetgid\nState:\tS\nTgid:\t5\n"
					     "Uid:\t65534\t65534\t65534\t65534\n"
					     "Gid:\t65534\t0\t0\t0\n"
					     "Kthread:\t0\n"
					     "CapEff:\t000001ffffffffff\n", &s), 0);
	assert_int_equal(s.uid_eff, 65534);
	assert_int_equal(s.gid_real, 65534);
	assert_int_equal(s.gid_eff, 0);
	assert_int_equal(s.gid_saved, 0);
	assert_int_equal(s.kthread, 0);
	assert_true(s.cap_eff == 0x1ffffffffffull);
	assert_int_equal(target_parse_status("Name:\tkthreadd\nState:\tS\nTgid:\t2\n"
					     "Kthread:\t1\nVmSize:\t1 kB\n", &s), 0);
	assert_int_equal(s.kthread, 1);
	assert_int_equal(target_parse_status("Name:\tpython3\nState:\tS\nTgid:\t9\n"
					     "VmSize:\t100 kB\n", &s), 0);
	assert_int_equal(s.kthread, 0);
}

static void test_fd_pidns_dumpable_self(void **state)
{
	struct target_status s;
	struct target_fd f;
	unsigned long ino;
	struct stat sb;
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(fstat(fds[0], &sb), 0);
	assert_int_equal(target_read_fd(getpid(), fds[0], &f), 0);
	assert_true(strncmp(f.link, "pipe:[", 6) == 0);
	assert_true(f.ino == (unsigned long)sb.st_ino);
	assert_true(S_ISFIFO(f.mode));
	close(fds[0]);
	close(fds[1]);
	assert_int_equal(target_read_fd(getpid(), fds[0], &f), -ENOENT);
	assert_int_equal(target_read_pidns(getpid(), &ino), 0);
	assert_true(ino != 0);
	assert_int_equal(target_read_status(getpid(), 0, &s, NULL), 0);
	assert_int_equal(s.kthread, 0);
	assert_int_equal(target_read_dumpable(getpid(), &s),
			 s.uid_eff == 0 ? -ENODATA : 1);
}

static void test_read_status_self(void **state)
{
	struct target_status s;
	struct trm_err err = {0};

	(void)state;
	assert_int_equal(target_read_status(getpid(), 0, &s, &err), 0);
	assert_int_equal(s.state, 'R');
	assert_int_equal(s.tgid, getpid());
	assert_int_equal(s.uid_real, getuid());
	assert_true(s.threads >= 1);
	assert_true(s.vm_rss_kib > 0);
	assert_true(s.nspid > 0);
	assert_int_equal(target_read_status(getpid(), getpid(), &s, &err), 0);
	assert_int_equal(s.tgid, getpid());
}

struct blocker {
	int fds[2];
	volatile pid_t tid;
};

static void *block_in_read(void *arg)
{
	struct blocker *b = arg;
	char c;

	b->tid = gettid();
	while (read(b->fds[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void test_threads_and_syscall(void **state)
{
	struct blocker b = {{-1, -1}, 0};
	struct target_syscall sc;
	struct trm_err err = {0};
	pthread_t th;
	pid_t *tids = NULL;
	size_t n = 0, i;
	int found = 0;
	uint64_t deadline;
	char nb[32];

	(void)state;
	assert_int_equal(pipe(b.fds), 0);
	assert_int_equal(pthread_create(&th, NULL, block_in_read, &b), 0);
	/* Poll /proc until the thread is parked in read(2), with a deadline. */
	deadline = util_now_ns() + 10ULL * 1000000000ULL;
	for (;;) {
		if (b.tid > 0 &&
		    target_read_syscall(getpid(), b.tid, &sc, &err) == 0 &&
		    !sc.running && sc.nr == 0)
			break;
		assert_true(util_now_ns() < deadline);
		sched_yield();
	}
	assert_int_equal((int)sc.args[0], b.fds[0]);
	assert_true(sc.sp != 0 && sc.pc != 0);
	assert_string_equal(target_syscall_name(sc.nr, nb, sizeof(nb)), "read");

	assert_int_equal(target_list_threads(getpid(), &tids, &n, &err), 0);
	assert_true(n >= 2);
	assert_int_equal(tids[0], getpid());
	for (i = 0; i < n; i++)
		if (tids[i] == b.tid)
			found = 1;
	assert_true(found);
	free(tids);

	/* this thread sees itself inside the read(2) of the file */
	assert_int_equal(target_read_syscall(getpid(), gettid(), &sc, &err), 0);
	assert_int_equal(sc.nr, 0);

	assert_int_equal(write(b.fds[1], "x", 1), 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	close(b.fds[0]);
	close(b.fds[1]);
}

static void test_parse_syscall(void **state)
{
	struct target_syscall sc;

	(void)state;
	assert_int_equal(target_parse_syscall("202 0x7f0000001000 0x80 0x2 0x0 "
					      "0x0 0xffffffff 0x7ffc00000010 "
					      "0x7f0000400123\n",
					      &sc),
			 0);
	assert_int_equal(sc.nr, 202);
	assert_int_equal(sc.running, 0);
	assert_true(sc.args[0] == 0x7f0000001000ULL);
	assert_true(sc.args[1] == 0x80);
	assert_true(sc.args[5] == 0xffffffffULL);
	assert_true(sc.sp == 0x7ffc00000010ULL);
	assert_true(sc.pc == 0x7f0000400123ULL);

	assert_int_equal(target_parse_syscall("-1 0x7ffc00000010 0x401000\n",
					      &sc),
			 0);
	assert_int_equal(sc.nr, -1);
	assert_true(sc.pc == 0x401000);
	assert_int_equal(target_parse_syscall("running\n", &sc), 0);
	assert_int_equal(sc.running, 1);
	assert_int_equal(target_parse_syscall("202 0x1\n", &sc), -EINVAL);
	assert_int_equal(target_parse_syscall("", &sc), -EINVAL);
}

static void test_syscall_names(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(target_syscall_name(0, buf, sizeof(buf)), "read");
	assert_string_equal(target_syscall_name(202, buf, sizeof(buf)), "futex");
	assert_string_equal(target_syscall_name(232, buf, sizeof(buf)),
			    "epoll_wait");
	assert_string_equal(target_syscall_name(281, buf, sizeof(buf)),
			    "epoll_pwait");
	assert_string_equal(target_syscall_name(288, buf, sizeof(buf)),
			    "accept4");
	assert_string_equal(target_syscall_name(230, buf, sizeof(buf)),
			    "clock_nanosleep");
	assert_string_equal(target_syscall_name(270, buf, sizeof(buf)),
			    "pselect6");
	assert_string_equal(target_syscall_name(219, buf, sizeof(buf)),
			    "restart_syscall");
	assert_string_equal(target_syscall_name(61, buf, sizeof(buf)), "wait4");
	assert_string_equal(target_syscall_name(9999, buf, sizeof(buf)),
			    "syscall 9999");
	assert_string_equal(target_syscall_name(-5, buf, sizeof(buf)),
			    "syscall -5");
}

static void test_mem_self(void **state)
{
	char out[sizeof(g_buf)];
	const char msg[] = "written by target_write_mem";
	pid_t me = getpid();

	(void)state;
	assert_int_equal(target_read_mem(me, (raddr_t)(uintptr_t)g_buf, out,
					 sizeof(out)),
			 0);
	assert_memory_equal(out, g_buf, sizeof(out));
	assert_int_equal(target_write_mem(me, (raddr_t)(uintptr_t)g_buf, msg,
					  sizeof(msg)),
			 0);
	assert_string_equal(g_buf, msg);
	assert_int_equal(target_read_mem(me, 0, out, 8), -EFAULT);
	assert_int_equal(target_read_mem(me, 0, out, 0), 0);
	assert_int_equal(target_read_mem(me, ~(raddr_t)0 - 2, out, 8), -EFAULT);
	assert_int_equal(target_write_mem(me, 8, msg, 4), -EFAULT);
}

static void test_mem_file(void **state)
{
	char out[sizeof(g_buf)];
	pid_t me = getpid();

	(void)state;
	snprintf(g_buf, sizeof(g_buf), "via /proc/PID/mem");
	assert_int_equal(target_mem_file_io(me, (raddr_t)(uintptr_t)g_buf, out,
					    NULL, sizeof(out)),
			 0);
	assert_string_equal(out, "via /proc/PID/mem");
	assert_int_equal(target_mem_file_io(me, (raddr_t)(uintptr_t)g_buf,
					    NULL, "pwritten", 9),
			 0);
	assert_string_equal(g_buf, "pwritten");
	assert_int_equal(target_mem_file_io(me, 0, out, NULL, 8), -EFAULT);
}

/* A child's memory, read through another process (same uid). */
static void test_mem_child(void **state)
{
	int p[2];
	pid_t pid;
	char c, out[sizeof(g_buf)];
	int st;

	(void)state;
	assert_int_equal(pipe(p), 0);
	snprintf(g_buf, sizeof(g_buf), "child copy");
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(strcmp(g_buf, "poked") == 0 ? 0 : 1);
	}
	close(p[0]);
	snprintf(g_buf, sizeof(g_buf), "parent copy");
	assert_int_equal(target_read_mem(pid, (raddr_t)(uintptr_t)g_buf, out,
					 sizeof(out)),
			 0);
	assert_string_equal(out, "child copy");
	assert_int_equal(target_write_mem(pid, (raddr_t)(uintptr_t)g_buf,
					  "poked", 6),
			 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	close(p[1]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static const struct target_map *find_map(const struct target_maps *maps,
					 raddr_t addr)
{
	size_t i;

	for (i = 0; i < maps->n; i++)
		if (addr >= maps->v[i].start && addr < maps->v[i].end)
			return &maps->v[i];
	return NULL;
}

static void test_open_mapped(void **state)
{
	struct target_maps maps = {0};
	struct trm_err err = {0};
	const struct target_map *m;
	struct target_map copy;
	struct stat st1, st2;
	char path[] = "/tmp/trmtop-test-XXXXXX";
	char content[4096], back[16];
	void *p;
	int fd, fd2;

	(void)state;
	/* the executable */
	assert_int_equal(target_read_maps(getpid(), &maps, &err), 0);
	m = find_map(&maps, (raddr_t)(uintptr_t)&test_open_mapped);
	assert_non_null(m);
	fd = target_open_mapped(getpid(), m, &err);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st1), 0);
	assert_int_equal(stat("/proc/self/exe", &st2), 0);
	assert_true(st1.st_ino == st2.st_ino);
	close(fd);

	/* the /proc/PID/root fallback: a range map_files does not know */
	copy = *m;
	copy.end = copy.start + 1;
	fd = target_open_mapped(getpid(), &copy, &err);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st1), 0);
	assert_true(st1.st_ino == st2.st_ino);
	close(fd);
	/* ... refused when the inode does not match */
	copy.inode = st2.st_ino + 1;
	trm_err_clear(&err);
	assert_int_equal(target_open_mapped(getpid(), &copy, &err), -ESTALE);
	target_maps_fini(&maps);

	/* a deleted file is still reachable */
	memset(content, 'z', sizeof(content));
	memcpy(content, "deleted-content", 15);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, sizeof(content)),
			 (ssize_t)sizeof(content));
	p = mmap(NULL, sizeof(content), PROT_READ, MAP_PRIVATE, fd, 0);
	assert_true(p != MAP_FAILED);
	close(fd);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(target_read_maps(getpid(), &maps, &err), 0);
	m = find_map(&maps, (raddr_t)(uintptr_t)p);
	assert_non_null(m);
	assert_int_equal(m->deleted, 1);
	assert_string_equal(m->path, path);
	fd2 = target_open_mapped(getpid(), m, &err);
	assert_true(fd2 >= 0);
	assert_int_equal(read(fd2, back, 15), 15);
	assert_memory_equal(back, "deleted-content", 15);
	close(fd2);
	target_maps_fini(&maps);
	munmap(p, sizeof(content));
}

static void test_rss_fds(void **state)
{
	struct trm_err err = {0};
	uint64_t rss = 0;
	int n1 = 0, n2 = 0, fd;

	(void)state;
	assert_int_equal(target_read_rss(getpid(), &rss, &err), 0);
	assert_true(rss > 100 * 1024);
	assert_int_equal(target_count_fds(getpid(), &n1, &err), 0);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(target_count_fds(getpid(), &n2, &err), 0);
	assert_int_equal(n2, n1 + 1);
	close(fd);
}

static void test_read_exe(void **state)
{
	char buf[TARGET_PATH_MAX], small[4];
	struct trm_err err = {0};

	(void)state;
	assert_int_equal(target_read_exe(getpid(), buf, sizeof(buf), &err), 0);
	assert_non_null(strstr(buf, "test_target"));
	assert_int_equal(target_read_exe(getpid(), small, sizeof(small), &err),
			 -ENAMETOOLONG);
}

static void test_stat_exe(void **state)
{
	struct target_file_id id;
	struct target_maps maps;
	char exe[TARGET_PATH_MAX];
	struct stat st;
	size_t i, seen = 0;

	(void)state;
	assert_int_equal(target_stat_exe(getpid(), &id), 0);
	assert_int_equal(stat("/proc/self/exe", &st), 0);
	assert_int_equal(id.inode, (unsigned long)st.st_ino);
	assert_int_equal(id.dev_major, major(st.st_dev));
	assert_int_equal(id.dev_minor, minor(st.st_dev));
	/* the identity maps shows for the executable's mappings */
	assert_int_equal(target_read_exe(getpid(), exe, sizeof(exe), NULL), 0);
	assert_int_equal(target_read_maps(getpid(), &maps, NULL), 0);
	for (i = 0; i < maps.n; i++) {
		if (strcmp(maps.v[i].path, exe) != 0)
			continue;
		assert_int_equal(maps.v[i].inode, id.inode);
		seen++;
	}
	assert_true(seen > 0);
	target_maps_fini(&maps);
	assert_int_equal(target_stat_exe(999999999, &id), -ENOENT);
}

/* A file of n bytes (byte i is 'a' + i % 26) at a temporary path. */
static void make_file(char *path, size_t n)
{
	int fd;

	strcpy(path, "/tmp/trmtop-slurp-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	for (size_t i = 0; i < n; i++) {
		char c = (char)('a' + i % 26);

		assert_int_equal(write(fd, &c, 1), 1);
	}
	close(fd);
}

static void test_slurp(void **state)
{
	static const size_t sizes[] = { 0, 1, 4094, 4095, 4096, 32767, 32768,
					40000, 100000 };
	char path[64], *text;
	size_t len;

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		make_file(path, sizes[k]);
		assert_int_equal(target_slurp(path, SIZE_MAX / 2, &text, &len), 0);
		assert_int_equal(len, sizes[k]);
		assert_int_equal(strlen(text), sizes[k]);
		for (size_t i = 0; i < len; i++)
			if (text[i] != 'a' + (char)(i % 26))
				fail_msg("byte %zu of %zu", i, len);
		free(text);
		/* exactly max bytes fit; one more does not */
		assert_int_equal(target_slurp(path, sizes[k], &text, &len), 0);
		assert_int_equal(len, sizes[k]);
		free(text);
		if (sizes[k]) {
			text = (char *)path; /* must come back NULL */
			assert_int_equal(target_slurp(path, sizes[k] - 1, &text,
						      &len), -EFBIG);
			assert_null(text);
		}
		unlink(path);
	}
	/* a /proc file, whose size stat does not tell */
	assert_int_equal(target_slurp("/proc/self/maps", SIZE_MAX / 2, &text, &len), 0);
	assert_true(len > 0 && strlen(text) == len);
	free(text);
	assert_int_equal(target_slurp("/nonexistent/x", 100, &text, &len), -ENOENT);
}

static void test_parse_creds(void **state)
{
	struct target_creds c;
	const char *text = "Name:\tpython3\n"
			   "Uid:\t1000\t1001\t1002\t1003\n"
			   "Gid:\t2000\t2001\t2002\t2003\n"
			   "FDSize:\t64\n"
			   "Groups:\t4 24 27 \n"
			   "CapEff:\t000001ffffffffff\n";

	(void)state;
	assert_int_equal(target_parse_creds(text, &c), 0);
	assert_int_equal(c.fsuid, 1003);
	assert_int_equal(c.fsgid, 2003);
	assert_int_equal(c.ngroups, 3);
	assert_int_equal(c.groups[0], 4);
	assert_int_equal(c.groups[2], 27);
	assert_true(c.cap_eff == 0x1ffffffffffULL);
	target_creds_fini(&c);
	/* no supplementary groups */
	assert_int_equal(target_parse_creds("Uid:\t1 1 1 1\nGid:\t2 2 2 2\n"
					    "Groups:\t\nCapEff:\t0000000000000000\n", &c), 0);
	assert_int_equal(c.ngroups, 0);
	assert_int_equal(c.fsuid, 1);
	target_creds_fini(&c);
	/* anything missing or malformed is an error, never a guess */
	assert_int_equal(target_parse_creds("Uid:\t1 1 1\nGid:\t2 2 2 2\n"
					    "Groups:\t\nCapEff:\t0\n", &c), -EINVAL);
	assert_int_equal(target_parse_creds("Uid:\t1 1 1 1\nGid:\t2 2 2 2\n"
					    "CapEff:\t0\n", &c), -EINVAL);
	assert_int_equal(target_parse_creds("Uid:\t1 1 1 1\nGid:\t2 2 2 2\n"
					    "Groups:\t3 x\nCapEff:\t0\n", &c), -EINVAL);
	assert_int_equal(target_parse_creds("Uid:\t1 1 1 1\nGid:\t2 2 2 2\n"
					    "Groups:\t3\n", &c), -EINVAL);
	assert_int_equal(target_parse_creds("Uid:\t1 1 1 99999999999\nGid:\t2 2 2 2\n"
					    "Groups:\t3\nCapEff:\t0\n", &c), -EINVAL);
	assert_null(c.groups);
}

static void test_read_creds_self(void **state)
{
	struct target_creds a, b;
	struct trm_err err = {0};
	gid_t g[256];
	int n = getgroups(256, g);

	(void)state;
	assert_int_equal(target_read_creds(getpid(), &a, &err), 0);
	assert_int_equal(a.fsuid, geteuid());
	assert_int_equal(a.fsgid, getegid());
	assert_int_equal((int)a.ngroups, n);
	assert_int_equal(target_read_creds(getpid(), &b, &err), 0);
	assert_true(target_creds_equal(&a, &b));
	b.fsuid++;
	assert_false(target_creds_equal(&a, &b));
	target_creds_fini(&a);
	target_creds_fini(&b);
	target_creds_fini(NULL);
}

static void test_cwd_in_root(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(target_cwd_in_root("/", "/srv/app", out, sizeof(out)), 0);
	assert_string_equal(out, "/srv/app");
	assert_int_equal(target_cwd_in_root("/c/root", "/c/root/srv", out, sizeof(out)), 0);
	assert_string_equal(out, "/srv");
	assert_int_equal(target_cwd_in_root("/c/root", "/c/root", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(target_cwd_in_root("/c/root", "/c/rootx/srv", out, sizeof(out)), -ENOENT);
	assert_int_equal(target_cwd_in_root("/c/root", "/elsewhere", out, sizeof(out)), -ENOENT);
	assert_int_equal(target_cwd_in_root("/", "/srv/gone (deleted)", out, sizeof(out)), -ENOENT);
	assert_int_equal(target_cwd_in_root("/", "(unreachable)/x", out, sizeof(out)), -ENOENT);
	assert_int_equal(target_cwd_in_root("/", "/a/very/long/path/that/does/not/fit/in/"
					    "sixty/four/bytes/at/all/not/even/close", out, sizeof(out)),
			 -ENAMETOOLONG);
}

static void test_open_fs_self(void **state)
{
	struct target_fs fs;
	struct trm_err err = {0};
	char cwd[TARGET_PATH_MAX];
	struct stat a, b;

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(target_open_fs(getpid(), &fs, &err), 0);
	assert_true(fs.root_fd >= 0);
	assert_string_equal(fs.cwd, cwd);
	assert_int_equal(fstat(fs.root_fd, &a), 0);
	assert_int_equal(stat("/", &b), 0);
	assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	target_close_fs(&fs);
	assert_int_equal(fs.root_fd, -1);
	target_close_fs(NULL);
	assert_int_equal(target_open_fs(0x3ffffff0, &fs, &err), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_map_line),
		cmocka_unit_test(test_read_maps_self),
		cmocka_unit_test(test_read_maps_missing),
		cmocka_unit_test(test_parse_status),
		cmocka_unit_test(test_parse_status_ids_kthread_caps),
		cmocka_unit_test(test_fd_pidns_dumpable_self),
		cmocka_unit_test(test_read_status_self),
		cmocka_unit_test(test_threads_and_syscall),
		cmocka_unit_test(test_parse_syscall),
		cmocka_unit_test(test_syscall_names),
		cmocka_unit_test(test_mem_self),
		cmocka_unit_test(test_mem_file),
		cmocka_unit_test(test_mem_child),
		cmocka_unit_test(test_open_mapped),
		cmocka_unit_test(test_rss_fds),
		cmocka_unit_test(test_read_exe),
		cmocka_unit_test(test_stat_exe),
		cmocka_unit_test(test_slurp),
		cmocka_unit_test(test_parse_creds),
		cmocka_unit_test(test_read_creds_self),
		cmocka_unit_test(test_cwd_in_root),
		cmocka_unit_test(test_open_fs_self),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
