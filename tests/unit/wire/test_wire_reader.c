/* test_wire_reader.c - wire_reader over real pipes, and wire_write_all. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "trmtop/wire.h"

struct pipe_fixture {
	int rd, wr;
	struct wire_reader r;
};

static int setup(void **state)
{
	struct pipe_fixture *f = calloc(1, sizeof(*f));
	int fds[2];

	if (!f || pipe2(fds, O_CLOEXEC) < 0) {
		free(f);
		return -1;
	}
	f->rd = fds[0];
	f->wr = fds[1];
	wire_reader_init(&f->r, f->rd, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct pipe_fixture *f = *state;

	wire_reader_fini(&f->r);
	if (f->rd >= 0)
		close(f->rd);
	if (f->wr >= 0)
		close(f->wr);
	free(f);
	return 0;
}

static void put(int fd, const void *buf, size_t len)
{
	assert_int_equal(wire_write_all(fd, buf, len), 0);
}

static void close_wr(struct pipe_fixture *f)
{
	close(f->wr);
	f->wr = -1;
}

/* A frame arriving a few bytes at a time: -ETIMEDOUT until complete. */
static void test_partial_writes(void **state)
{
	struct pipe_fixture *f = *state;
	uint8_t buf[64];
	struct wire_start in = { .nframe = 25, .flags = 1 }, out;
	struct wire_msg msg;
	int n = wire_enc_start(buf, sizeof(buf), &in);

	assert_int_equal(wire_read_frame(&f->r, &msg, 0), -ETIMEDOUT);
	for (int i = 0; i < n; i++) {
		put(f->wr, buf + i, 1);
		if (i < n - 1)
			assert_int_equal(wire_read_frame(&f->r, &msg, 0),
					 -ETIMEDOUT);
	}
	assert_int_equal(wire_read_frame(&f->r, &msg, 0), 1);
	assert_int_equal(msg.type, WIRE_START);
	assert_int_equal(wire_dec_start(&msg, &out), 0);
	assert_int_equal(out.nframe, 25);
	assert_int_equal(out.flags, 1);
	assert_int_equal(wire_read_frame(&f->r, &msg, 0), -ETIMEDOUT);
}

/* Several frames in one write come out one by one; then EOF. */
static void test_many_frames_one_write(void **state)
{
	struct pipe_fixture *f = *state;
	uint8_t buf[512];
	struct wire_state st = { .tracing = 1, .traceback_limit = 9 }, so;
	struct wire_msg msg;
	size_t n = 0;

	n += (size_t)wire_enc_empty(buf + n, sizeof(buf) - n, WIRE_STATS_REQ);
	n += (size_t)wire_enc_state(buf + n, sizeof(buf) - n, &st);
	n += (size_t)wire_enc_error(buf + n, sizeof(buf) - n, 3, "busy");
	n += (size_t)wire_enc_empty(buf + n, sizeof(buf) - n, WIRE_DETACH);
	put(f->wr, buf, n);
	close_wr(f);

	assert_int_equal(wire_read_frame(&f->r, &msg, -1), 1);
	assert_int_equal(msg.type, WIRE_STATS_REQ);
	assert_int_equal(msg.len, 0);
	assert_int_equal(wire_read_frame(&f->r, &msg, -1), 1);
	assert_int_equal(msg.type, WIRE_STATE);
	assert_int_equal(wire_dec_state(&msg, &so), 0);
	assert_int_equal(so.traceback_limit, 9);
	assert_int_equal(wire_read_frame(&f->r, &msg, -1), 1);
	assert_int_equal(msg.type, WIRE_ERROR);
	assert_int_equal(wire_read_frame(&f->r, &msg, -1), 1);
	assert_int_equal(msg.type, WIRE_DETACH);
	assert_int_equal(wire_read_frame(&f->r, &msg, -1), 0);
	assert_int_equal(wire_read_frame(&f->r, &msg, -1), 0);
}

static void test_eof_empty(void **state)
{
	struct pipe_fixture *f = *state;
	struct wire_msg msg;

	close_wr(f);
	assert_int_equal(wire_read_frame(&f->r, &msg, -1), 0);
}

/* EOF after every possible prefix of a frame is -EPROTO. */
static void test_eof_mid_frame(void **state)
{
	uint8_t buf[64];
	struct wire_hello h = { .proto = WIRE_PROTO_VERSION };
	int n = wire_enc_hello(buf, sizeof(buf), &h);

	(void)state;
	for (int cut = 1; cut < n; cut++) {
		void *st;
		struct pipe_fixture *f;
		struct wire_msg msg;

		assert_int_equal(setup(&st), 0);
		f = st;
		put(f->wr, buf, (size_t)cut);
		close_wr(f);
		assert_int_equal(wire_read_frame(&f->r, &msg, -1), -EPROTO);
		teardown(&st);
	}
}

