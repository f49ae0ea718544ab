/* session.c - one conversation with the agent in one target (session.h):
 * the connection inject_attach opens, the request in flight and its
 * reply, read frame by frame either without blocking (session_step) or
 * waiting (session_wait); the snapshot receiver (snapfetch.c) and its
 * interning tables, kept for the connection's life.  Every error says
 * "pid N: ..." in a trm_err; nothing is printed.  The caller's abort
 * (abort.h) ends every wait. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapfetch.h"
#include "trmtop/abort.h"
#include "trmtop/session.h"

/* What one session_step reads at most before it lets others run: frames
 * (unless session_opts.step_frames says), and bytes (a snapshot chunk is
 * up to 256 KiB, WIRE_SNAP_CHUNK). */
#define STEP_FRAMES 64
#define STEP_BYTES (256u << 10)

struct session {
	struct inject_conn c;
	struct trm_abort *abort; /* the caller's (session.h) */
	unsigned step_frames;
	struct snapfetch *sf;    /* the connection's tables, at the first
				  * snapshot */
	enum session_op op;      /* in flight */
	uint16_t want;           /* the reply type it waits for (not for
				  * a snapshot: snapfetch follows it) */
	struct wire_state state; /* replies, once done */
	struct wire_stats stats;
};

static void abort_wake(struct session *s);

int session_open(pid_t pid, const struct session_opts *o,
		 struct session **out, struct trm_err *err)
{
	struct inject_opts io = {
		.attach_timeout_ms = o->attach_timeout_ms,
		.verbose = o->verbose,
		.trace = o->trace,
		.progress = o->progress,
		.progress_ctx = o->progress_ctx,
		.abort = o->abort,
	};
	struct session *s;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return trm_err_set(err, -ENOMEM, "pid %d: out of memory", (int)pid);
	s->abort = o->abort;
	s->step_frames = o->step_frames ? o->step_frames : STEP_FRAMES;
	rc = inject_attach(pid, &io, &s->c, err);
	if (rc < 0) {
		if (!err || !err->msg[0])
			trm_err_set(err, rc, "pid %d: %s", (int)pid, trm_strerror(rc));
		free(s);
		return rc;
	}
	abort_wake(s);
	*out = s;
	return 0;
}

const struct inject_conn *session_conn(const struct session *s)
{
	return &s->c;
}

void session_close(struct session *s)
{
	if (!s)
		return;
	inject_close(&s->c);
	snapfetch_free(s->sf);
	free(s);
}

int session_fd(const struct session *s)
{
	return s->c.data_fd;
}

enum session_op session_pending(const struct session *s)
{
	return s->op;
}

void session_last_state(const struct session *s, struct wire_state *st)
{
	*st = s->state;
}

void session_last_stats(const struct session *s, struct wire_stats *st)
{
	*st = s->stats;
}

uint32_t session_agent_error(const struct session *s)
{
	return snapfetch_agent_error(s->sf);
}

void session_gil_time(const struct session *s, uint64_t *total_ns,
		      uint64_t *max_ns)
{
	*total_ns = *max_ns = 0;
	if (s->sf)
		snapfetch_gil_time(s->sf, total_ns, max_ns);
}

/* ---- requests and replies --------------------------------------------- */

/* The request in flight is over, with rc (1: done, else an error). */
static int finish(struct session *s, int rc, struct trm_err *err)
{
	enum session_op op = s->op;

	s->op = SESSION_OP_NONE;
	if (rc == 1)
		return SESSION_DONE;
	/* a snapshot the agent did not refuse with ERROR: hung up, or the
	 * pipe failed; say whether the target is gone */
	if (op == SESSION_OP_SNAPSHOT && rc == -TRM_EAGENT &&
	    !snapfetch_agent_error(s->sf)) {
		trm_err_clear(err);
		inject_agent_gone(s->c.target.pid, err);
	}
	return rc;
}

/* The SNAPSHOT_REQ flags for the caller's: a sampled snapshot is asked
 * for with all four estimates (minor 2, the session refuses older
 * agents) and, from minor 3, as a table reply that sends only the rows
 * changed since the last (wire.h, "Only the changed rows"). */
static uint16_t snap_flags(const struct session *s, uint16_t flags)
{
	if (!(flags & WIRE_SNAPSHOT_SAMPLED))
		return flags;
	flags |= WIRE_SNAPSHOT_ESTIMATES;
	if ((s->c.hello.proto & 0xffffu) >= 3)
		flags |= WIRE_SNAPSHOT_CHANGED;
	return flags;
}

