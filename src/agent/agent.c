/* agent.c - the _trmtop_agent extension module: init and start().
 *
 * Built once against the limited API of 3.8 and loaded into the target by
 * the bootstrap script with _imp.create_dynamic.  start() runs with the
 * GIL held on the thread that runs the bootstrap: the main thread (pending
 * call), a hijacked thread, or the thread a PEP 768 request was written
 * to (docs/DESIGN.md §3).  It must never raise, print or close an fd it
 * has not verified to be one of trmtop's pipes or memfds. */
#include "config.h"

#include <errno.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent_int.h"

pthread_mutex_t agent_lock = PTHREAD_MUTEX_INITIALIZER;
struct agent_sess *agent_cur;
bool agent_trm_started;
atomic_bool agent_exiting;

static bool hooks_installed; /* atfork + exit hooks; GIL held */

/* ---- Python helpers (GIL held) ---- */

static PyObject *tm_module;               /* _tracemalloc, once imported */
static PyObject *tm_names[AGENT_TM_NFN];  /* interned, never released */

int agent_names_init(void)
{
	static const char *const names[AGENT_TM_NFN] = {
		[AGENT_TM_IS_TRACING] = "is_tracing",
		[AGENT_TM_GET_TRACEBACK_LIMIT] = "get_traceback_limit",
		[AGENT_TM_GET_TRACED_MEMORY] = "get_traced_memory",
		[AGENT_TM_GET_TRACEMALLOC_MEMORY] = "get_tracemalloc_memory",
		[AGENT_TM_GET_TRACES] = "_get_traces",
		[AGENT_TM_START] = "start",
		[AGENT_TM_STOP] = "stop",
	};
	int i;

	for (i = 0; i < AGENT_TM_NFN; i++) {
		if (tm_names[i])
			continue;
		tm_names[i] = PyUnicode_InternFromString(names[i]);
		if (!tm_names[i])
			return -1;
	}
	return 0;
}

PyObject *agent_tm_call(enum agent_tm_fn fn, PyObject *arg)
{
	if (!tm_module) {
		tm_module = PyImport_ImportModule("_tracemalloc");
		if (!tm_module)
			return NULL;
	}
	return PyObject_CallMethodObjArgs(tm_module, tm_names[fn], arg, NULL);
}

int agent_tm_ull(enum agent_tm_fn fn, unsigned long long *out)
{
	PyObject *r = agent_tm_call(fn, NULL);

	if (!r)
		return -1;
	*out = PyLong_AsUnsignedLongLong(r);
	Py_DECREF(r);
	return PyErr_Occurred() ? -1 : 0;
}

bool agent_py_gone(void)
{
	/* Py_IsInitialized() turns 0 when Py_FinalizeEx marks the runtime
	 * finalizing, after the exit functions; a thread that asks for the
	 * GIL from then on is ended (3.8-3.13) or parked for ever (3.14). */
	return atomic_load(&agent_exiting) || !Py_IsInitialized();
}

int agent_tm_state(uint8_t *tracing, uint32_t *limit)
{
	unsigned long long on = 0, lim = 0;

	if (agent_tm_ull(AGENT_TM_IS_TRACING, &on) < 0 ||
	    agent_tm_ull(AGENT_TM_GET_TRACEBACK_LIMIT, &lim) < 0)
		return -1;
	if (!on)
		agent_trm_started = false; /* someone stopped it */
	*tracing = !on ? WIRE_TRACING_OFF
		       : agent_trm_started ? WIRE_TRACING_TRMTOP
					   : WIRE_TRACING_APPLICATION;
	*limit = lim > UINT32_MAX ? UINT32_MAX : (uint32_t)lim;
	return 0;
}

/* A new reference to the UTF-8 bytes of str(o), or NULL (error cleared). */
static PyObject *str_bytes(PyObject *o)
{
	PyObject *s, *b = NULL;

	if (!o)
		return NULL;
	s = PyObject_Str(o);
	if (s) {
		b = PyUnicode_AsUTF8String(s);
		Py_DECREF(s);
	}
	if (!b)
		PyErr_Clear();
	return b;
}

/* Cut a NUL-terminated string so it does not end inside a UTF-8 sequence. */
static void utf8_trim(char *buf)
{
	size_t n = strlen(buf), i = n;

	while (i > 0 && ((unsigned char)buf[i - 1] & 0xC0) == 0x80)
		i--;
	if (i > 0) {
		unsigned char lead = (unsigned char)buf[i - 1];
		size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
		if (n - (i - 1) < want)
			buf[i - 1] = '\0';
	}
}

