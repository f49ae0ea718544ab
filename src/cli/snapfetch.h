/* snapfetch.h - trmtop's side of SNAPSHOT_REQ (wire.h, "Snapshots"): send
 * the request on a connection, read the reply stream into a snapshot.
 *
 * A struct snapfetch holds the interning tables of one connection (wire id
 * -> string, frame, traceback, as the agent sent them): use one per
 * inject_conn, for the life of the connection, and free it with the
 * connection.  Each snapshot is a fresh struct snapshot with its own ids;
 * wire ids are mapped to them through flat arrays. */
#ifndef TRMTOP_CLI_SNAPFETCH_H
#define TRMTOP_CLI_SNAPFETCH_H

#include <stdint.h>

#include "trmtop/err.h"
#include "trmtop/inject.h"
#include "trmtop/snapshot.h"
#include "trmtop/wire.h"

struct snapfetch;

typedef void snapfetch_progress_fn(uint64_t got, uint64_t total, void *arg);

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
 *                 closed the connection
 *   -TRM_ETIMEOUT no frame within timeout_ms
 *   -TRM_EPROTO   a malformed stream; err says at which byte of the reply
 *                 (counted from its first frame header) and why
 *   -ENOMEM, -errno
 * On error, into holds an unspecified part of the snapshot: free it.  After
 * any error other than an ERROR reply, the connection is out of step with
 * the agent and every later take fails with -TRM_EPROTO: close it. */
int snapfetch_take(struct snapfetch *sf, struct inject_conn *c,
		   struct snapshot *into, snapfetch_progress_fn *progress,
		   void *arg, int timeout_ms, struct trm_err *err);

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
