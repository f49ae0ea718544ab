/* snapfetch.h - trmtop's side of SNAPSHOT_REQ (wire.h, "Snapshots"): send
 * the request on a connection, read the reply stream into a snapshot.
 *
 * A struct snapfetch holds the interning tables of one connection (wire id
 * -> string, frame, traceback, as the agent sent them): use one per
 * inject_conn, for the life of the connection, and free it with the
 * connection.  Each snapshot is a fresh struct snapshot with its own ids;
 * wire ids are mapped to them through flat arrays.
 *
 * The target is hostile: what it announces and sends is capped, so that
 * it cannot make trmtop (root) grow without limit.  The caps are generous
 * for real heaps (docs/DESIGN.md, "Caps on a snapshot reply"); a reply
 * past one is refused (-TRM_EPROTO, saying which cap) before trmtop
 * allocates for it. */
#ifndef TRMTOP_CLI_SNAPFETCH_H
#define TRMTOP_CLI_SNAPFETCH_H

#include <stdint.h>

#include "trmtop/err.h"
#include "trmtop/inject.h"
#include "trmtop/snapshot.h"
#include "trmtop/wire.h"

struct snapfetch;

typedef void snapfetch_progress_fn(uint64_t got, uint64_t total, void *arg);

/* Caps: per reply (traces, bytes) and per connection (the interning
 * tables, which live as long as it). */
struct snapfetch_limits {
	uint64_t traces;       /* traces in one reply */
	uint64_t reply_bytes;  /* bytes of one reply, frame headers included */
	uint32_t strings;      /* strings of the connection */
	uint64_t string_bytes; /* bytes of all those strings */
	uint32_t frames;       /* frames of the connection */
	uint32_t tracebacks;   /* tracebacks of the connection */
	uint64_t frame_ids;    /* frame ids of all those tracebacks */
};

#define SNAPFETCH_MAX_TRACES (1ull << 26)        /* 67,108,864 */
#define SNAPFETCH_MAX_REPLY_BYTES (4ull << 30)   /* 4 GiB */
#define SNAPFETCH_MAX_STRINGS (1u << 22)         /* 4,194,304 */
#define SNAPFETCH_MAX_STRING_BYTES (1ull << 30)  /* 1 GiB */
#define SNAPFETCH_MAX_FRAMES (1u << 26)
#define SNAPFETCH_MAX_TRACEBACKS (1u << 26)
#define SNAPFETCH_MAX_FRAME_IDS (1ull << 28)     /* 268,435,456 */

/* NULL and errno on allocation failure; free accepts NULL. */
struct snapfetch *snapfetch_new(void);
void snapfetch_free(struct snapfetch *sf);

/* Send SNAPSHOT_REQ on c and read the reply into `into`, which must be a
 * fresh snapshot (snapshot_new()).  Fills into's traces and, in its meta,
 * traceback_limit, traced_current, traced_peak, rss, tracemalloc_memory
 * and py_hexversion; the caller fills pid, executable, host, time_ns and
 * python_version.  progress (may be NULL) is called after each chunk of
 * traces with the traces read so far and the total.  timeout_ms bounds
 * each wait for a frame (< 0: no limit); the first frame comes only after
 * the agent copied every trace, which takes about as long as
 * tracemalloc.take_snapshot() in the target.
 *
 * Returns 0, or:
 *   -TRM_EAGENT   the agent answered ERROR (snapfetch_agent_error gives
 *                 its WIRE_ERR_* code, e.g. WIRE_ERR_NOT_TRACING), or
 *                 went away (EOF, EPIPE: snapfetch_agent_error is 0)
 *   -TRM_EINTR    c->rd's wake function said stop (an aborting signal:
 *                 inject.h, "Waiting")
 *   -TRM_ETIMEOUT no frame within timeout_ms
 *   -TRM_EPROTO   a malformed stream, or one past a cap; err says at
 *                 which byte of the reply (counted from its first frame
 *                 header) and why
 *   -ENOMEM, -errno
 * On error, into holds an unspecified part of the snapshot: free it.  After
 * any error other than an ERROR reply, the connection is out of step with
 * the agent and every later take fails with -TRM_EPROTO: close it. */
int snapfetch_take(struct snapfetch *sf, struct inject_conn *c,
		   struct snapshot *into, snapfetch_progress_fn *progress,
		   void *arg, int timeout_ms, struct trm_err *err);

/* Replace the caps (snapfetch_new sets the SNAPFETCH_MAX_* ones): for
 * tests and the fuzzer. */
void snapfetch_set_limits(struct snapfetch *sf,
			  const struct snapfetch_limits *lim);

/* WIRE_ERR_* code of the last ERROR reply, 0 when the last take got none. */
uint32_t snapfetch_agent_error(const struct snapfetch *sf);

/* How long the agent held the GIL for the last complete snapshot: in all,
 * and its longest single hold (the target's pause). */
void snapfetch_gil_time(const struct snapfetch *sf, uint64_t *total_ns,
			uint64_t *max_ns);

/* The I/O-free part of snapfetch_take, for tests and the fuzzer: begin
 * a reply into a fresh snapshot, then feed its frames one by one (payload
 * as wire_read_frame or wire_parse_frame give it).  feed returns 0 for
 * more, 1 after a valid SNAP_END (meta filled), or an error as above. */
int snapfetch_begin(struct snapfetch *sf, struct snapshot *into,
		    snapfetch_progress_fn *progress, void *arg);
int snapfetch_feed(struct snapfetch *sf, const struct wire_msg *msg,
		   struct trm_err *err);

#endif
