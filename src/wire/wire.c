/* wire.c - framing, encoders, decoders and the frame reader of wire.h.
 *
 * libc only: this file is compiled into the agent (inside the target) as
 * well as into the CLI.  Decoders read through explicit lengths and never
 * past the end of a payload. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trmtop/wire.h"
#include "wire_int.h"

/* Payload sizes of the fixed layouts (see wire.h). */
#define HELLO_LEN 28u
#define STATS_LEN 48u
#define STATS_SAMPLE_LEN 80u  /* with the sampler's fields */
#define START_LEN 8u
#define START_SAMPLE_LEN 24u  /* with WIRE_START_SAMPLE's fields */
#define STATE_LEN 8u
#define STATE_SAMPLE_LEN 16u  /* with sample_size */
#define ERROR_MIN 4u

#define READER_MIN_CAP 4096u

int wire_enc_hello(uint8_t *buf, size_t cap, const struct wire_hello *m)
{
	uint8_t *p = wi_begin_frame(buf, cap, WIRE_HELLO, HELLO_LEN);
	if (!p)
		return -ENOSPC;
	wi_put_u32(p, m->proto);
	wi_put_u32(p + 4, m->pid);
	wi_put_u32(p + 8, m->py_hexversion);
	wi_put_u32(p + 12, m->traceback_limit);
	p[16] = m->tracing;
	p[17] = p[18] = p[19] = 0;
	wi_put_u64(p + 20, m->token);
	return (int)(WIRE_HDR_SIZE + HELLO_LEN);
}

int wire_enc_stats(uint8_t *buf, size_t cap, const struct wire_stats *m)
{
	size_t len = m->sample_size ? STATS_SAMPLE_LEN : STATS_LEN;
	uint8_t *p = wi_begin_frame(buf, cap, WIRE_STATS, len);
	if (!p)
		return -ENOSPC;
	wi_put_u64(p, m->traced_current);
	wi_put_u64(p + 8, m->traced_peak);
	wi_put_u64(p + 16, m->tracemalloc_memory);
	wi_put_u64(p + 24, m->traced_blocks);
	wi_put_u64(p + 32, m->rss);
	wi_put_u32(p + 40, m->traceback_limit);
	p[44] = m->tracing;
	p[45] = p[46] = p[47] = 0;
	if (m->sample_size) {
		wi_put_u64(p + 48, m->sample_size);
		wi_put_u64(p + 56, m->samples);
		wi_put_u64(p + 64, m->sample_memory);
		wi_put_u32(p + 72, m->sample_flags);
		wi_put_u32(p + 76, 0);
	}
	return (int)(WIRE_HDR_SIZE + len);
}

int wire_enc_start(uint8_t *buf, size_t cap, const struct wire_start *m)
{
	size_t len = m->flags & WIRE_START_SAMPLE ? START_SAMPLE_LEN : START_LEN;
	uint8_t *p = wi_begin_frame(buf, cap, WIRE_START, len);
	if (!p)
		return -ENOSPC;
	wi_put_u32(p, m->nframe);
	wi_put_u32(p + 4, m->flags);
	if (len == START_SAMPLE_LEN) {
		wi_put_u64(p + 8, m->sample_size);
		wi_put_u64(p + 16, m->sample_max_memory);
	}
	return (int)(WIRE_HDR_SIZE + len);
}

int wire_enc_state(uint8_t *buf, size_t cap, const struct wire_state *m)
{
	size_t len = m->sample_size ? STATE_SAMPLE_LEN : STATE_LEN;
	uint8_t *p = wi_begin_frame(buf, cap, WIRE_STATE, len);
	if (!p)
		return -ENOSPC;
	p[0] = m->tracing;
	p[1] = p[2] = p[3] = 0;
	wi_put_u32(p + 4, m->traceback_limit);
	if (m->sample_size)
		wi_put_u64(p + 8, m->sample_size);
	return (int)(WIRE_HDR_SIZE + len);
}