int session_request_async(struct session *s, const struct session_req *req,
			  struct trm_err *err)
{
	int pid = (int)s->c.target.pid;
	uint8_t buf[WIRE_CTL_MAX];
	int n, rc;

	if (s->op != SESSION_OP_NONE)
		return trm_err_set(err, -EBUSY, "pid %d: a request is in flight", pid);
	if (s->c.ctl_fd < 0)
		return trm_err_set(err, -EBADF, "pid %d: the session has ended", pid);
	switch (req->op) {
	case SESSION_OP_STATS:
		n = wire_enc_empty(buf, sizeof(buf), WIRE_STATS_REQ);
		s->want = WIRE_STATS;
		break;
	case SESSION_OP_START:
		n = wire_enc_start(buf, sizeof(buf), &req->start);
		s->want = WIRE_STATE;
		break;
	case SESSION_OP_STOP:
		n = wire_enc_empty(buf, sizeof(buf), WIRE_STOP);
		s->want = WIRE_STATE;
		break;
	case SESSION_OP_SNAPSHOT:
		if (!req->into)
			return trm_err_set(err, -EINVAL, "pid %d: no snapshot to "
					   "fill", pid);
		if ((req->snap_flags & WIRE_SNAPSHOT_SAMPLED) &&
		    (s->c.hello.proto & 0xffffu) < 2)
			return trm_err_set(err, -TRM_EAGENT, "pid %d: its agent, "
					   "loaded by an earlier trmtop (protocol "
					   "%#x), sends no sampled block counts",
					   pid, s->c.hello.proto);
		if (!s->sf && !(s->sf = snapfetch_new()))
			return trm_err_set(err, -ENOMEM, "pid %d: out of memory", pid);
		rc = snapfetch_begin(s->sf, req->into, req->progress, req->arg);
		if (rc < 0)
			return trm_err_set(err, rc, "pid %d: connection out of step "
					   "after an earlier error", pid);
		n = wire_enc_snapshot_req(buf, sizeof(buf),
					  snap_flags(s, req->snap_flags));
		break;
	default:
		return trm_err_set(err, -EINVAL, "pid %d: no such request", pid);
	}
	if (n < 0)
		return trm_err_set(err, n, "encoding a request: %s", strerror(-n));
	s->op = req->op;
	rc = wire_write_all(s->c.ctl_fd, buf, (size_t)n);
	if (rc == 0)
		return 0;
	if (req->op == SESSION_OP_SNAPSHOT)
		snapfetch_abandon(s->sf);
	if (rc == -EPIPE)
		rc = inject_agent_gone(s->c.target.pid, err);
	else
		rc = trm_err_set(err, -TRM_EAGENT, "pid %d: writing to the agent: %s",
				 pid, strerror(-rc));
	return finish(s, rc, err);
}

/* A read of the reader failed (rc from wire_read_frame, not 1): the one
 * mapping of inject_read_error, but for a snapshot's bad frame header,
 * which says where in the reply it was. */
static int read_failed(struct session *s, int rc, struct trm_err *err)
{
	if (s->op != SESSION_OP_SNAPSHOT)
		return inject_read_error(&s->c, rc, "answer", err);
	snapfetch_abandon(s->sf);
	if (rc == -EPROTO)
		return trm_err_set(err, -TRM_EPROTO, "pid %d: snapshot reply: "
				   "byte %llu: bad frame header", (int)s->c.target.pid,
				   (unsigned long long)snapfetch_offset(s->sf));
	return inject_read_error(&s->c, rc, "snapshot data", err);
}

/* One frame of the reply: 0 more, 1 done, or an error. */
static int on_frame(struct session *s, const struct wire_msg *msg,
		    struct trm_err *err)
{
	int pid = (int)s->c.target.pid;
	struct wire_error e;

	if (s->op == SESSION_OP_SNAPSHOT)
		return snapfetch_feed(s->sf, msg, err);
	if (msg->type == s->want) {
		if (s->want == WIRE_STATS && wire_dec_stats(msg, &s->stats) < 0)
			return trm_err_set(err, -TRM_EPROTO, "pid %d: malformed "
					   "stats", pid);
		if (s->want == WIRE_STATE && wire_dec_state(msg, &s->state) < 0)
			return trm_err_set(err, -TRM_EPROTO, "pid %d: malformed "
					   "reply", pid);
		return 1;
	}
	if (msg->type == WIRE_ERROR) {
		if (wire_dec_error(msg, &e) < 0)
			snprintf(e.text, sizeof(e.text), "malformed error");
		return trm_err_set(err, -TRM_EAGENT, "pid %d: agent: %s", pid,
				   e.text);
	}
	return 0; /* an event nobody waits for: skipped */
}