static void test_oversize_rejected(void **state)
{
	struct pipe_fixture *f = *state;
	uint8_t hdr[8] = { 0 };
	uint32_t len = WIRE_CTL_MAX + 1;
	struct wire_msg msg;

	/* A reader capped at WIRE_CTL_MAX refuses a larger frame at once. */
	wire_reader_fini(&f->r);
	wire_reader_init(&f->r, f->rd, WIRE_CTL_MAX);
	for (int i = 0; i < 4; i++)
		hdr[i] = (uint8_t)(len >> (8 * i));
	hdr[4] = WIRE_ERROR;
	put(f->wr, hdr, sizeof(hdr));
	assert_int_equal(wire_read_frame(&f->r, &msg, -1), -EPROTO);
}

static void test_oversize_global_max(void **state)
{
	struct pipe_fixture *f = *state;
	uint8_t hdr[8] = { 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0 };
	struct wire_msg msg;

	put(f->wr, hdr, 4); /* rejected as soon as the length is known */
	assert_int_equal(wire_read_frame(&f->r, &msg, 0), -EPROTO);
}

static void test_timeout(void **state)
{
	struct pipe_fixture *f = *state;
	struct wire_msg msg;

	assert_int_equal(wire_read_frame(&f->r, &msg, 20), -ETIMEDOUT);
	put(f->wr, "\0\0\0", 3);
	assert_int_equal(wire_read_frame(&f->r, &msg, 10), -ETIMEDOUT);
}

static void test_bad_fd(void **state)
{
	struct wire_reader r;
	struct wire_msg msg;

	(void)state;
	wire_reader_init(&r, 1000000, 0);
	assert_int_equal(wire_read_frame(&r, &msg, -1), -EBADF);
	wire_reader_fini(&r);
	wire_reader_fini(NULL);
	assert_int_equal(wire_write_all(1000000, "x", 1), -EBADF);
}

/* The wake fd: the wake function runs before each wait and each time
 * the fd is readable; 0 goes on waiting, non-zero ends the read with
 * -EINTR, and the part of a frame read so far is kept. */
struct wake_state {
	int fd;
	int calls;
	int answer;
};

static int wake_fn(void *arg)
{
	struct wake_state *w = arg;
	char c;

	w->calls++;
	while (read(w->fd, &c, 1) == 1)
		;
	return w->answer;
}

