/* wire.h - the pipe protocol between trmtop and the agent in the target.
 *
 * Built into both the agent (inside the target) and the CLI; libc only.
 *
 * Frames.  Every message is a frame: an 8-byte header followed by `len`
 * payload bytes, all integers little-endian:
 *
 *     u32 len      payload length, at most WIRE_MAX_PAYLOAD
 *     u16 type     enum wire_type
 *     u16 flags    per type, 0 unless stated
 *
 * Two pipes per connection, created inside the target with O_CLOEXEC:
 * "ctl" carries requests trmtop -> agent, "data" carries replies and
 * events agent -> trmtop.  Control frames are smaller than PIPE_BUF, so
 * each is written atomically.  A reader treats EOF or EPIPE as the peer's
 * detach.
 *
 * Versioning.  HELLO carries WIRE_PROTO_VERSION; a peer that sees a
 * different major version (high 16 bits) sends ERROR and detaches.  New
 * message types and new trailing payload fields are minor changes:
 * decoders ignore trailing bytes they do not know.
 *
 * Messages (payload layouts, fixed-size little-endian fields):
 *
 *   HELLO   agent->cli   u32 proto, u32 pid, u32 py_hexversion,
 *                        u32 traceback_limit, u8 tracing (enum
 *                        wire_tracing), u8 pad[3], u64 token
 *   STATS_REQ cli->agent (empty)
 *   STATS   agent->cli   u64 traced_current, u64 traced_peak,
 *                        u64 tracemalloc_memory, u64 traced_blocks,
 *                        u64 rss, u32 traceback_limit, u8 tracing, u8 pad[3]
 *                        (48 bytes); while the sampler runs, then:
 *                        u64 sample_size, u64 samples (sampled blocks
 *                        held), u64 sample_memory (the sampler's own),
 *                        u32 sample_flags (WIRE_SAMPLE_*), u32 pad (80)
 *   START   cli->agent   u32 nframe, u32 start_flags (WIRE_START_*); with
 *                        WIRE_START_SAMPLE, then: u64 sample_size (0: the
 *                        default, 512 KiB), u64 sample_max_memory (0: the
 *                        default cap, 64 MiB).  START with SAMPLE turns on
 *                        the sampler (docs/DESIGN.md §4.8), not
 *                        tracemalloc; without it, as before.
 *   STOP    cli->agent   (empty) stops what trmtop started: tracemalloc,
 *                        the sampler, or both
 *   STATE   agent->cli   reply to START/STOP: u8 tracing, u8 pad[3],
 *                        u32 traceback_limit (8 bytes); while the sampler
 *                        runs, then: u64 sample_size (16)
 *   DETACH  cli->agent   (empty) the agent closes both pipes, its thread
 *                        exits; tracing started with WIRE_START_KEEP stays
 *                        on, any other tracing trmtop started is stopped.
 *                        EOF on ctl means the same.
 *   ERROR   agent->cli   u32 code (WIRE_ERR_*), then UTF-8 text (not
 *                        NUL-terminated) up to the end of the payload
 *
 * Snapshots.  SNAPSHOT_REQ (cli->agent, empty payload) asks for all the
 * traces tracemalloc holds.  The reply is a stream of frames on data:
 *
 *     SNAP_HEAD, SNAP_STRINGS*, SNAP_FRAMES*, SNAP_TRACEBACKS*,
 *     SNAP_TRACES*, SNAP_END
 *
 * (each table kind in that order, any number of chunks of each, possibly
 * none), or a single ERROR instead of the whole stream: WIRE_ERR_NOT_TRACING
 * when tracemalloc is not tracing, WIRE_ERR_PYTHON when a Python call
 * failed, WIRE_ERR_NOMEM when the agent ran out of memory.  Nothing of a
 * failed request stays in the interning tables.
 *
 * Interning.  Strings (filenames), frames (string id, lineno) and
 * tracebacks (frame ids) are sent once per connection and referred to by
 * id afterwards.  Ids are dense u32 per kind, assigned 0, 1, 2 ... in the
 * order of first sending, and stay valid for the life of the connection:
 * the second snapshot on a connection sends only the strings, frames and
 * tracebacks the first did not.  A chunk may only refer to ids sent
 * before it (a frame to earlier strings, a traceback to earlier frames, a
 * trace to earlier tracebacks).
 *
 * Varints are unsigned LEB128 (7 bits a byte, low first, high bit = more).
 * Encoders write the shortest form; decoders take at most 10 bytes and
 * check the value against the field's range (u32 or u64).
 *
 *   SNAPSHOT_REQ    cli->agent  (empty)
 *   SNAP_HEAD       agent->cli  u64 traced_current, u64 traced_peak,
 *                   u64 tracemalloc_memory, u64 rss, u64 ntraces,
 *                   u32 py_hexversion, u32 traceback_limit,
 *                   u32 first_string, u32 first_frame, u32 first_traceback
 *                   (ids of this snapshot's first new entries = how many
 *                   of each the connection had before it), u32 new_strings,
 *                   u32 new_frames, u32 new_tracebacks, u8 tracing, u8 pad[3]
 *                   (76 bytes); a sampled snapshot then has u64
 *                   sample_size (84 bytes); a table reply (minor 3,
 *                   below) then has u64 table_rows, u32 table (enum
 *                   wire_table) (96 bytes)
 *   SNAP_STRINGS    u32 first_id, u32 count, count x { varint len, len
 *                   bytes }: ids first_id .. first_id+count-1.  UTF-8 (a
 *                   filename that was undecodable in the target arrives as
 *                   its raw bytes: surrogateescape), at most
 *                   WIRE_SNAP_STR_MAX bytes (longer names are cut).
 *   SNAP_FRAMES     u32 first_id, u32 count, count x { varint string_id,
 *                   varint lineno }
 *   SNAP_TRACEBACKS u32 first_id, u32 count, count x { varint total_nframe,
 *                   varint n, n x varint frame_id }: frames most recent
 *                   call first, n <= WIRE_SNAP_NFRAME_MAX, total_nframe as
 *                   tracemalloc reports it (>= n; n on 3.8)
 *   SNAP_TRACES     u32 first_index (of the first trace in this chunk,
 *                   counted from 0 in the snapshot), u32 count, count x
 *                   { varint size, varint traceback_id, varint domain }
 *   SNAP_END        u64 ntraces, u64 total_size (sum of sizes),
 *                   u32 nstrings, u32 nframes, u32 ntracebacks (table sizes
 *                   after this snapshot), u32 pad, u64 gil_ns (time the
 *                   agent held the GIL for this snapshot, in all),
 *                   u64 gil_max_ns (its longest single hold) (48 bytes)
 *
 * Chunk payloads stay under WIRE_SNAP_CHUNK bytes, except that one entry
 * too big for that goes alone in its chunk (< WIRE_SNAP_CHUNK_MAX).  The
 * agent copies the traces with the GIL held, in slices (it yields the GIL
 * between them, so the application keeps running), and encodes and writes
 * the frames without it.  The snapshot is the state of the one
 * _tracemalloc._get_traces() call at its start.
 *
 * Sampled snapshots.  SNAPSHOT_REQ with the frame flag
 * WIRE_SNAPSHOT_SAMPLED asks for the sampler's estimates instead of
 * tracemalloc's traces (ERROR NOT_TRACING when the sampler does not run);
 * SNAP_HEAD then carries sample_size, its traceback_limit is the
 * sampler's frame count, traced_current the estimated bytes in use,
 * traced_peak 0, tracemalloc_memory the sampler's own memory, tracing
 * tracemalloc's state.  The traces are one per traceback (the
 * "<no Python frame>" one included: a traceback of one frame of that
 * name, line 0), with domain 0:
 *
 *  - minor 1, or without WIRE_SNAPSHOT_ESTIMATES: each SNAP_TRACES
 *    entry is a traceback's estimated in-use bytes (size), one per
 *    traceback with a non-zero estimate; ntraces counts entries, not
 *    blocks;
 *  - minor 2, SNAPSHOT_REQ flags SAMPLED | ESTIMATES: every SNAP_TRACES
 *    chunk has the frame flag WIRE_TRACES_ESTIMATES and its entries are
 *    { varint size, varint traceback_id, varint domain, varint count,
 *    varint alloc_size, varint alloc_count }: the bytes and blocks in use
 *    and those allocated since sampling started (estimates, blocks
 *    rounded to whole blocks; alloc_size >= size, alloc_count >= count,
 *    count > 0 when size > 0), one entry per traceback with a non-zero
 *    allocated estimate (in use or not).  An older agent ignores
 *    ESTIMATES (trmtop asks a minor-2 agent only); an older trmtop never
 *    sets it and gets the minor-1 form.
 *
 * Only the changed rows (minor 3).  SNAPSHOT_REQ flags SAMPLED |
 * ESTIMATES | CHANGED ask for a table reply: SNAP_HEAD is 96 bytes, its
 * table says which kind and table_rows how many rows the whole table has
 * (a row: a traceback id and its four figures, each traceback id at most
 * once, one per traceback with a non-zero allocated estimate; tracebacks
 * the agent holds apart but that intern to the same id, e.g. two files
 * compiled under one name, are one row, their figures summed):
 *
 *  - WIRE_TABLE_FULL: the entries are the whole table (ntraces ==
 *    table_rows); it replaces what the receiver held.  The agent sends it
 *    for the first table reply of a connection and after the sampler was
 *    restarted since the last one (its tracebacks are all new);
 *  - WIRE_TABLE_DELTA: the entries are the rows whose figures changed
 *    since the last table reply on this connection, new rows included;
 *    every other row is as that reply left it (rows are never removed
 *    while the sampler runs; a row whose in-use figures fell to 0 is
 *    sent, with its allocated ones).
 *
 * In both, traced_current is the in-use total of the whole table and
 * SNAP_END's total_size the sum of the entries sent.  The receiver
 * applies the entries and checks that its table then has table_rows rows
 * and traced_current bytes in use, or refuses the reply (and the
 * connection: out of step).  Neither side changes its table on an ERROR
 * reply.  An agent older than minor 3 ignores CHANGED and sends a
 * 84-byte head and traces (table NONE), which the receiver takes as
 * before; an older trmtop never sets CHANGED.  CHANGED without SAMPLED
 * and ESTIMATES is ignored.
 *
 * Minor versions: 1 the sampler (START's SAMPLE, STATS's and STATE's
 * sampler fields, SNAPSHOT_REQ's SAMPLED); 2 the estimates above; 3 the
 * table replies (CHANGED).
 */
