/* test_pep768.c - PEP 768 remote exec against real interpreters.
 *
 *   test_pep768 py314 PYTHON3.14      request, cancel, disabled
 *   test_pep768 free-threaded PYTHON  the probe refuses a free-threaded build
 *   test_pep768 older PYTHON...       the probe refuses 3.8-3.13
 *
 * meson passes the interpreters of tests/find_pythons.py, and defines a
 * skip in place of a group whose interpreter is absent. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "trmtop/elf.h"
#include "trmtop/err.h"
#include "trmtop/target.h"

#include "pep768.h"

#define MAX_CHILD 2

struct fx {
	pid_t pid[MAX_CHILD];
	struct elf_proc *ep[MAX_CHILD];
	char dir[64];
};

/* Worker and main thread both loop in Python. */
static const char code_loop[] =
	"import sys, threading\n"
	"def work():\n"
	"    n = 0\n"
	"    while True:\n"
	"        n += 1\n"
	"threading.Thread(target=work, daemon=True).start()\n"
	"sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
	"n = 0\n"
	"while True:\n"
	"    n += 1\n";

/* The main thread joins a worker that spins until the file argv[1]
 * exists, then loops in Python. */
static const char code_join[] =
	"import os, sys, threading\n"
	"stop = sys.argv[1]\n"
	"def work():\n"
	"    while not os.path.exists(stop):\n"
	"        pass\n"
	"t = threading.Thread(target=work)\n"
	"t.start()\n"
	"sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
	"t.join()\n"
	"n = 0\n"
	"while True:\n"
	"    n += 1\n";

/* Parked for ever, for the probes. */
static const char code_idle[] =
	"import sys, time\n"
	"sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
	"while True:\n"
	"    time.sleep(60)\n";

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void short_pause(void)
{
	struct timespec ts = {0, 2 * 1000 * 1000};

	nanosleep(&ts, NULL);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/trm-pep768-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int rm_entry(const char *dir, const char *name)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return unlink(p);
}

