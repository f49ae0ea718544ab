/* ctl.c - the agent's control thread: serves one trmtop session.
 *
 * The thread runs with every signal blocked (so signals meant for the
 * application reach its threads, and EPIPE replaces SIGPIPE), blocks on the
 * ctl pipe without the GIL, and takes the GIL only around Python calls.
 * EOF or an error on either pipe is a detach. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"

#define TEXT_MAX 256 /* ERROR text, bytes incl. NUL */

/* Send one frame on data; 0 or -errno (-EPIPE: trmtop is gone). */
static int send_frame(struct agent_sess *s, const uint8_t *buf, int len)
{
	if (len < 0)
		return len;
	return wire_write_all(s->data_fd, buf, (size_t)len);
}

static int send_error(struct agent_sess *s, uint32_t code, const char *text)
{
	uint8_t frame[WIRE_HDR_SIZE + 4 + TEXT_MAX];

	return send_frame(s, frame, wire_enc_error(frame, sizeof(frame), code, text));
}

/* Resident set size in bytes from /proc/self/statm (no GIL needed). */
uint64_t agent_read_rss(void)
{
	char buf[128];
	ssize_t n;
	uint64_t pages = 0;
	long psz = sysconf(_SC_PAGESIZE);
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	const char *p;

	if (fd < 0)
		return 0;
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strchr(buf, ' '); /* "size resident shared ..." */
	if (!p)
		return 0;
	for (p++; *p >= '0' && *p <= '9'; p++)
		pages = pages * 10 + (uint64_t)(*p - '0');
	return pages * (uint64_t)(psz > 0 ? psz : 4096);
}

/* Fill st from tracemalloc.  GIL held; 0 or -1 with an exception set. */
static int py_stats(struct wire_stats *st)
{
	PyObject *mem = NULL, *traces = NULL;
	unsigned long long ull;
	int rc = -1;

	if (agent_tm_state(&st->tracing, &st->traceback_limit) < 0)
		goto out;
	mem = agent_tm_call(AGENT_TM_GET_TRACED_MEMORY, NULL);
	if (!mem)
		goto out;
	if (!PyArg_ParseTuple(mem, "KK", &st->traced_current, &st->traced_peak))
		goto out;
	if (agent_tm_ull(AGENT_TM_GET_TRACEMALLOC_MEMORY, &ull) < 0)
		goto out;
	st->tracemalloc_memory = ull;
	if (st->tracing != WIRE_TRACING_OFF) {
		Py_ssize_t n;

		traces = agent_tm_call(AGENT_TM_GET_TRACES, NULL);
		if (!traces)
			goto out;
		n = PyObject_Size(traces);
		if (n < 0)
			goto out;
		st->traced_blocks = (uint64_t)n;
	}
	rc = 0;
out:
	Py_XDECREF(traces);
	Py_XDECREF(mem);
	return rc;
}

/* The sampler's part of STATS. */
static void sample_stats(struct wire_stats *st)
{
	struct agent_sample_stats ss;

	agent_sample_stats(&ss);
	st->sample_size = ss.size;
	st->samples = ss.samples;
	st->sample_memory = ss.memory;
	st->sample_flags = ss.capped ? WIRE_SAMPLE_CAPPED : 0;
}

/* START with WIRE_START_SAMPLE: the sampler, tracemalloc untouched.  GIL
 * held; 0 or -1 with an exception set. */
static int py_start_sample(struct agent_sess *s, const struct wire_start *req,
			   struct wire_state *out)
{
	struct agent_sample_stats ss;

	if (req->nframe == 0) {
		PyErr_SetString(PyExc_ValueError,
				"the number of frames must be in range [1; 65535]");
		return -1;
	}
	if (!agent_sample_on()) {
		if (agent_sample_start(req->sample_size, req->nframe,
				       req->sample_max_memory) < 0)
			return -1;
		s->owns_sample = !(req->flags & WIRE_START_KEEP);
	} else if (req->flags & WIRE_START_KEEP) {
		s->owns_sample = false; /* now asked to keep it */
	}
	agent_sample_stats(&ss);
	out->sample_size = ss.size;
	return agent_tm_state(&out->tracing, &out->traceback_limit);
}

/* START: trace with nframe frames unless something already traces.  GIL
 * held; 0 or -1 with an exception set. */
static int py_start(struct agent_sess *s, const struct wire_start *req,
		    struct wire_state *out)
{
	PyObject *n, *r;

	if (req->flags & WIRE_START_SAMPLE)
		return py_start_sample(s, req, out);
	if (agent_tm_state(&out->tracing, &out->traceback_limit) < 0)
		return -1;
	if (out->tracing == WIRE_TRACING_TRMTOP) {
		if (req->flags & WIRE_START_KEEP)
			s->owns = false; /* now asked to keep it */
		return 0;
	}
	if (out->tracing == WIRE_TRACING_APPLICATION)
		return 0; /* the application's tracing: use it as it is */
	n = PyLong_FromUnsignedLong(req->nframe);
	if (!n)
		return -1;
	agent_rawguard_install();
	r = agent_tm_call(AGENT_TM_START, n);
	Py_DECREF(n);
	if (!r) {
		agent_rawguard_remove();
		return -1;
	}
	Py_DECREF(r);
	agent_trm_started = true;
	s->owns = !(req->flags & WIRE_START_KEEP);
	return agent_tm_state(&out->tracing, &out->traceback_limit);
}

