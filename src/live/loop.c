/* loop.c - the loop of the live view (live_run): one poll over the
 * session's fd, the caller's abort fd and the sink's input, with the
 * refresh timer as its timeout.  One request at a time: a snapshot is
 * asked for when the (stretched) interval has passed since the last one
 * ended, read step by step without blocking (so keys are served while it
 * comes), then given to the model and shown by the sink. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "trmtop/live.h"
#include "trmtop/session.h"
#include "trmtop/target.h"
#include "trmtop/util.h"

/* end_refresh: the sink could not write (its stream has the errno) */
#define LIVE_OUTPUT_FAILED 1

struct loop {
	struct session *s;
	const struct live_opts *o;
	struct live_state *st;
	const struct live_sink *sink;
	struct snapshot *into;  /* the snapshot in flight */
	uint64_t next_ns;       /* when the next refresh is due */
	uint64_t done_ns;       /* when the last one ended */
	uint64_t last_progress_ns;
};

static void on_progress(uint64_t got, uint64_t total, void *arg)
{
	struct loop *lp = arg;
	uint64_t now = util_now_ns();

	lp->st->got = got;
	lp->st->total = total;
	if (now - lp->last_progress_ns < 100000000u && got != total)
		return;
	lp->last_progress_ns = now;
	lp->sink->progress(lp->sink->arg, lp->st);
}

static int start_refresh(struct loop *lp, struct trm_err *err)
{
	struct session_req req;
	int rc;

	lp->into = snapshot_new();
	if (!lp->into)
		return trm_err_set(err, -ENOMEM, "out of memory");
	memset(&req, 0, sizeof(req));
	req.op = SESSION_OP_SNAPSHOT;
	req.into = lp->into;
	req.snap_flags = lp->o->snap_flags;
	req.progress = on_progress;
	req.arg = lp;
	rc = session_request_async(lp->s, &req, err);
	if (rc < 0) {
		snapshot_free(lp->into);
		lp->into = NULL;
		return rc;
	}
	lp->st->in_flight = 1;
	lp->st->got = lp->st->total = 0;
	lp->sink->progress(lp->sink->arg, lp->st);
	return 0;
}

static void reschedule(struct loop *lp)
{
	const struct live_sample *l = live_model_last(lp->st->model);

	lp->st->effective_ms = live_stretch_ms(lp->st->interval_ms, l ? l->gil_ns : 0);
	lp->next_ns = lp->done_ns + lp->st->effective_ms * 1000000u;
}

/* The snapshot in flight is complete: into the model, then shown. */
static int end_refresh(struct loop *lp, struct trm_err *err)
{
	struct snapshot *s = lp->into, *shown = s;
	struct snapshot_meta *m = snapshot_meta(s);
	struct live_sample smp;
	struct timespec ts;
	int rc;

	lp->into = NULL;
	lp->st->in_flight = 0;
	m->pid = (int32_t)lp->st->pid;
	snprintf(m->executable, sizeof(m->executable), "%s", lp->st->exe);
	snprintf(m->python_version, sizeof(m->python_version), "%s",
		 lp->st->python_version);
	snprintf(m->host, sizeof(m->host), "%s", lp->o->host ? lp->o->host : "");
	clock_gettime(CLOCK_REALTIME, &ts);
	m->time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	memset(&smp, 0, sizeof(smp));
	smp.t_ns = util_now_ns();
	smp.traced = m->traced_current;
	smp.peak = m->traced_peak;
	smp.rss = m->rss;
	smp.tm_mem = m->tracemalloc_memory;
	smp.blocks = snapshot_total_count(s);
	session_gil_time(lp->s, &smp.gil_ns, &smp.gil_max_ns);
	lp->st->traceback_limit = m->traceback_limit;
	if (lp->o->nfilters) {
		shown = snapshot_filter(s, lp->o->filters, lp->o->nfilters);
		snapshot_free(s);
		if (!shown)
			return trm_err_set(err, -errno, "filtering the snapshot: %s",
					   strerror(errno));
	}
	rc = live_model_push(lp->st->model, shown, &smp);
	if (rc < 0)
		return trm_err_set(err, rc, "the live view's model: %s", strerror(-rc));
	lp->done_ns = smp.t_ns;
	reschedule(lp);
	if (lp->sink->refresh(lp->sink->arg, lp->st) < 0)
		return LIVE_OUTPUT_FAILED;
	return 0;
}