#ifndef TRMTOP_WIRE_H
#define TRMTOP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_PROTO_VERSION 0x00010003u /* minor 1: the sampler; 2: its
					  estimates in sampled snapshots;
					  3: only the changed rows */
#define WIRE_HDR_SIZE 8u
#define WIRE_MAX_PAYLOAD (64u << 20)
#define WIRE_CTL_MAX 512u /* every control frame fits (< PIPE_BUF) */

enum wire_type {
	WIRE_HELLO = 1,
	WIRE_STATS_REQ = 2,
	WIRE_STATS = 3,
	WIRE_START = 4,
	WIRE_STOP = 5,
	WIRE_STATE = 6,
	WIRE_DETACH = 7,
	WIRE_ERROR = 8,
	WIRE_SNAPSHOT_REQ = 9,
	WIRE_SNAP_HEAD = 10,
	WIRE_SNAP_STRINGS = 11,
	WIRE_SNAP_FRAMES = 12,
	WIRE_SNAP_TRACEBACKS = 13,
	WIRE_SNAP_TRACES = 14,
	WIRE_SNAP_END = 15,
};

/* SNAP_HEAD table: what the traces of a sampled reply are (minor 3) */
enum wire_table {
	WIRE_TABLE_NONE = 0,  /* traces, as before minor 3 (not sent) */
	WIRE_TABLE_FULL = 1,  /* the whole table: one row per traceback */
	WIRE_TABLE_DELTA = 2, /* the rows changed since the last table reply */
};