static void test_wake(void **state)
{
	struct pipe_fixture *f = *state;
	struct wire_start in = { .nframe = 3, .flags = 0 }, out;
	struct wake_state w = { -1, 0, 0 };
	struct wire_msg msg;
	uint8_t buf[64];
	int fds[2], n;

	assert_int_equal(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
	w.fd = fds[0];
	wire_reader_set_wake(&f->r, fds[0], wake_fn, &w);
	n = wire_enc_start(buf, sizeof(buf), &in);
	put(f->wr, buf, 3); /* part of a frame */
	/* asked before the wait only: a plain timeout */
	assert_int_equal(wire_read_frame(&f->r, &msg, 10), -ETIMEDOUT);
	assert_true(w.calls >= 1);
	/* readable, and the function says go on: still the timeout */
	w.calls = 0;
	put(fds[1], "x", 1);
	assert_int_equal(wire_read_frame(&f->r, &msg, 20), -ETIMEDOUT);
	assert_true(w.calls >= 1);
	/* readable, and it says stop: -EINTR at once, even with no limit */
	w.answer = 1;
	put(fds[1], "x", 1);
	assert_int_equal(wire_read_frame(&f->r, &msg, -1), -EINTR);
	/* ... and before data that is there too, readable or not */
	put(f->wr, buf + 3, (size_t)n - 3);
	assert_int_equal(wire_read_frame(&f->r, &msg, -1), -EINTR);
	/* the rest of the frame completes the part read before */
	w.answer = 0;
	assert_int_equal(wire_read_frame(&f->r, &msg, -1), 1);
	assert_int_equal(wire_dec_start(&msg, &out), 0);
	assert_int_equal(out.nframe, 3);
	/* a frame already buffered comes without asking */
	put(f->wr, buf, (size_t)n);
	put(f->wr, buf, (size_t)n);
	assert_int_equal(wire_read_frame(&f->r, &msg, -1), 1);
	w.answer = 1;
	w.calls = 0;
	assert_int_equal(wire_read_frame(&f->r, &msg, -1), 1);
	assert_int_equal(w.calls, 0);
	/* no wake function: the fd is not polled */
	wire_reader_set_wake(&f->r, fds[0], NULL, NULL);
	put(fds[1], "x", 1);
	assert_int_equal(wire_read_frame(&f->r, &msg, 10), -ETIMEDOUT);
	close(fds[0]);
	close(fds[1]);
}

/* A writer thread sending frames in small chunks while the reader blocks;
 * one frame is larger than the pipe buffer. */
#define BIG_PAYLOAD (1u << 20)

struct writer_arg {
	int fd;
	size_t chunk;
	uint8_t *data;
	size_t len;
};

static void *writer_main(void *p)
{
	struct writer_arg *w = p;

	for (size_t off = 0; off < w->len; off += w->chunk) {
		size_t n = w->len - off < w->chunk ? w->len - off : w->chunk;
		if (wire_write_all(w->fd, w->data + off, n) < 0)
			break;
	}
	close(w->fd);
	return NULL;
}

static void test_threaded_chunks(void **state)
{
	struct pipe_fixture *f = *state;
	size_t cap = 3 * 64 + BIG_PAYLOAD + WIRE_HDR_SIZE, n = 0;
	uint8_t *data = malloc(cap);
	struct wire_start st = { .nframe = 1, .flags = 0 };
	struct writer_arg w;
	struct wire_msg msg;
	pthread_t tid;
	uint8_t *big;

	assert_non_null(data);
	n += (size_t)wire_enc_start(data + n, cap - n, &st);
	/* A big ERROR-typed frame by hand: header + pattern. */
	big = data + n;
	big[0] = 0;
	big[1] = 0;
	big[2] = (uint8_t)(BIG_PAYLOAD >> 16);
	big[3] = 0;
	big[4] = WIRE_ERROR;
	big[5] = big[6] = big[7] = 0;
	for (size_t i = 0; i < BIG_PAYLOAD; i++)
		big[8 + i] = (uint8_t)(i * 7);
	n += WIRE_HDR_SIZE + BIG_PAYLOAD;
	n += (size_t)wire_enc_empty(data + n, cap - n, WIRE_DETACH);

	for (size_t chunk = 1; chunk <= 4096; chunk *= 64) {
		void *st2;
		struct pipe_fixture *g;

		assert_int_equal(setup(&st2), 0);
		g = st2;
		w = (struct writer_arg){ .fd = g->wr, .chunk = chunk,
					 .data = data, .len = chunk == 1 ? 64 : n };
		g->wr = -1; /* the writer closes it */
		assert_int_equal(pthread_create(&tid, NULL, writer_main, &w), 0);
		assert_int_equal(wire_read_frame(&g->r, &msg, -1), 1);
		assert_int_equal(msg.type, WIRE_START);
		if (chunk == 1) {
			/* Only 64 bytes sent: EOF inside the big frame. */
			assert_int_equal(wire_read_frame(&g->r, &msg, -1), -EPROTO);
		} else {
			assert_int_equal(wire_read_frame(&g->r, &msg, -1), 1);
			assert_int_equal(msg.type, WIRE_ERROR);
			assert_int_equal(msg.len, BIG_PAYLOAD);
			assert_memory_equal(msg.payload, big + 8, BIG_PAYLOAD);
			assert_int_equal(wire_read_frame(&g->r, &msg, 5000), 1);
			assert_int_equal(msg.type, WIRE_DETACH);
			assert_int_equal(wire_read_frame(&g->r, &msg, -1), 0);
		}
		pthread_join(tid, NULL);
		teardown(&st2);
	}
	(void)f;
	free(data);
}

/* wire_write_all over a non-blocking pipe: short writes and EAGAIN while
 * a reader thread drains it. */
struct drain_arg {
	int fd;
	size_t got;
	uint64_t sum;
};

static void *drain_main(void *p)
{
	struct drain_arg *d = p;
	uint8_t buf[777];
	ssize_t n;

	while ((n = read(d->fd, buf, sizeof(buf))) > 0 ||
	       (n < 0 && errno == EINTR)) {
		for (ssize_t i = 0; i < n; i++)
			d->sum += buf[i];
		if (n > 0)
			d->got += (size_t)n;
	}
	return NULL;
}

static void test_write_all_nonblocking(void **state)
{
	struct pipe_fixture *f = *state;
	size_t len = 3u << 20;
	uint8_t *buf = malloc(len);
	struct drain_arg d = { .fd = f->rd };
	uint64_t sum = 0;
	pthread_t tid;

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++) {
		buf[i] = (uint8_t)(i * 31 + 5);
		sum += buf[i];
	}
	assert_int_equal(fcntl(f->wr, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(pthread_create(&tid, NULL, drain_main, &d), 0);
	assert_int_equal(wire_write_all(f->wr, buf, len), 0);
	close_wr(f);
	pthread_join(tid, NULL);
	assert_int_equal(d.got, len);
	assert_true(d.sum == sum);
	free(buf);
}

static void test_write_all_epipe(void **state)
{
	struct pipe_fixture *f = *state;
	struct sigaction sa = { .sa_handler = SIG_IGN }, old;

	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGPIPE, &sa, &old), 0);
	close(f->rd);
	f->rd = -1;
	assert_int_equal(wire_write_all(f->wr, "abc", 3), -EPIPE);
	assert_int_equal(wire_write_all(f->wr, "abc", 0), 0);
	sigaction(SIGPIPE, &old, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_partial_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_frames_one_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof_empty, setup, teardown),
		cmocka_unit_test(test_eof_mid_frame),
		cmocka_unit_test_setup_teardown(test_oversize_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversize_global_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test(test_bad_fd),
		cmocka_unit_test_setup_teardown(test_wake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threaded_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_all_nonblocking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_all_epipe, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