/* Requests of the sink: write a snapshot; the interval changed. */
static void serve_requests(struct loop *lp)
{
	struct live_state *st = lp->st;

	if (st->want_write) {
		const struct snapshot *s = live_model_snapshot(st->model);
		struct trm_err e = { 0 };
		char path[400];

		st->want_write = 0;
		if (!s)
			snprintf(st->msg, sizeof(st->msg), "no snapshot yet");
		else if (!lp->o->write)
			snprintf(st->msg, sizeof(st->msg), "writing is not available");
		else if (lp->o->write(lp->o->write_arg, s, path, sizeof(path), &e) < 0)
			snprintf(st->msg, sizeof(st->msg), "not written: %.400s",
				 e.msg[0] ? e.msg : trm_strerror(e.code));
		else
			snprintf(st->msg, sizeof(st->msg), "wrote %s", path);
	}
	if (live_model_last(st->model))
		reschedule(lp);
}

enum live_end live_run(struct session *s, const struct live_opts *o,
		       struct live_state *st, const struct live_sink *sink,
		       struct trm_err *err)
{
	struct loop lp = { s, o, st, sink, NULL, 0, 0, 0 };
	enum live_end end = LIVE_END_QUIT;
	int rc, again = 0;

	st->interval_ms = o->interval_ms;
	st->effective_ms = o->interval_ms;
	if (sink->begin(sink->arg, st) < 0) {
		trm_err_set(err, -EIO, "cannot set up the terminal");
		return LIVE_END_ERROR;
	}
	lp.next_ns = util_now_ns();
	for (;;) {
		struct pollfd p[3];
		int np = 0, ifd = sink->fd(sink->arg), timeout = -1;
		uint64_t now = util_now_ns();

		/* q: at once between refreshes; with one in flight once it
		 * ends (STOP cannot be asked before), unless q comes again */
		if (st->quit && (!st->in_flight || st->quit > 1))
			break;
		if (o->iterations && live_model_nrefresh(st->model) >= o->iterations)
			break;
		if (!st->in_flight && !st->paused && !st->quit && now >= lp.next_ns) {
			rc = start_refresh(&lp, err);
			if (rc < 0)
				goto failed;
		}
		if (again)
			timeout = 0;
		else if (!st->in_flight && !st->paused)
			timeout = (int)((lp.next_ns - now + 999999u) / 1000000u);
		p[np++] = (struct pollfd){ session_fd(s), POLLIN, 0 };
		p[np++] = (struct pollfd){ o->abort_fd, POLLIN, 0 };
		if (ifd >= 0)
			p[np++] = (struct pollfd){ ifd, POLLIN, 0 };
		rc = poll(p, (nfds_t)np, timeout);
		if (rc < 0 && errno != EINTR) {
			trm_err_set(err, -errno, "poll: %s", strerror(errno));
			end = LIVE_END_ERROR;
			break;
		}
		if (rc < 0) {
			/* a signal handled in-process (the terminal's SIGWINCH:
			 * KEY_RESIZE is read as input) */
			if (ifd >= 0) {
				sink->input(sink->arg, st);
				serve_requests(&lp);
				sink->draw(sink->arg, st);
			}
			continue;
		}
		if (p[1].revents && session_aborted(s)) {
			end = LIVE_END_ABORT;
			break;
		}
		if (again || p[0].revents) {
			rc = session_step(s, err);
			again = rc == SESSION_AGAIN;
			if (rc == SESSION_DONE) {
				rc = end_refresh(&lp, err);
				if (rc == LIVE_OUTPUT_FAILED) {
					trm_err_set(err, -EIO, "writing the view");
					end = LIVE_END_OUTPUT;
					break;
				}
				if (rc < 0)
					goto failed;
			} else if (rc < 0) {
				goto failed;
			}
		}
		if (ifd >= 0 && p[2].revents) {
			sink->input(sink->arg, st);
			serve_requests(&lp);
			if (st->quit == 1 && st->in_flight)
				snprintf(st->msg, sizeof(st->msg), "quitting once the "
					 "refresh in flight ends (q: now)");
			sink->draw(sink->arg, st);
		}
	}
	goto out;
failed:
	if (rc == -TRM_EINTR) {
		end = LIVE_END_ABORT;
	} else if (rc == -TRM_EAGENT && target_exited(st->pid, 500)) {
		snprintf(st->end_msg, sizeof(st->end_msg), "pid %d exited",
			 (int)st->pid);
		end = LIVE_END_GONE;
	} else {
		end = LIVE_END_ERROR;
	}
out:
	/* a request still in flight (a second q, an abort, an error) is
	 * not read any more: the caller only cancels or closes the session
	 * now, which never writes into lp.into */
	snapshot_free(lp.into);
	sink->end(sink->arg, st);
	return end;
}