enum wire_tracing {
	WIRE_TRACING_OFF = 0,
	WIRE_TRACING_TRMTOP = 1,      /* started by trmtop */
	WIRE_TRACING_APPLICATION = 2, /* started by the application */
};

#define WIRE_START_KEEP 1u /* keep tracing after the connection ends */
#define WIRE_START_SAMPLE 2u /* the sampler, not tracemalloc */
#define WIRE_SNAPSHOT_SAMPLED 1u /* SNAPSHOT_REQ frame flag: the sampler's */
#define WIRE_SNAPSHOT_ESTIMATES 2u /* SNAPSHOT_REQ frame flag (with SAMPLED,
				      minor 2): all four estimates */
#define WIRE_SNAPSHOT_CHANGED 4u /* SNAPSHOT_REQ frame flag (with SAMPLED
				    and ESTIMATES, minor 3): a table reply,
				    only the rows changed since the last */
#define WIRE_TRACES_ESTIMATES 1u /* SNAP_TRACES frame flag: its entries
				    carry the estimates (minor 2) */

#define WIRE_SAMPLE_CAPPED 1u /* STATS sample_flags: the sampler's memory
				 reached its cap; new samples are dropped */

enum wire_errcode {
	WIRE_ERR_UNKNOWN = 1,  /* unknown request type */
	WIRE_ERR_PYTHON = 2,   /* a Python call failed; text says which */
	WIRE_ERR_BUSY = 3,     /* another trmtop is connected */
	WIRE_ERR_VERSION = 4,  /* protocol version mismatch */
	WIRE_ERR_NOT_TRACING = 5, /* SNAPSHOT_REQ while tracemalloc is off */
	WIRE_ERR_NOMEM = 6,    /* the agent ran out of memory */
	WIRE_ERR_ENDING = 7,   /* the connected trmtop has gone, its session
				* is ending: try again in a moment */
};