int session_step(struct session *s, struct trm_err *err)
{
	struct wire_msg msg;
	size_t bytes = 0;
	unsigned n;
	int rc;

	if (s->c.data_fd < 0)
		return trm_err_set(err, -EBADF, "pid %d: the session has ended",
				   (int)s->c.target.pid);
	for (n = 0; n < s->step_frames && bytes < STEP_BYTES; n++) {
		/* timeout 0: what is buffered or readable now, no wait */
		rc = wire_read_frame(&s->c.rd, &msg, 0);
		if (rc == -ETIMEDOUT)
			return SESSION_WAIT;
		if (rc != 1) {
			rc = read_failed(s, rc, err);
			return s->op ? finish(s, rc, err) : rc;
		}
		bytes += WIRE_HDR_SIZE + (size_t)msg.len;
		if (s->op == SESSION_OP_NONE)
			continue; /* events, between requests */
		rc = on_frame(s, &msg, err);
		if (rc != 0)
			return finish(s, rc, err);
	}
	return SESSION_AGAIN;
}

int session_wait(struct session *s, int timeout_ms, struct trm_err *err)
{
	struct wire_msg msg;
	int rc;

	if (s->op == SESSION_OP_NONE)
		return 0;
	for (;;) {
		/* the reader wakes on the abort (abort_wake) */
		rc = wire_read_frame(&s->c.rd, &msg, timeout_ms);
		rc = rc == 1 ? on_frame(s, &msg, err) : read_failed(s, rc, err);
		if (rc != 0) {
			rc = finish(s, rc, err);
			return rc == SESSION_DONE ? 0 : rc;
		}
	}
}

/* ---- blocking requests ------------------------------------------------ */

int session_request(struct session *s, const struct session_req *req,
		    int timeout_ms, struct trm_err *err)
{
	int rc = session_request_async(s, req, err);

	return rc < 0 ? rc : session_wait(s, timeout_ms, err);
}

int session_stats(struct session *s, struct wire_stats *out, int timeout_ms,
		  struct trm_err *err)
{
	struct session_req req = { .op = SESSION_OP_STATS };
	int rc = session_request(s, &req, timeout_ms, err);

	if (rc == 0)
		*out = s->stats;
	return rc;
}

int session_start_req(struct session *s, const struct wire_start *start,
		      struct wire_state *st, int timeout_ms,
		      struct trm_err *err)
{
	struct session_req req = { .op = SESSION_OP_START, .start = *start };
	int rc = session_request(s, &req, timeout_ms, err);

	if (rc == 0)
		*st = s->state;
	return rc;
}

int session_start(struct session *s, unsigned nframe, uint32_t flags,
		  struct wire_state *st, int timeout_ms, struct trm_err *err)
{
	struct wire_start start = { .nframe = nframe, .flags = flags };

	return session_start_req(s, &start, st, timeout_ms, err);
}

int session_stop(struct session *s, struct wire_state *st, int timeout_ms,
		 struct trm_err *err)
{
	struct session_req req = { .op = SESSION_OP_STOP };
	int rc = session_request(s, &req, timeout_ms, err);

	if (rc == 0)
		*st = s->state;
	return rc;
}

int session_snapshot(struct session *s, struct snapshot *into,
		     session_progress_fn *progress, void *arg, int timeout_ms,
		     struct trm_err *err)
{
	struct session_req req = { .op = SESSION_OP_SNAPSHOT, .into = into,
				   .progress = progress, .arg = arg };

	return session_request(s, &req, timeout_ms, err);
}

/* ---- the abort ---------------------------------------------------------
 *
 * The caller's abort, s->abort (abort.h): every wait ends on it. */

/* Make every read of the connection end on the abort (inject_attach has
 * already set it: kept as the one place that says so). */
static void abort_wake(struct session *s)
{
	wire_reader_set_wake(&s->c.rd, trm_abort_fd(s->abort),
			     inject_wake_on_signal, s->abort);
}

int session_sleep(struct session *s, int ms)
{
	return inject_sleep(s->abort, ms);
}

int session_aborted(struct session *s)
{
	return trm_abort_check(s->abort) != 0;
}

int session_cancel(struct session *s, int timeout_ms)
{
	s->op = SESSION_OP_NONE;
	return inject_cancel(&s->c, timeout_ms);
}