static int teardown(void **state)
{
	static const char *const files[] = {"a.py", "b.py", "m1", "m1.tmp",
					    "m2", "m2.tmp", "stop"};
	struct fx *f = *state;
	size_t i;
	int st;

	for (i = 0; i < MAX_CHILD; i++) {
		elf_proc_close(f->ep[i]);
		if (f->pid[i] > 0) {
			kill(f->pid[i], SIGKILL);
			waitpid(f->pid[i], &st, 0);
		}
	}
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		rm_entry(f->dir, files[i]);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Start python with "-S [xopt] -c code [arg]", env var set if envset, and
 * wait for its "ready" line (10 s deadline).  Returns the pid. */
static pid_t spawn(struct fx *f, int slot, const char *python,
		   const char *xopt, const char *code, const char *arg,
		   const char *envset)
{
	const char *argv[8];
	char line[64];
	size_t n = 0, k = 0;
	int64_t deadline;
	int from[2];
	pid_t pid;

	assert_int_equal(pipe2(from, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(from[1], 1);
		unsetenv("PYTHON_DISABLE_REMOTE_DEBUG");
		if (envset)
			setenv(envset, "1", 1);
		argv[k++] = python;
		argv[k++] = "-S";
		if (xopt) {
			argv[k++] = "-X";
			argv[k++] = xopt;
		}
		argv[k++] = "-c";
		argv[k++] = code;
		if (arg)
			argv[k++] = arg;
		argv[k] = NULL;
		execv(python, (char *const *)argv);
		_exit(127);
	}
	f->pid[slot] = pid;
	close(from[1]);
	deadline = now_ms() + 10000;
	while (n + 1 < sizeof(line)) {
		struct pollfd p = {from[0], POLLIN, 0};
		int64_t left = deadline - now_ms();
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		r = read(from[0], line + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	close(from[0]);
	if (strcmp(line, "ready") != 0)
		fail_msg("%s did not get ready (got '%s')", python, line);
	return pid;
}

static struct elf_proc *open_py(struct fx *f, int slot, struct elf_pyinfo *py)
{
	struct trm_err err = {0};
	int rc;

	f->ep[slot] = elf_proc_open(f->pid[slot], &err);
	if (!f->ep[slot])
		fail_msg("elf_proc_open: %s", err.msg);
	rc = elf_find_python(f->ep[slot], f->pid[slot], py, &err);
	if (rc != 0)
		fail_msg("elf_find_python: %d %s", rc, err.msg);
	return f->ep[slot];
}

/* The other thread of a two-thread process. */
static pid_t other_thread(pid_t pid)
{
	struct trm_err err = {0};
	pid_t *tids = NULL, other = 0;
	size_t n = 0, i;

	assert_int_equal(target_list_threads(pid, &tids, &n, &err), 0);
	assert_int_equal(n, 2);
	for (i = 0; i < n; i++)
		if (tids[i] != pid)
			other = tids[i];
	free(tids);
	assert_true(other > 0);
	return other;
}

/* Write a script that writes its thread's native id into dir/marker
 * (through a rename, so a marker that exists is complete). */
static void write_script(const struct fx *f, const char *name,
			 const char *marker, char *path, size_t len)
{
	char text[512];
	FILE *fp;

	snprintf(path, len, "%s/%s", f->dir, name);
	snprintf(text, sizeof(text),
		 "import os, threading\n"
		 "p = '%s/%s'\n"
		 "with open(p + '.tmp', 'w') as f:\n"
		 "    f.write(str(threading.get_native_id()))\n"
		 "os.rename(p + '.tmp', p)\n",
		 f->dir, marker);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

/* Wait up to ms for dir/marker; its content (a tid) or -1. */
static long wait_marker(const struct fx *f, const char *marker, int ms)
{
	char p[256], buf[32];
	int64_t deadline = now_ms() + ms;
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", f->dir, marker);
	for (;;) {
		fp = fopen(p, "r");
		if (fp)
			break;
		if (now_ms() >= deadline)
			return -1;
		short_pause();
	}
	memset(buf, 0, sizeof(buf));
	if (!fgets(buf, sizeof(buf), fp))
		buf[0] = '\0';
	fclose(fp);
	return strtol(buf, NULL, 10);
}

static int has_tid(const pid_t *tids, size_t n, pid_t tid)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (tids[i] == tid)
			return 1;
	return 0;
}

/* The interpreters of this run, from the command line. */
static const char *py314;
static char **older;
static int n_older;

/* Probe, list, request on the worker and on the main thread, errors. */
static void test_request_worker(void **state)
{
	struct fx *f = *state;
	struct elf_pyinfo py;
	struct trm_err err = {0};
	struct elf_proc *ep;
	char script[256], longpath[600];
	pid_t pid, worker, tids[16];
	size_t n = 0;
	int64_t t0;
	long who;
	int rc;

	pid = spawn(f, 0, py314, NULL, code_loop, NULL, NULL);
	ep = open_py(f, 0, &py);
	worker = other_thread(pid);

	rc = pep768_probe(pid, ep, &py, &err);
	if (rc != 0)
		fail_msg("pep768_probe: %d %s", rc, err.msg);

	rc = pep768_list_threads(pid, ep, &py, tids, 16, &n, &err);
	if (rc != 0)
		fail_msg("pep768_list_threads: %d %s", rc, err.msg);
	assert_int_equal(n, 2);
	assert_true(has_tid(tids, n, pid));
	assert_true(has_tid(tids, n, worker));
	/* Too small a buffer: the first one is kept. */
	trm_err_clear(&err);
	assert_int_equal(pep768_list_threads(pid, ep, &py, tids, 1, &n, &err),
			 -ENOSPC);
	assert_int_equal(n, 1);

	/* Errors before anything is written. */
	write_script(f, "a.py", "m1", script, sizeof(script));
	trm_err_clear(&err);
	assert_int_equal(pep768_request(pid, ep, &py, 0x7ffffff0, script, &err),
			 -ESRCH);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	trm_err_clear(&err);
	assert_int_equal(pep768_request(pid, ep, &py, worker, longpath, &err),
			 -ENAMETOOLONG);
	trm_err_clear(&err);
	assert_int_equal(pep768_cancel(pid, ep, &py, worker, &err), -EALREADY);

	/* The request runs on the worker, promptly. */
	trm_err_clear(&err);
	t0 = now_ms();
	rc = pep768_request(pid, ep, &py, worker, script, &err);
	if (rc != 0)
		fail_msg("pep768_request: %d %s", rc, err.msg);
	who = wait_marker(f, "m1", 5000);
	print_message("# worker %d: script ran on %ld after %lld ms\n",
		      (int)worker, who, (long long)(now_ms() - t0));
	assert_int_equal(who, worker);
	/* Taken: nothing left to cancel. */
	trm_err_clear(&err);
	assert_int_equal(pep768_cancel(pid, ep, &py, worker, &err), -EALREADY);

	/* And on the main thread, also looping in Python. */
	write_script(f, "b.py", "m2", script, sizeof(script));
	trm_err_clear(&err);
	t0 = now_ms();
	rc = pep768_request(pid, ep, &py, pid, script, &err);
	if (rc != 0)
		fail_msg("pep768_request main: %d %s", rc, err.msg);
	who = wait_marker(f, "m2", 5000);
	print_message("# main %d: script ran on %ld after %lld ms\n", (int)pid,
		      who, (long long)(now_ms() - t0));
	assert_int_equal(who, pid);
	assert_int_equal(target_alive(pid), 1);
}

/* Poll until the main thread is parked in an untimed futex wait: join(),
 * not a (timed) wait for the GIL. */
static void wait_joined(pid_t pid)
{
	struct target_syscall sc;
	struct trm_err err = {0};
	char name[32];
	int64_t deadline = now_ms() + 10000;
	int hits = 0;

	while (hits < 3) {
		if (now_ms() > deadline)
			fail_msg("main thread of %d never blocked in join()",
				 (int)pid);
		short_pause();
		if (target_read_syscall(pid, pid, &sc, &err) != 0 ||
		    sc.running || sc.nr < 0 ||
		    strcmp(target_syscall_name(sc.nr, name, sizeof(name)),
			   "futex") != 0 ||
		    sc.args[3] != 0) {
			hits = 0;
			continue;
		}
		hits++;
	}
}

static void make_stop(const struct fx *f)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), "%s/stop", f->dir);
	fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
}

/* A 3.14 main thread blocked in join() (until make_stop), with a request
 * to run a script that leaves marker m1 already armed on it. */
static pid_t joined_with_request(struct fx *f, struct elf_pyinfo *py,
				 struct elf_proc **ep, char *script, size_t len)
{
	struct trm_err err = {0};
	char stop[256];
	pid_t pid;
	int rc;

	snprintf(stop, sizeof(stop), "%s/stop", f->dir);
	pid = spawn(f, 0, py314, NULL, code_join, stop, NULL);
	*ep = open_py(f, 0, py);
	wait_joined(pid);
	write_script(f, "a.py", "m1", script, len);
	rc = pep768_request(pid, *ep, py, pid, script, &err);
	if (rc != 0)
		fail_msg("pep768_request: %d %s", rc, err.msg);
	return pid;
}

/* A main thread blocked in join() does not run the request; a withdrawn
 * request never runs; once main runs Python again, a new request does. */
static void test_join_cancel(void **state)
{
	struct fx *f = *state;
	struct elf_pyinfo py;
	struct trm_err err = {0};
	struct elf_proc *ep;
	char script[256];
	pid_t pid = joined_with_request(f, &py, &ep, script, sizeof(script));
	int rc;

	/* A second request on the same thread is refused while pending. */
	trm_err_clear(&err);
	assert_int_equal(pep768_request(pid, ep, &py, pid, script, &err),
			 -TRM_EBUSY);
	assert_int_equal(wait_marker(f, "m1", 1000), -1);
	trm_err_clear(&err);
	assert_int_equal(pep768_cancel(pid, ep, &py, pid, &err), 0);

	make_stop(f); /* join() returns, main loops in Python */
	write_script(f, "b.py", "m2", script, sizeof(script));
	trm_err_clear(&err);
	rc = pep768_request(pid, ep, &py, pid, script, &err);
	if (rc != 0)
		fail_msg("pep768_request after join: %d %s", rc, err.msg);
	assert_int_equal(wait_marker(f, "m2", 5000), pid);
	assert_int_equal(wait_marker(f, "m1", 0), -1);
}

/* Not withdrawn, the request stays armed and runs when join() returns. */
static void test_join_runs_later(void **state)
{
	struct fx *f = *state;
	struct elf_pyinfo py;
	struct elf_proc *ep;
	char script[256];
	pid_t pid = joined_with_request(f, &py, &ep, script, sizeof(script));

	assert_int_equal(wait_marker(f, "m1", 500), -1);
	make_stop(f);
	assert_int_equal(wait_marker(f, "m1", 5000), pid);
}

/* PYTHON_DISABLE_REMOTE_DEBUG and -X disable-remote-debug: -EPERM. */
static void test_disabled(void **state)
{
	struct fx *f = *state;
	struct elf_pyinfo py;
	struct trm_err err = {0};
	struct elf_proc *ep;
	pid_t pid;
	int rc;

	pid = spawn(f, 0, py314, NULL, code_idle, NULL,
		    "PYTHON_DISABLE_REMOTE_DEBUG");
	ep = open_py(f, 0, &py);
	rc = pep768_probe(pid, ep, &py, &err);
	print_message("# env: %d %s\n", rc, err.msg);
	assert_int_equal(rc, -EPERM);
	assert_non_null(strstr(err.msg, "disabled"));
	trm_err_clear(&err);
	assert_int_equal(pep768_request(pid, ep, &py, pid, "/nonexistent",
					&err), -EPERM);

	pid = spawn(f, 1, py314, "disable-remote-debug", code_idle, NULL,
		    NULL);
	ep = open_py(f, 1, &py);
	trm_err_clear(&err);
	rc = pep768_probe(pid, ep, &py, &err);
	print_message("# -X: %d %s\n", rc, err.msg);
	assert_int_equal(rc, -EPERM);
}

/* Older interpreters: 3.13 has _Py_DebugOffsets but no PEP 768, 3.12 and
 * older have no usable .PyRuntime table. */
static void test_old_versions(void **state)
{
	struct fx *f = *state;
	int i;

	assert_true(n_older > 0);
	for (i = 0; i < n_older; i++) {
		struct elf_pyinfo py;
		struct trm_err err = {0};
		struct elf_proc *ep;
		pid_t pid, tids[4];
		size_t n;
		int rc, st;

		pid = spawn(f, 0, older[i], NULL, code_idle, NULL, NULL);
		ep = open_py(f, 0, &py);
		rc = pep768_probe(pid, ep, &py, &err);
		print_message("# %s: %d %s\n", py.version, rc, err.msg);
		assert_int_equal(rc, -TRM_EPYVER);
		trm_err_clear(&err);
		assert_int_equal(pep768_list_threads(pid, ep, &py, tids, 4, &n,
						     &err), -TRM_EPYVER);
		elf_proc_close(ep);
		f->ep[0] = NULL;
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		f->pid[0] = 0;
	}
}

/* A free-threaded 3.14: refused by the probe, before any write. */
static void test_free_threaded(void **state)
{
	struct fx *f = *state;
	struct elf_pyinfo py;
	struct trm_err err = {0};
	struct elf_proc *ep;
	pid_t pid;
	int rc;

	pid = spawn(f, 0, py314, NULL, code_idle, NULL, NULL);
	ep = open_py(f, 0, &py);
	assert_int_equal(py.free_threaded, 1);
	rc = pep768_probe(pid, ep, &py, &err);
	print_message("# %s: %d %s\n", py.version, rc, err.msg);
	assert_int_equal(rc, -TRM_EFREETHREAD);
	assert_non_null(strstr(err.msg, "free-threaded"));
	trm_err_clear(&err);
	assert_int_equal(pep768_request(pid, ep, &py, pid, "/nonexistent",
					&err), -TRM_EFREETHREAD);
}

static int usage(void)
{
	fprintf(stderr, "usage: test_pep768 py314 PYTHON | free-threaded "
		"PYTHON | older PYTHON...\n");
	return 2;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest t314[] = {
		cmocka_unit_test_setup_teardown(test_request_worker, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_join_cancel, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_join_runs_later, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_disabled, setup,
						teardown),
	};
	const struct CMUnitTest tft[] = {
		cmocka_unit_test_setup_teardown(test_free_threaded, setup,
						teardown),
	};
	const struct CMUnitTest told[] = {
		cmocka_unit_test_setup_teardown(test_old_versions, setup,
						teardown),
	};

	if (argc < 3)
		return usage();
	if (strcmp(argv[1], "py314") == 0 && argc == 3) {
		py314 = argv[2];
		return cmocka_run_group_tests(t314, NULL, NULL);
	}
	if (strcmp(argv[1], "free-threaded") == 0 && argc == 3) {
		py314 = argv[2];
		return cmocka_run_group_tests(tft, NULL, NULL);
	}
	if (strcmp(argv[1], "older") == 0) {
		older = argv + 2;
		n_older = argc - 2;
		return cmocka_run_group_tests(told, NULL, NULL);
	}
	return usage();
}