struct wire_hello {
	uint32_t proto, pid, py_hexversion, traceback_limit;
	uint8_t tracing;
	uint64_t token;
};

struct wire_stats {
	uint64_t traced_current, traced_peak, tracemalloc_memory;
	uint64_t traced_blocks, rss;
	uint32_t traceback_limit;
	uint8_t tracing;
	/* the sampler's; all 0 when it does not run (not sent then) */
	uint64_t sample_size, samples, sample_memory;
	uint32_t sample_flags;
};

struct wire_start {
	uint32_t nframe, flags;
	/* sent with WIRE_START_SAMPLE only; 0: the agent's defaults */
	uint64_t sample_size, sample_max_memory;
};

struct wire_state {
	uint8_t tracing;
	uint32_t traceback_limit;
	uint64_t sample_size; /* 0: the sampler does not run (not sent) */
};

struct wire_error {
	uint32_t code;
	char text[256]; /* NUL-terminated, truncated */
};

#define WIRE_SNAP_CHUNK (256u << 10)    /* soft limit of a chunk payload */
#define WIRE_SNAP_CHUNK_MAX (1u << 20)  /* hard limit of a chunk payload */
#define WIRE_SNAP_STR_MAX 65535u        /* bytes of one string */
#define WIRE_SNAP_NFRAME_MAX 65535u     /* frames of one traceback */
#define WIRE_SNAP_HEAD_LEN 76u
#define WIRE_SNAP_HEAD_SAMPLE_LEN 84u
#define WIRE_SNAP_HEAD_TABLE_LEN 96u
#define WIRE_SNAP_END_LEN 48u

struct wire_snap_head {
	uint64_t traced_current, traced_peak, tracemalloc_memory, rss;
	uint64_t ntraces;
	uint32_t py_hexversion, traceback_limit;
	uint32_t first_string, first_frame, first_traceback;
	uint32_t new_strings, new_frames, new_tracebacks;
	uint8_t tracing;
	uint64_t sample_size; /* 0: exact (tracemalloc's traces, not sent) */
	/* a reply to WIRE_SNAPSHOT_CHANGED (minor 3; not sent when table is
	 * WIRE_TABLE_NONE): rows of the whole table, and the reply's kind */
	uint64_t table_rows;
	uint32_t table; /* enum wire_table */
};