void agent_py_error(const char *what, char *buf, size_t cap)
{
	PyObject *type = NULL, *value = NULL, *tb = NULL;
	PyObject *tname = NULL, *tbytes = NULL, *vbytes = NULL;
	const char *tn = "error", *vs = "";

	if (!cap)
		goto out;
	PyErr_Fetch(&type, &value, &tb);
	if (type) {
		tname = PyObject_GetAttrString(type, "__name__");
		if (!tname)
			PyErr_Clear();
		tbytes = str_bytes(tname);
		if (tbytes)
			tn = PyBytes_AsString(tbytes);
	}
	vbytes = str_bytes(value);
	if (vbytes)
		vs = PyBytes_AsString(vbytes);
	if (!tn || !vs) {
		PyErr_Clear();
		tn = tn ? tn : "error";
		vs = vs ? vs : "";
	}
	snprintf(buf, cap, "%s: %s%s%s", what, tn, *vs ? ": " : "", vs);
	utf8_trim(buf);
out:
	Py_XDECREF(vbytes);
	Py_XDECREF(tbytes);
	Py_XDECREF(tname);
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
	PyErr_Clear();
}

/* ---- process-level hooks ---- */

static void on_fork_prepare(void)
{
	pthread_mutex_lock(&agent_lock);
}

static void on_fork_parent(void)
{
	pthread_mutex_unlock(&agent_lock);
}

/* In a forked child the control thread does not exist: close the
 * inherited pipe ends and forget the session. */
static void on_fork_child(void)
{
	struct agent_sess *s = agent_cur;

	pthread_mutex_init(&agent_lock, NULL);
	agent_cur = NULL;
	if (s) {
		close(s->ctl_fd);
		close(s->data_fd);
		wire_reader_fini(&s->rd);
		wire_intern_free(s->tables);
		free(s);
	}
}

/* Py_AtExit: runs at the very end of finalization (agent_py_gone also
 * watches Py_IsInitialized(), which turns 0 earlier). */
static void on_c_exit(void)
{
	atomic_store(&agent_exiting, true);
}

/* Once per process: the fork handlers and the C exit hook.  No Python
 * module is imported for them (the atexit module is not loaded in every
 * process, and registering there would leave a callback behind). */
static void install_hooks(void)
{
	if (hooks_installed)
		return;
	hooks_installed = true;
	pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
	Py_AtExit(on_c_exit);
}

/* ---- start() ---- */

static bool is_our_fifo(int fd, unsigned long long ino)
{
	struct stat st;

	/* Raw syscall: see the symbol versions note in agent_int.h. */
	return fd >= 0 && syscall(SYS_fstat, fd, &st) == 0 &&
	       S_ISFIFO(st.st_mode) &&
	       (unsigned long long)st.st_ino == ino;
}

/* Write a frame from the application's thread without a SIGPIPE reaching
 * it (the application may run with SIGPIPE at its default action). */
