/* session.h - a conversation with the agent in one target: open it
 * (attach, or reconnect to the agent already loaded), ask for statistics,
 * turn tracing on and off, fetch snapshots (with the connection's
 * interning tables), and end it (close, or cancel after an abort).
 *
 * Two ways to drive a request:
 *
 *  - blocking: session_stats, session_start, session_stop,
 *    session_snapshot send the request and wait for the whole reply;
 *
 *  - non-blocking, so that one loop serves a terminal and any number of
 *    sessions: session_request_async sends the request; then the caller
 *    polls session_fd (POLLIN) with whatever else it waits for and calls
 *    session_step when it is readable (or when session_step said
 *    SESSION_AGAIN), until it says SESSION_DONE or fails.  session_step
 *    never blocks.  The result is then read with session_last_state,
 *    session_last_stats, or is in the snapshot given with the request.
 *
 * One request at a time per session.  A session has no process-wide
 * state: two sessions to two targets work at once in one process (tests/
 * unit/session/session_pair.c does it).  The abort (signals to trmtop)
 * belongs to the caller and is given at open (struct session_opts.abort);
 * every wait of a session ends on it with -TRM_EINTR, and session_step
 * returns -TRM_EINTR once it has come (abort.h: NULL means none).
 *
 * Errors are trm_err with "pid N: ..." messages; nothing is printed. */
#ifndef TRMTOP_SESSION_H
#define TRMTOP_SESSION_H

#include <stdint.h>
#include <sys/types.h>

#include "trmtop/err.h"
#include "trmtop/inject.h"
#include "trmtop/snapshot.h"
#include "trmtop/wire.h"

struct session;
struct trm_abort; /* abort.h: the caller's aborting signals */

struct session_opts {
	int attach_timeout_ms; /* give up after this long without HELLO */
	int verbose;           /* attach progress on stderr (inject.h) */
	struct trm_abort *abort; /* the caller's (abort.h), NULL: none */
	/* frames one session_step reads at most, so that other sessions and
	 * the terminal get their turn (0: 64; a step also stops after
	 * 256 KiB) */
	unsigned step_frames;
	/* the attach's progress (inject.h, struct inject_opts): trace its
	 * stages; where progress lines go (NULL: nowhere) */
	int trace;
	void (*progress)(void *ctx, const char *line);
	void *progress_ctx;
};

/* Attach to pid and connect to its agent: a first attach injects the
 * agent, a later one (the agent already loaded by an earlier trmtop)
 * only has it open a new session (inject_attach does both).  On success
 * *out is the open session.  Errors as inject_attach, always with a
 * message in err; -TRM_EINTR when aborted (nothing of trmtop's is left
 * running in the target). */
int session_open(pid_t pid, const struct session_opts *o,
		 struct session **out, struct trm_err *err);

/* The connection, read-only: the target (pid, executable, Python), the
 * agent's HELLO (tracing as found), how the attach went (path,
 * ns_to_hello, ns_held).  Its fds and reader are the session's. */
const struct inject_conn *session_conn(const struct session *s);

/* Send DETACH (best effort), close the pipes and free s (NULL: nothing). */
void session_close(struct session *s);

/* ---- non-blocking requests ------------------------------------------ */

enum session_op {
	SESSION_OP_NONE,
	SESSION_OP_STATS,    /* STATS_REQ -> STATS */
	SESSION_OP_START,    /* START (nframe, flags) -> STATE */
	SESSION_OP_STOP,     /* STOP -> STATE */
	SESSION_OP_SNAPSHOT, /* SNAPSHOT_REQ -> the snapshot stream */
};

/* Called after each chunk of traces with the traces read so far and the
 * total announced. */
typedef void session_progress_fn(uint64_t got, uint64_t total, void *arg);

struct session_req {
	enum session_op op;
	struct wire_start start; /* SESSION_OP_START: nframe, flags */
	/* SESSION_OP_SNAPSHOT: a fresh snapshot (snapshot_new()), filled as
	 * snapfetch.h says (traces and the meta the agent knows: the caller
	 * fills pid, executable, host, time_ns and python_version); on error
	 * it holds an unspecified part: free it */
	struct snapshot *into;
	/* SESSION_OP_SNAPSHOT: WIRE_SNAPSHOT_SAMPLED for the sampler's
	 * estimates (a sampled snapshot, snapshot.h), or 0; the session adds
	 * WIRE_SNAPSHOT_ESTIMATES (all four figures), and refuses an agent
	 * older than wire minor 2 (-TRM_EAGENT: it sends no block counts);
	 * from minor 3 it adds WIRE_SNAPSHOT_CHANGED too (the agent sends
	 * only the rows changed since the session's last sampled snapshot;
	 * the snapshot is complete all the same) */
	uint16_t snap_flags;
	session_progress_fn *progress; /* may be NULL */
	void *arg;
};