struct wire_snap_end {
	uint64_t ntraces, total_size;
	uint32_t nstrings, nframes, ntracebacks;
	uint64_t gil_ns, gil_max_ns;
};

/* A parsed frame; payload points into the reader's buffer and is valid
 * until the next wire_read_frame on that reader. */
struct wire_msg {
	uint16_t type, flags;
	uint32_t len;
	const uint8_t *payload;
};

/* Encoders write a whole frame (header + payload) into buf and return its
 * size, or -ENOSPC when cap is too small. */
int wire_enc_hello(uint8_t *buf, size_t cap, const struct wire_hello *m);
int wire_enc_stats(uint8_t *buf, size_t cap, const struct wire_stats *m);
int wire_enc_start(uint8_t *buf, size_t cap, const struct wire_start *m);
int wire_enc_state(uint8_t *buf, size_t cap, const struct wire_state *m);
/* text may be NULL (empty); it is sent whole (-ENOSPC if it does not fit). */
int wire_enc_error(uint8_t *buf, size_t cap, uint32_t code, const char *text);
/* A frame with an empty payload (STATS_REQ, STOP, DETACH). */
int wire_enc_empty(uint8_t *buf, size_t cap, uint16_t type);
/* SNAPSHOT_REQ with its frame flags (WIRE_SNAPSHOT_*). */
int wire_enc_snapshot_req(uint8_t *buf, size_t cap, uint16_t flags);

/* Decoders check the payload length (shorter than the layout: -EPROTO;
 * longer: extra bytes ignored) and fill the struct.  0 or -EPROTO. */
int wire_dec_hello(const struct wire_msg *msg, struct wire_hello *m);
int wire_dec_stats(const struct wire_msg *msg, struct wire_stats *m);
int wire_dec_start(const struct wire_msg *msg, struct wire_start *m);
int wire_dec_state(const struct wire_msg *msg, struct wire_state *m);
int wire_dec_error(const struct wire_msg *msg, struct wire_error *m);

int wire_enc_snap_head(uint8_t *buf, size_t cap, const struct wire_snap_head *m);
int wire_enc_snap_end(uint8_t *buf, size_t cap, const struct wire_snap_end *m);
int wire_dec_snap_head(const struct wire_msg *msg, struct wire_snap_head *m);
int wire_dec_snap_end(const struct wire_msg *msg, struct wire_snap_end *m);

/* ---- snapshot chunks (SNAP_STRINGS, _FRAMES, _TRACEBACKS, _TRACES) ----
 *
 * Encoding: a chunk is built in place in a caller's buffer, entry by
 * entry, with no allocation:
 *
 *     wire_chunk_begin(&ck, buf, cap, WIRE_SNAP_TRACES, first);
 *     while (...) {
 *             rc = wire_chunk_add_trace(&ck, size, tb, domain);
 *             if (rc == -ENOSPC) {           // full: send it, start anew
 *                     write(wire_chunk_finish(&ck) bytes of buf);
 *                     wire_chunk_begin(&ck, buf, cap, type, first + n);
 *                     rc = wire_chunk_add_trace(...);
 *             }
 *     }
 *
 * An add refuses (-ENOSPC) an entry that would take the payload past
 * WIRE_SNAP_CHUNK unless the chunk is empty, and one that does not fit in
 * cap at all; an entry that cannot fit even in an empty chunk of
 * WIRE_SNAP_CHUNK_MAX is -E2BIG (strings longer than WIRE_SNAP_STR_MAX,
 * tracebacks longer than WIRE_SNAP_NFRAME_MAX).  A buffer of
 * WIRE_HDR_SIZE + WIRE_SNAP_CHUNK_MAX bytes takes every valid entry. */