static int write_nosigpipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old, pending;
	bool was_pending;
	int rc;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	if (pthread_sigmask(SIG_BLOCK, &pipe_set, &old) != 0)
		return -EINVAL;
	was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
	rc = wire_write_all(fd, buf, len);
	if (rc == -EPIPE && !was_pending) {
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static void send_error_and_close(int ctl_fd, int data_fd, uint32_t code,
				 const char *text)
{
	uint8_t frame[WIRE_CTL_MAX];
	int n = wire_enc_error(frame, sizeof(frame), code, text);

	if (n > 0)
		(void)write_nosigpipe(data_fd, frame, (size_t)n);
	close(ctl_fd);
	close(data_fd);
}

/* Close fd if it is still the memfd trmtop created, named
 * "trmtop-<kind><token>" (the application may have reused the number). */
static void close_our_memfd(int fd, const char *kind, unsigned long long token)
{
	char path[64], want[96], got[96];
	ssize_t n;

	if (fd < 0)
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	snprintf(want, sizeof(want), "/memfd:trmtop-%s%016llx (deleted)", kind,
		 token);
	n = readlink(path, got, sizeof(got) - 1);
	if (n < 0)
		return;
	got[n] = '\0';
	if (strcmp(got, want) == 0)
		close(fd);
}

/* The poll(2) events pending on fd right now (0 if none or on error). */
static short revents_now(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int rc;

	do
		rc = poll(&pfd, 1, 0);
	while (rc < 0 && errno == EINTR);
	return rc > 0 ? pfd.revents : 0;
}

/* Has trmtop hung up its end of ctl (it gave up on this attach)? */
static bool ctl_abandoned(int ctl_fd)
{
	short ev = revents_now(ctl_fd);

	return (ev & POLLHUP) && !(ev & POLLIN);
}

/* Has the trmtop on the other end of ctl closed it (whether or not it left
 * requests unread)? */
static bool peer_gone(int ctl_fd)
{
	return revents_now(ctl_fd) & (POLLHUP | POLLERR | POLLNVAL);
}

static uint32_t hexversion(void)
{
	PyObject *v = PySys_GetObject("hexversion"); /* borrowed */
	unsigned long x;

	if (!v)
		return 0;
	x = PyLong_AsUnsignedLong(v);
	if (PyErr_Occurred()) {
		PyErr_Clear();
		return 0;
	}
	return (uint32_t)x;
}

/* start(ctl_fd, data_fd, ctl_ino, data_ino, token[, page, page_len, ctl_w,
 * data_r, memfd, script_fd]), all integers (docs/DESIGN.md §4.2):
 *
 *   ctl_fd, data_fd    the target's ends the session uses: the read end of
 *                      the control pipe, the write end of the data pipe
 *   ctl_ino, data_ino  the two pipes' inodes: nothing is served unless
 *                      ctl_fd and data_fd are still those pipes
 *   token              the attach's random u64: names the memfds, comes
 *                      back in HELLO; a start() with the token of the
 *                      running session does nothing (the bootstrap ran
 *                      twice)
 *   page, page_len     the bootstrap's private page, unmapped here (0, 0:
 *                      none, as on the PEP 768 path)
 *   ctl_w, data_r      the target's copies of trmtop's ends, closed here
 *                      if still those pipes
 *   memfd, script_fd   the agent's memfd and the PEP 768 script's (-1:
 *                      none), closed here if still named
 *                      trmtop-[script-]<token>
 *
 * The fds are closed and the page unmapped first, before the pipes are
 * checked, whether or not a session starts.  The text that an attach
 * which gave up leaves queued calls start(-1, -1, 0, 0, token, page,
 * page_len): it only unmaps.  Returns None on every path and never leaves
 * an exception set. */
static PyObject *file_name; /* "<trmtop agent>", made at init */

static PyObject *agent_start(PyObject *self, PyObject *args)
{
	int ctl_fd, data_fd, rc;
	int ctl_w = -1, data_r = -1, memfd = -1, script_fd = -1;
	unsigned long long ctl_ino, data_ino, token;
	unsigned long long page = 0, page_len = 0;
	struct agent_sess *s = NULL;
	struct wire_hello hello = { .proto = WIRE_PROTO_VERSION };
	uint8_t hello_buf[64];
	int hello_len;
	uint8_t tracing = WIRE_TRACING_OFF;
	uint32_t limit = 0;
	char text[256];
	PyObject *thr;
	bool busy, same, ending;

	if (!PyArg_ParseTuple(args, "iiKKK|KKiiii", &ctl_fd, &data_fd, &ctl_ino,
			      &data_ino, &token, &page, &page_len, &ctl_w,
			      &data_r, &memfd, &script_fd))
		goto out;
	/* What trmtop created in the target for this attach and the target
	 * must not keep: the memfds, and its copies of trmtop's pipe ends
	 * (closed before the hang-up check below, which they would defeat).
	 * Here in C rather than in the bootstrap: each os call there lets
	 * the GIL go, and a busy thread keeps it a switch interval. */
	close_our_memfd(memfd, "", token);
	close_our_memfd(script_fd, "script-", token);
	if (ctl_w != ctl_fd && is_our_fifo(ctl_w, ctl_ino))
		close(ctl_w);
	if (data_r != data_fd && is_our_fifo(data_r, data_ino))
		close(data_r);
	/* the import set __file__ to /proc/self/fd/N, whose number the
	 * application may reuse: tools that walk sys.modules would stat it */
	if (PyObject_SetAttrString(self, "__file__", file_name) < 0)
		PyErr_Clear();
	/* the bootstrap's private page: its text is compiled by now */
	if (page && page_len && (page & 4095u) == 0)
		munmap((void *)(uintptr_t)page, (size_t)page_len);
	if (ctl_fd == data_fd || !is_our_fifo(ctl_fd, ctl_ino) ||
	    !is_our_fifo(data_fd, data_ino))
		goto out; /* not our pipes (fd numbers reused): touch nothing */

	pthread_mutex_lock(&agent_lock);
	busy = agent_cur != NULL;
	same = busy && agent_cur->token == token;
	/* its trmtop has hung up: the session's thread is about to end it
	 * (under agent_lock, which end_session holds to close the fd) */
	ending = busy && !same && peer_gone(agent_cur->ctl_fd);
	pthread_mutex_unlock(&agent_lock);
	if (same)
		goto out; /* the bootstrap ran twice */

	if (ctl_abandoned(ctl_fd)) {
		close(ctl_fd);
		close(data_fd);
		goto out;
	}
	if (busy) {
		if (ending)
			send_error_and_close(ctl_fd, data_fd, WIRE_ERR_ENDING,
					     "the previous trmtop's session is ending");
		else
			send_error_and_close(ctl_fd, data_fd, WIRE_ERR_BUSY,
					     "another trmtop is attached");
		goto out;
	}

	hello.py_hexversion = hexversion();
	/* 3.8 only: threading imported first from a foreign thread
	 * misbehaves at exit (DESIGN.md); import it here if we run on the
	 * main thread (a hijacked thread was started by threading, so it is
	 * loaded).  Later versions do not need it: nothing is imported. */
	if (hello.py_hexversion < 0x03090000 &&
	    getpid() == (pid_t)syscall(SYS_gettid)) {
		thr = PyImport_ImportModule("threading");
		Py_XDECREF(thr);
		PyErr_Clear();
	}
	install_hooks();

	if (agent_tm_state(&tracing, &limit) < 0) {
		agent_py_error("tracemalloc state", text, sizeof(text));
		send_error_and_close(ctl_fd, data_fd, WIRE_ERR_PYTHON, text);
		goto out;
	}
	hello.pid = (uint32_t)getpid();
	hello.traceback_limit = limit;
	hello.tracing = tracing;
	hello.token = token;

	s = calloc(1, sizeof(*s));
	if (!s) {
		send_error_and_close(ctl_fd, data_fd, WIRE_ERR_UNKNOWN,
				     "agent: out of memory");
		goto out;
	}
	/* HELLO from here, the first frame on data_fd: trmtop has it now,
	 * not once the new thread has been scheduled (0.4 ms and more) */
	hello_len = wire_enc_hello(hello_buf, sizeof(hello_buf), &hello);
	if (hello_len < 0 ||
	    write_nosigpipe(data_fd, hello_buf, (size_t)hello_len) < 0) {
		close(ctl_fd);
		close(data_fd);
		free(s);
		goto out;
	}
	s->ctl_fd = ctl_fd;
	s->data_fd = data_fd;
	s->token = token;
	s->py_hexversion = hello.py_hexversion;
	wire_reader_init(&s->rd, ctl_fd, WIRE_CTL_MAX);

	pthread_mutex_lock(&agent_lock);
	agent_cur = s;
	rc = agent_ctl_spawn(s);
	if (rc < 0)
		agent_cur = NULL;
	pthread_mutex_unlock(&agent_lock);
	if (rc < 0) {
		snprintf(text, sizeof(text), "agent: cannot start thread: %s",
			 strerror(-rc));
		send_error_and_close(ctl_fd, data_fd, WIRE_ERR_UNKNOWN, text);
		wire_reader_fini(&s->rd);
		free(s);
	}
out:
	PyErr_Clear();
	Py_RETURN_NONE;
}

static PyMethodDef agent_methods[] = {
	{ "start", agent_start, METH_VARARGS,
	  "start(ctl_fd, data_fd, ctl_ino, data_ino, token[, page, page_len, "
	  "ctl_w, data_r, memfd, script_fd]): serve trmtop" },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef agent_module = {
	PyModuleDef_HEAD_INIT,
	"_trmtop_agent",
	"trmtop's in-process agent (loaded by trmtop, not for import)",
	-1,
	agent_methods,
	NULL,
	NULL,
	NULL,
	NULL,
};

PyMODINIT_FUNC PyInit__trmtop_agent(void);

/* What debuggers see as our file.  The loader recorded the path we were
 * loaded from, /proc/self/fd/N: a debugger reading the link map opens that
 * path in its own process and, finding a pipe there, blocks (gdb does).
 * The memfd is closed once we are loaded anyway, so no path can name us. */
static const char agent_link_name[] = "/memfd:trmtop-agent (deleted)";

extern ElfW(Dyn) _DYNAMIC[];

static void rename_link_map(void)
{
	struct link_map *lm;

	for (lm = _r_debug.r_map; lm; lm = lm->l_next) {
		if (lm->l_ld == _DYNAMIC && lm->l_name &&
		    strncmp(lm->l_name, "/proc/", 6) == 0) {
			lm->l_name = (char *)agent_link_name;
			break;
		}
	}
}

PyMODINIT_FUNC PyInit__trmtop_agent(void)
{
	rename_link_map();
	if (!file_name) {
		file_name = PyUnicode_FromString("<trmtop agent>");
		if (!file_name)
			return NULL;
	}
	if (agent_names_init() < 0)
		return NULL;
	return PyModule_Create(&agent_module);
}