int wire_enc_error(uint8_t *buf, size_t cap, uint32_t code, const char *text)
{
	size_t tlen = text ? strlen(text) : 0;
	uint8_t *p;

	if (tlen > INT32_MAX - WIRE_HDR_SIZE - ERROR_MIN)
		return -ENOSPC;
	p = wi_begin_frame(buf, cap, WIRE_ERROR, ERROR_MIN + tlen);
	if (!p)
		return -ENOSPC;
	wi_put_u32(p, code);
	if (tlen)
		memcpy(p + ERROR_MIN, text, tlen);
	return (int)(WIRE_HDR_SIZE + ERROR_MIN + tlen);
}

int wire_enc_empty(uint8_t *buf, size_t cap, uint16_t type)
{
	if (!wi_begin_frame(buf, cap, type, 0))
		return -ENOSPC;
	return (int)WIRE_HDR_SIZE;
}

int wire_enc_snapshot_req(uint8_t *buf, size_t cap, uint16_t flags)
{
	int n = wire_enc_empty(buf, cap, WIRE_SNAPSHOT_REQ);

	if (n > 0)
		wi_put_u16(buf + 6, flags);
	return n;
}

int wire_dec_hello(const struct wire_msg *msg, struct wire_hello *m)
{
	const uint8_t *p = wi_payload(msg, HELLO_LEN);
	if (!p)
		return -EPROTO;
	m->proto = wi_get_u32(p);
	m->pid = wi_get_u32(p + 4);
	m->py_hexversion = wi_get_u32(p + 8);
	m->traceback_limit = wi_get_u32(p + 12);
	m->tracing = p[16];
	m->token = wi_get_u64(p + 20);
	return 0;
}

int wire_dec_stats(const struct wire_msg *msg, struct wire_stats *m)
{
	const uint8_t *p = wi_payload(msg, STATS_LEN);
	if (!p)
		return -EPROTO;
	m->traced_current = wi_get_u64(p);
	m->traced_peak = wi_get_u64(p + 8);
	m->tracemalloc_memory = wi_get_u64(p + 16);
	m->traced_blocks = wi_get_u64(p + 24);
	m->rss = wi_get_u64(p + 32);
	m->traceback_limit = wi_get_u32(p + 40);
	m->tracing = p[44];
	m->sample_size = m->samples = m->sample_memory = 0;
	m->sample_flags = 0;
	if (msg->len >= STATS_SAMPLE_LEN) {
		m->sample_size = wi_get_u64(p + 48);
		m->samples = wi_get_u64(p + 56);
		m->sample_memory = wi_get_u64(p + 64);
		m->sample_flags = wi_get_u32(p + 72);
	}
	return 0;
}

int wire_dec_start(const struct wire_msg *msg, struct wire_start *m)
{
	const uint8_t *p = wi_payload(msg, START_LEN);
	if (!p)
		return -EPROTO;
	m->nframe = wi_get_u32(p);
	m->flags = wi_get_u32(p + 4);
	m->sample_size = m->sample_max_memory = 0;
	if (msg->len >= START_SAMPLE_LEN) {
		m->sample_size = wi_get_u64(p + 8);
		m->sample_max_memory = wi_get_u64(p + 16);
	}
	return 0;
}

int wire_dec_state(const struct wire_msg *msg, struct wire_state *m)
{
	const uint8_t *p = wi_payload(msg, STATE_LEN);
	if (!p)
		return -EPROTO;
	m->tracing = p[0];
	m->traceback_limit = wi_get_u32(p + 4);
	m->sample_size = msg->len >= STATE_SAMPLE_LEN ? wi_get_u64(p + 8) : 0;
	return 0;
}

int wire_dec_error(const struct wire_msg *msg, struct wire_error *m)
{
	const uint8_t *p = wi_payload(msg, ERROR_MIN);
	size_t tlen;

	if (!p)
		return -EPROTO;
	m->code = wi_get_u32(p);
	tlen = msg->len - ERROR_MIN;
	if (tlen > sizeof(m->text) - 1)
		tlen = sizeof(m->text) - 1;
	if (tlen)
		memcpy(m->text, p + ERROR_MIN, tlen);
	m->text[tlen] = '\0';
	return 0;
}