struct wire_chunk {
	uint8_t *buf;
	size_t cap, len; /* len: bytes used, header included */
	uint32_t first, count;
	uint16_t type;
	uint16_t flags;  /* the frame's (WIRE_TRACES_ESTIMATES) */
};

/* The estimates of a sampled trace besides its size (the bytes in use):
 * what SNAP_TRACES with WIRE_TRACES_ESTIMATES carries. */
struct wire_trace_est {
	uint64_t count;       /* blocks in use */
	uint64_t alloc_size;  /* bytes allocated since sampling started */
	uint64_t alloc_count; /* blocks allocated */
};

void wire_chunk_begin(struct wire_chunk *ck, uint8_t *buf, size_t cap,
		      uint16_t type, uint32_t first);
int wire_chunk_add_string(struct wire_chunk *ck, const void *s, size_t len);
int wire_chunk_add_frame(struct wire_chunk *ck, uint32_t string_id,
			 uint32_t lineno);
int wire_chunk_add_traceback(struct wire_chunk *ck, const uint32_t *frames,
			     uint32_t n, uint32_t total_nframe);
int wire_chunk_add_trace(struct wire_chunk *ck, uint64_t size,
			 uint32_t traceback_id, uint32_t domain);
/* A trace with its estimates: the chunk becomes a WIRE_TRACES_ESTIMATES
 * one (-EINVAL: mixing the two kinds of entry in one chunk). */
int wire_chunk_add_trace_est(struct wire_chunk *ck, uint64_t size,
			     uint32_t traceback_id, uint32_t domain,
			     const struct wire_trace_est *e);
/* Write the frame header and counts; returns the frame size (header
 * included) to send from buf, 0 when the chunk has no entry. */
size_t wire_chunk_finish(struct wire_chunk *ck);

/* Decoding: a cursor over one chunk payload.  open checks the type and
 * that count entries can fit in the remaining bytes (each entry takes at
 * least 1 byte for strings, 2 for frames and tracebacks, 3 for traces).
 * Every next reads one entry: 1, 0 when all count entries were read, or
 * -EPROTO (truncated entry, over-long varint, value out of range) with
 * the cursor at the offending entry.  Never reads past msg->len. */
struct wire_chunk_rd {
	const uint8_t *base, *p, *end;
	uint32_t first, count, done;
	uint16_t type, flags;
};

int wire_chunk_open(const struct wire_msg *msg, struct wire_chunk_rd *rd);
/* *s points into the payload (not NUL-terminated). */
int wire_chunk_next_string(struct wire_chunk_rd *rd, const uint8_t **s,
			   uint32_t *len);
int wire_chunk_next_frame(struct wire_chunk_rd *rd, uint32_t *string_id,
			  uint32_t *lineno);
/* frames receives up to cap ids (n > cap is -EPROTO). */
int wire_chunk_next_traceback(struct wire_chunk_rd *rd, uint32_t *frames,
			      uint32_t cap, uint32_t *n,
			      uint32_t *total_nframe);
int wire_chunk_next_trace(struct wire_chunk_rd *rd, uint64_t *size,
			  uint32_t *traceback_id, uint32_t *domain);
/* The same, with the estimates of a WIRE_TRACES_ESTIMATES chunk in *e
 * (all 0 for a chunk without them; next_trace skips them). */
int wire_chunk_next_trace_est(struct wire_chunk_rd *rd, uint64_t *size,
			      uint32_t *traceback_id, uint32_t *domain,
			      struct wire_trace_est *e);
/* Offset of the cursor in the payload. */
size_t wire_chunk_offset(const struct wire_chunk_rd *rd);

/* ---- interning tables (the agent's side of a connection) ------------
 *
 * Content -> dense id, for strings, frames and tracebacks.  Allocates per
 * new entry (amortised), never per lookup.  Not thread-safe. */
struct wire_intern;

/* NULL and errno on allocation failure; free accepts NULL. */
struct wire_intern *wire_intern_new(void);
void wire_intern_free(struct wire_intern *t);

