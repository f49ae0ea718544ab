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
 *   START   cli->agent   u32 nframe, u32 start_flags (WIRE_START_*)
 *   STOP    cli->agent   (empty)
 *   STATE   agent->cli   reply to START/STOP: u8 tracing, u8 pad[3],
 *                        u32 traceback_limit
 *   DETACH  cli->agent   (empty) the agent closes both pipes, its thread
 *                        exits; tracing started with WIRE_START_KEEP stays
 *                        on, any other tracing trmtop started is stopped.
 *                        EOF on ctl means the same.
 *   ERROR   agent->cli   u32 code (WIRE_ERR_*), then UTF-8 text (not
 *                        NUL-terminated) up to the end of the payload
 */
#ifndef TRMTOP_WIRE_H
#define TRMTOP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_PROTO_VERSION 0x00010000u
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
};

enum wire_tracing {
	WIRE_TRACING_OFF = 0,
	WIRE_TRACING_TRMTOP = 1,      /* started by trmtop */
	WIRE_TRACING_APPLICATION = 2, /* started by the application */
};

#define WIRE_START_KEEP 1u /* keep tracing after the connection ends */

enum wire_errcode {
	WIRE_ERR_UNKNOWN = 1,  /* unknown request type */
	WIRE_ERR_PYTHON = 2,   /* a Python call failed; text says which */
	WIRE_ERR_BUSY = 3,     /* another trmtop is connected */
	WIRE_ERR_VERSION = 4,  /* protocol version mismatch */
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
};

struct wire_start {
	uint32_t nframe, flags;
};

struct wire_state {
	uint8_t tracing;
	uint32_t traceback_limit;
};

struct wire_error {
	uint32_t code;
	char text[256]; /* NUL-terminated, truncated */
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

/* Decoders check the payload length (shorter than the layout: -EPROTO;
 * longer: extra bytes ignored) and fill the struct.  0 or -EPROTO. */
int wire_dec_hello(const struct wire_msg *msg, struct wire_hello *m);
int wire_dec_stats(const struct wire_msg *msg, struct wire_stats *m);
int wire_dec_start(const struct wire_msg *msg, struct wire_start *m);
int wire_dec_state(const struct wire_msg *msg, struct wire_state *m);
int wire_dec_error(const struct wire_msg *msg, struct wire_error *m);

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
};

/* max_payload 0 (or above WIRE_MAX_PAYLOAD) means WIRE_MAX_PAYLOAD.  init
 * allocates nothing; the buffer grows on demand and fini frees it (fini
 * accepts NULL and leaves fd open). */
void wire_reader_init(struct wire_reader *r, int fd, size_t max_payload);
void wire_reader_fini(struct wire_reader *r);

/* Read the next frame.  timeout_ms < 0 waits for ever (poll).  Returns 1
 * with msg filled, 0 on EOF at a frame boundary, -ETIMEDOUT, -EPROTO
 * (bad header, or EOF inside a frame), -ENOMEM or -errno. */
int wire_read_frame(struct wire_reader *r, struct wire_msg *msg, int timeout_ms);

#endif
