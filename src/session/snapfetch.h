/* snapfetch.h - trmtop's side of a SNAPSHOT_REQ reply (wire.h,
 * "Snapshots"): the reply stream's frames, fed one by one, into a
 * snapshot.  No I/O: the session (session.h) sends the request and reads
 * the frames; the unit tests and the fuzzer feed them from buffers.
 * Private to src/session/ and its tests.
 *
 * A struct snapfetch holds the interning tables of one connection (wire id
 * -> string, frame, traceback, as the agent sent them), and the rows of
 * its sampled table replies (wire.h, "Only the changed rows": traceback id
 * -> four estimates, a delta applied to them, a complete snapshot made of
 * them): the session keeps one for its life.  Each snapshot is a fresh struct snapshot with its own
 * ids; wire ids are mapped to them through flat arrays.
 *
 * The target is hostile: what it announces and sends is capped, so that
 * it cannot make trmtop (root) grow without limit.  The caps are generous
 * for real heaps (docs/DESIGN.md, "Caps on a snapshot reply"); a reply
 * past one is refused (-TRM_EPROTO, saying which cap) before trmtop
 * allocates for it. */
#ifndef TRMTOP_SESSION_SNAPFETCH_H
#define TRMTOP_SESSION_SNAPFETCH_H

#include <stdint.h>

#include "trmtop/err.h"
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

/* Replace the caps (snapfetch_new sets the SNAPFETCH_MAX_* ones): for
 * tests and the fuzzer. */
void snapfetch_set_limits(struct snapfetch *sf,
			  const struct snapfetch_limits *lim);

/* WIRE_ERR_* code of the last ERROR reply, 0 when the last reply had none. */
uint32_t snapfetch_agent_error(const struct snapfetch *sf);

/* How long the agent held the GIL for the last complete snapshot: in all,
 * and its longest single hold (the target's pause). */
void snapfetch_gil_time(const struct snapfetch *sf, uint64_t *total_ns,
			uint64_t *max_ns);

/* Begin a reply into `into`, a fresh snapshot (snapshot_new()), then feed
 * its frames one by one (payload as wire_read_frame or wire_parse_frame
 * give it).  On SNAP_END, into's traces are filled and, in its meta,
 * traceback_limit, traced_current, traced_peak, rss, tracemalloc_memory
 * and py_hexversion; a sampled reply (SNAP_HEAD's sample_size) makes into
 * a sampled snapshot, its traces with their estimates (wire.h, "Sampled
 * snapshots"); the caller fills pid, executable, host, time_ns and
 * python_version.  progress (may be NULL) is called after each chunk of
 * traces with the traces read so far and the total.
 *
 * begin: 0, or -TRM_EPROTO when the connection is out of step after an
 * earlier error.  feed returns 0 for more, 1 after a valid SNAP_END (meta
 * filled), or:
 *   -TRM_EAGENT   the agent answered ERROR (snapfetch_agent_error gives
 *                 its WIRE_ERR_* code, e.g. WIRE_ERR_NOT_TRACING)
 *   -TRM_EPROTO   a malformed stream, or one past a cap; err says at
 *                 which byte of the reply (counted from its first frame
 *                 header) and why
 *   -ENOMEM
 * On error, into holds an unspecified part of the snapshot: free it.  After
 * any error other than an ERROR reply instead of the whole stream, the
 * connection is out of step with the agent and every later begin fails
 * with -TRM_EPROTO. */
int snapfetch_begin(struct snapfetch *sf, struct snapshot *into,
		    snapfetch_progress_fn *progress, void *arg);
int snapfetch_feed(struct snapfetch *sf, const struct wire_msg *msg,
		   struct trm_err *err);

/* The reply was cut short (the reader failed): the connection is out of
 * step, as after a feed error. */
void snapfetch_abandon(struct snapfetch *sf);

/* Bytes of the current reply fed so far (frame headers included). */
uint64_t snapfetch_offset(const struct snapfetch *sf);

#endif