/* Look up or add.  1 when added (*id is the next id of its kind), 0 when
 * found, -ENOMEM, -E2BIG (over WIRE_SNAP_STR_MAX / WIRE_SNAP_NFRAME_MAX or
 * 2^32-1 entries), -EINVAL (a frame or traceback referring to an unknown
 * id). */
int wire_intern_str(struct wire_intern *t, const void *s, size_t len,
		    uint32_t *id);
int wire_intern_frame(struct wire_intern *t, uint32_t string_id,
		      uint32_t lineno, uint32_t *id);
int wire_intern_traceback(struct wire_intern *t, const uint32_t *frames,
			  uint32_t n, uint32_t total_nframe, uint32_t *id);

struct wire_intern_counts {
	uint32_t strings, frames, tracebacks;
};
void wire_intern_counts(const struct wire_intern *t,
			struct wire_intern_counts *c);
/* Forget every entry added since counts were taken (ids >= c's). */
void wire_intern_rollback(struct wire_intern *t,
			  const struct wire_intern_counts *c);
/* Entries by id (the id must exist).  Borrowed until the next add. */
const uint8_t *wire_intern_get_str(const struct wire_intern *t, uint32_t id,
				   uint32_t *len);
void wire_intern_get_frame(const struct wire_intern *t, uint32_t id,
			   uint32_t *string_id, uint32_t *lineno);
const uint32_t *wire_intern_get_traceback(const struct wire_intern *t,
					  uint32_t id, uint32_t *n,
					  uint32_t *total_nframe);
/* Bytes of memory the tables hold. */
size_t wire_intern_memory(const struct wire_intern *t);

/* Parse one frame header from buf[0..len).  Returns the whole frame size
 * when complete (and fills msg), 0 when more bytes are needed, -EPROTO when
 * the header is invalid (len > WIRE_MAX_PAYLOAD). */
long wire_parse_frame(const uint8_t *buf, size_t len, struct wire_msg *msg);

/* Write all of buf to fd, looping on EINTR and short writes (a
 * non-blocking fd is waited for with poll).  0 or -errno (-EPIPE when the
 * reader is gone; the caller blocks or ignores SIGPIPE). */
int wire_write_all(int fd, const void *buf, size_t len);

/* A buffered frame reader over a blocking or non-blocking fd. */
struct wire_reader {
	int fd;
	uint8_t *buf;
	size_t cap, len, off;
	size_t max_payload; /* frames larger than this are -EPROTO */
	/* wire_reader_set_wake; wake == NULL: none (a zeroed reader) */
	int wake_fd;
	int (*wake)(void *arg);
	void *wake_arg;
};

/* max_payload 0 (or above WIRE_MAX_PAYLOAD) means WIRE_MAX_PAYLOAD.  init
 * allocates nothing; the buffer grows on demand and fini frees it (fini
 * accepts NULL and leaves fd open). */
void wire_reader_init(struct wire_reader *r, int fd, size_t max_payload);
void wire_reader_fini(struct wire_reader *r);

/* Make every wait of wire_read_frame on r interruptible: wake_fd is polled
 * with r's fd; wake(arg) is called before each poll and each time wake_fd
 * is readable (it must make wake_fd unreadable again, e.g. by reading it),
 * and a non-zero return ends the read with -EINTR, checked before the
 * data (a stream that never pauses is interrupted too).  The part of a
 * frame read so far stays buffered.  Frames already buffered are
 * returned without a poll, and without asking wake.  (trmtop's CLI passes
 * its signalfd: inject.h, "Waiting".) */
void wire_reader_set_wake(struct wire_reader *r, int wake_fd,
			  int (*wake)(void *arg), void *arg);

/* Read the next frame.  timeout_ms < 0 waits for ever (poll).  Returns 1
 * with msg filled, 0 on EOF at a frame boundary, -ETIMEDOUT, -EPROTO
 * (bad header, or EOF inside a frame), -EINTR (the wake function said
 * so), -ENOMEM or -errno. */
int wire_read_frame(struct wire_reader *r, struct wire_msg *msg, int timeout_ms);

#endif