/* Stop tracing if (and only if) trmtop started it.  GIL held; 0 or -1. */
static int py_stop_tm(struct wire_state *out)
{
	PyObject *r;

	if (agent_tm_state(&out->tracing, &out->traceback_limit) < 0)
		return -1;
	if (out->tracing == WIRE_TRACING_OFF)
		agent_rawguard_remove(); /* the application stopped ours */
	if (out->tracing != WIRE_TRACING_TRMTOP)
		return 0;
	r = agent_tm_call(AGENT_TM_STOP, NULL);
	if (!r)
		return -1;
	Py_DECREF(r);
	agent_trm_started = false;
	agent_rawguard_remove();
	return agent_tm_state(&out->tracing, &out->traceback_limit);
}

/* STOP: the sampler (first: its hooks may sit on top of tracemalloc's),
 * then tracemalloc if trmtop started it.  GIL held; 0 or -1. */
static int py_stop(struct wire_state *out)
{
	int rc;

	agent_sample_stop();
	rc = py_stop_tm(out);
	/* tracemalloc (and the guard) started over the sampler's hooks have
	 * gone: the hooks can come off now */
	agent_sample_stop();
	return rc;
}

/* Handle one request.  Returns 0 to go on, 1 to detach, -errno when the
 * data pipe failed. */
static int handle(struct agent_sess *s, const struct wire_msg *msg)
{
	uint8_t frame[WIRE_CTL_MAX];
	char text[TEXT_MAX];
	struct wire_stats st = { 0 };
	struct wire_start req;
	struct wire_state state = { 0 };
	PyGILState_STATE g;
	const char *what;
	int rc;

	switch (msg->type) {
	case WIRE_DETACH:
		return 1;
	case WIRE_SNAPSHOT_REQ:
		return agent_snapshot(s, msg->flags);
	case WIRE_STATS_REQ:
		st.rss = agent_read_rss();
		what = "stats";
		break;
	case WIRE_START:
		if (wire_dec_start(msg, &req) < 0)
			return send_error(s, WIRE_ERR_UNKNOWN, "malformed START");
		what = req.flags & WIRE_START_SAMPLE ? "sampler start"
						     : "tracemalloc.start";
		break;
	case WIRE_STOP:
		what = "tracemalloc.stop";
		break;
	default:
		snprintf(text, sizeof(text), "unknown request type %u",
			 (unsigned)msg->type);
		return send_error(s, WIRE_ERR_UNKNOWN, text);
	}

	if (agent_py_gone())
		return 1; /* the interpreter is going away */
	g = PyGILState_Ensure();
	if (msg->type == WIRE_STATS_REQ)
		rc = py_stats(&st);
	else if (msg->type == WIRE_START)
		rc = py_start(s, &req, &state);
	else
		rc = py_stop(&state);
	if (rc < 0)
		agent_py_error(what, text, sizeof(text));
	PyErr_Clear();
	PyGILState_Release(g);

	if (rc < 0)
		return send_error(s, WIRE_ERR_PYTHON, text);
	if (msg->type == WIRE_STATS_REQ) {
		sample_stats(&st);
		return send_frame(s, frame, wire_enc_stats(frame, sizeof(frame), &st));
	}
	return send_frame(s, frame, wire_enc_state(frame, sizeof(frame), &state));
}

/* Block (no GIL) until ctl is readable or hung up, or data's reader is
 * gone.  0 when ctl should be read, -EPIPE/-errno to detach. */
static int wait_ctl(struct agent_sess *s)
{
	struct pollfd pfd[2] = {
		{ .fd = s->ctl_fd, .events = POLLIN },
		{ .fd = s->data_fd, .events = 0 }, /* POLLERR: reader closed */
	};

	for (;;) {
		int rc = poll(pfd, 2, -1);

		if (rc < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[1].revents)
			return -EPIPE;
		if (pfd[0].revents)
			return 0;
	}
}

/* Undo what this session must not leave behind, unpublish it, release it. */
static void end_session(struct agent_sess *s)
{
	if ((s->owns || s->owns_sample) && !agent_py_gone()) {
		PyGILState_STATE g = PyGILState_Ensure();
		struct wire_state unused;

		if (s->owns_sample)
			agent_sample_stop();
		if (s->owns && py_stop_tm(&unused) < 0)
			PyErr_Clear();
		if (s->owns_sample)
			agent_sample_stop(); /* as py_stop */
		PyGILState_Release(g);
	}
	pthread_mutex_lock(&agent_lock);
	if (agent_cur == s)
		agent_cur = NULL;
	close(s->ctl_fd);
	close(s->data_fd);
	pthread_mutex_unlock(&agent_lock);
	wire_reader_fini(&s->rd);
	wire_intern_free(s->tables);
	agent_tab_free(s->tab);
	free(s);
}

static void *ctl_main(void *arg)
{
	struct agent_sess *s = arg;
	struct wire_msg msg;
	int rc;

	/* start() has sent HELLO.  Every request that touches Python takes
	 * the GIL, which waits for the bootstrap that started us to finish:
	 * a first snapshot never sees its transient objects.  No GIL round
	 * trip of its own (it cost a switch interval against a busy thread). */
	for (;;) {
		rc = wire_read_frame(&s->rd, &msg, 0);
		if (rc == -ETIMEDOUT) {
			if (wait_ctl(s) < 0)
				break;
			continue;
		}
		if (rc <= 0)
			break; /* EOF, bad frame or read error: detach */
		if (handle(s, &msg) != 0)
			break;
	}
	end_session(s);
	return NULL;
}

int agent_ctl_spawn(struct agent_sess *s)
{
	pthread_attr_t attr;
	pthread_t tid;
	sigset_t all, old;
	int rc;

	rc = pthread_attr_init(&attr);
	if (rc)
		return -rc;
	rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (rc)
		goto out;
	sigfillset(&all);
	rc = pthread_sigmask(SIG_SETMASK, &all, &old);
	if (rc)
		goto out;
	rc = pthread_create(&tid, &attr, ctl_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
out:
	pthread_attr_destroy(&attr);
	return -rc;
}