long wire_parse_frame(const uint8_t *buf, size_t len, struct wire_msg *msg)
{
	uint32_t plen;

	if (len < 4)
		return 0;
	plen = wi_get_u32(buf);
	if (plen > WIRE_MAX_PAYLOAD)
		return -EPROTO;
	if (len < WIRE_HDR_SIZE || len - WIRE_HDR_SIZE < plen)
		return 0;
	msg->len = plen;
	msg->type = wi_get_u16(buf + 4);
	msg->flags = wi_get_u16(buf + 6);
	msg->payload = buf + WIRE_HDR_SIZE;
	return (long)(WIRE_HDR_SIZE + plen);
}

int wire_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				/* Non-blocking fd: wait until it drains. */
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };
				if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
					return -errno;
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void wire_reader_init(struct wire_reader *r, int fd, size_t max_payload)
{
	r->fd = fd;
	r->buf = NULL;
	r->cap = r->len = r->off = 0;
	r->max_payload = (max_payload == 0 || max_payload > WIRE_MAX_PAYLOAD)
				 ? WIRE_MAX_PAYLOAD
				 : max_payload;
	r->wake_fd = -1;
	r->wake = NULL;
	r->wake_arg = NULL;
}

void wire_reader_set_wake(struct wire_reader *r, int wake_fd,
			  int (*wake)(void *arg), void *arg)
{
	r->wake_fd = wake ? wake_fd : -1;
	r->wake = wake;
	r->wake_arg = arg;
}

void wire_reader_fini(struct wire_reader *r)
{
	if (!r)
		return;
	free(r->buf);
	r->buf = NULL;
	r->cap = r->len = r->off = 0;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Make room for at least `need` unread bytes (plus some slack for
 * read-ahead): drop consumed bytes, then grow.  0 or -ENOMEM. */
static int reader_reserve(struct wire_reader *r, size_t need)
{
	size_t cap;
	uint8_t *nb;

	if (r->off) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	if (r->cap >= need && r->cap > r->len)
		return 0;
	cap = r->cap ? r->cap : READER_MIN_CAP;
	while (cap < need || cap <= r->len)
		cap *= 2;
	nb = realloc(r->buf, cap);
	if (!nb)
		return -ENOMEM;
	r->buf = nb;
	r->cap = cap;
	return 0;
}

int wire_read_frame(struct wire_reader *r, struct wire_msg *msg, int timeout_ms)
{
	long deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;

	for (;;) {
		size_t avail = r->len - r->off;
		size_t need = WIRE_HDR_SIZE;
		struct pollfd pfd[2] = {
			{ .fd = r->fd, .events = POLLIN },
			{ .fd = r->wake ? r->wake_fd : -1, .events = POLLIN },
		};
		int wait_ms = timeout_ms;
		ssize_t n;
		int rc;

		if (avail >= 4) {
			const uint8_t *p = r->buf + r->off;
			uint32_t plen = wi_get_u32(p);
			long fsize;

			if (plen > r->max_payload)
				return -EPROTO;
			fsize = wire_parse_frame(p, avail, msg);
			if (fsize < 0)
				return -EPROTO;
			if (fsize > 0) {
				r->off += (size_t)fsize;
				return 1;
			}
			need = WIRE_HDR_SIZE + (size_t)plen;
		}
		rc = reader_reserve(r, need);
		if (rc < 0)
			return rc;

		if (timeout_ms > 0) {
			wait_ms = (int)(deadline - now_ms());
			if (wait_ms < 0)
				wait_ms = 0;
		}
		/* what woke an earlier wait (and was read by then) too */
		if (r->wake && r->wake(r->wake_arg))
			return -EINTR;
		rc = poll(pfd, 2, wait_ms);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (rc == 0)
			return -ETIMEDOUT;
		if (pfd[1].revents) {
			/* before the data: a stream that never pauses must
			 * not hold the interruption back */
			if (pfd[1].revents & POLLNVAL)
				r->wake_fd = -1;
			else if (r->wake(r->wake_arg))
				return -EINTR;
			if (!pfd[0].revents)
				continue;
		}
		if (pfd[0].revents & POLLNVAL)
			return -EBADF;

		n = read(r->fd, r->buf + r->len, r->cap - r->len);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			return -errno;
		}
		if (n == 0)
			return r->len == r->off ? 0 : -EPROTO;
		r->len += (size_t)n;
	}
}