/* Send req.  0, or -EBUSY (a request is in flight), -EBADF (the session
 * was cancelled), -TRM_EPROTO (an earlier snapshot failed midway: the
 * connection is out of step; close it), -TRM_EAGENT (the agent went
 * away), -errno.  Nothing is in flight after an error. */
int session_request_async(struct session *s, const struct session_req *req,
			  struct trm_err *err);

/* What session_step returns, besides errors. */
enum session_status {
	SESSION_WAIT = 0,  /* in flight (or idle): poll session_fd first */
	SESSION_DONE = 1,  /* the request in flight has its whole reply */
	SESSION_AGAIN = 2, /* in flight, more already read: step again
			    * without waiting (one step reads a bounded
			    * number of frames: session_opts.step_frames) */
};

/* The fd to poll for POLLIN; -1 once the session is cancelled. */
int session_fd(const struct session *s);

/* The request in flight (SESSION_OP_NONE: none). */
enum session_op session_pending(const struct session *s);

/* Read what the agent has sent, without blocking.  With no request in
 * flight, events are dropped and a hung-up agent is reported.  Returns
 * enum session_status, or an error, after which nothing is in flight:
 *   -TRM_EAGENT   the agent answered ERROR (for a snapshot,
 *                 session_agent_error gives its code), or went away
 *                 ("pid N: the agent went away ...")
 *   -TRM_EINTR    the caller's abort came
 *   -TRM_EPROTO   a malformed reply (a snapshot's: at which byte)
 *   -ENOMEM, -errno */
int session_step(struct session *s, struct trm_err *err);

/* Block until the request in flight is done: each wait for a frame is
 * bounded by timeout_ms (< 0: no limit; -TRM_ETIMEOUT past it), and ends
 * on the abort.  0, or an error as session_step. */
int session_wait(struct session *s, int timeout_ms, struct trm_err *err);

/* The reply of the last START or STOP, STATS done. */
void session_last_state(const struct session *s, struct wire_state *st);
void session_last_stats(const struct session *s, struct wire_stats *st);

/* WIRE_ERR_* code of the last snapshot's ERROR reply, 0 if none. */
uint32_t session_agent_error(const struct session *s);

/* How long the agent held the GIL for the last complete snapshot: in all,
 * and its longest single hold (the target's pause). */
void session_gil_time(const struct session *s, uint64_t *total_ns,
		      uint64_t *max_ns);

/* ---- blocking requests ---------------------------------------------- */

/* Any request: session_request_async, then session_wait(timeout_ms). */
int session_request(struct session *s, const struct session_req *req,
		    int timeout_ms, struct trm_err *err);

/* Each: session_request_async, then session_wait(timeout_ms). */
int session_stats(struct session *s, struct wire_stats *out, int timeout_ms,
		  struct trm_err *err);
/* START with nframe and flags (WIRE_START_*); *st the STATE reply. */
int session_start(struct session *s, unsigned nframe, uint32_t flags,
		  struct wire_state *st, int timeout_ms, struct trm_err *err);
/* START as start says (with WIRE_START_SAMPLE: the sampler's size and
 * cap too); *st the STATE reply. */
int session_start_req(struct session *s, const struct wire_start *start,
		      struct wire_state *st, int timeout_ms,
		      struct trm_err *err);
int session_stop(struct session *s, struct wire_state *st, int timeout_ms,
		 struct trm_err *err);
/* A snapshot into `into` (a fresh snapshot_new()); progress may be NULL.
 * timeout_ms bounds each wait for a frame: the first comes only after
 * the agent copied every trace, which takes about as long as
 * tracemalloc.take_snapshot() in the target. */
int session_snapshot(struct session *s, struct snapshot *into,
		     session_progress_fn *progress, void *arg, int timeout_ms,
		     struct trm_err *err);

/* ---- the abort -------------------------------------------------------- */

/* Sleep ms milliseconds: 0, or -TRM_EINTR when the abort came. */
int session_sleep(struct session *s, int ms);

/* Non-zero once the abort has come (reading it now, without blocking). */
int session_aborted(struct session *s);

/* End the session after the abort, whatever it was waiting for:
 * inject_cancel (DETACH; the agent finishes the request at hand, then
 * undoes the tracing the session owns; what it still sends is dropped
 * until it hangs up), waiting at most timeout_ms and not past a second
 * abort.  0 the session has ended; -TRM_ETIMEOUT it has not yet;
 * -TRM_EINTR a second abort cut the wait short; -TRM_EAGENT the agent
 * was gone.  The session is then closed for requests (session_close
 * still frees it). */
int session_cancel(struct session *s, int timeout_ms);

#endif
