/* test_wire_snap.c - snapshot messages: SNAP_HEAD/END, the chunk
 * encoder/decoder and the interning tables. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trmtop/wire.h"

#define BIG (WIRE_HDR_SIZE + WIRE_SNAP_CHUNK_MAX)

/* A heap copy of exactly len bytes, so that ASan sees any over-read. */
static struct wire_msg msg_copy(uint16_t type, const uint8_t *p, uint32_t len,
				uint8_t **owned)
{
	struct wire_msg m = { .type = type, .len = len };

	*owned = malloc(len ? len : 1);
	assert_non_null(*owned);
	if (len)
		memcpy(*owned, p, len);
	m.payload = *owned;
	return m;
}

static void test_head_end_roundtrip(void **state)
{
	uint8_t buf[256], *own;
	struct wire_snap_head h = {
		.traced_current = 1, .traced_peak = UINT64_MAX,
		.tracemalloc_memory = 3, .rss = 4, .ntraces = 1ull << 40,
		.py_hexversion = 0x030e00f0, .traceback_limit = 65535,
		.first_string = 7, .first_frame = 8, .first_traceback = 9,
		.new_strings = 10, .new_frames = 11, .new_tracebacks = UINT32_MAX,
		.tracing = WIRE_TRACING_APPLICATION,
	}, h2;
	struct wire_snap_end e = {
		.ntraces = 5, .total_size = UINT64_MAX - 1, .nstrings = 1,
		.nframes = 2, .ntracebacks = 3, .gil_ns = 12345, .gil_max_ns = 99,
	}, e2;
	struct wire_msg msg;
	int n;

	(void)state;
	n = wire_enc_snap_head(buf, sizeof(buf), &h);
	assert_int_equal(n, WIRE_HDR_SIZE + WIRE_SNAP_HEAD_LEN);
	assert_int_equal(wire_enc_snap_head(buf, (size_t)n - 1, &h), -ENOSPC);
	assert_int_equal(wire_parse_frame(buf, (size_t)n, &msg), n);
	assert_int_equal(msg.type, WIRE_SNAP_HEAD);
	assert_int_equal(wire_dec_snap_head(&msg, &h2), 0);
	assert_memory_equal(&h.traced_current, &h2.traced_current, 5 * 8);
	assert_int_equal(h2.py_hexversion, h.py_hexversion);
	assert_int_equal(h2.traceback_limit, h.traceback_limit);
	assert_int_equal(h2.first_string, 7);
	assert_int_equal(h2.first_frame, 8);
	assert_int_equal(h2.first_traceback, 9);
	assert_int_equal(h2.new_strings, 10);
	assert_int_equal(h2.new_frames, 11);
	assert_int_equal(h2.new_tracebacks, UINT32_MAX);
	assert_int_equal(h2.tracing, WIRE_TRACING_APPLICATION);
	assert_int_equal(h2.sample_size, 0);
	/* a sampled snapshot's head carries the sampling size */
	h.sample_size = 65536;
	n = wire_enc_snap_head(buf, sizeof(buf), &h);
	assert_int_equal(n, WIRE_HDR_SIZE + WIRE_SNAP_HEAD_SAMPLE_LEN);
	assert_int_equal(wire_parse_frame(buf, (size_t)n, &msg), n);
	assert_int_equal(wire_dec_snap_head(&msg, &h2), 0);
	assert_int_equal(h2.sample_size, 65536);
	assert_int_equal(h2.tracing, WIRE_TRACING_APPLICATION);
	assert_true(h2.table == WIRE_TABLE_NONE && h2.table_rows == 0);
	/* a table reply's head (minor 3): its rows and kind; cut before
	 * them, a head without (an older agent's) */
	h.table = WIRE_TABLE_DELTA;
	h.table_rows = (1ull << 40) + 3;
	n = wire_enc_snap_head(buf, sizeof(buf), &h);
	assert_int_equal(n, WIRE_HDR_SIZE + WIRE_SNAP_HEAD_TABLE_LEN);
	assert_int_equal(wire_parse_frame(buf, (size_t)n, &msg), n);
	assert_int_equal(wire_dec_snap_head(&msg, &h2), 0);
	assert_true(h2.sample_size == 65536 && h2.table == WIRE_TABLE_DELTA &&
		    h2.table_rows == (1ull << 40) + 3);
	for (uint32_t len = WIRE_SNAP_HEAD_SAMPLE_LEN;
	     len < WIRE_SNAP_HEAD_TABLE_LEN; len++) {
		struct wire_msg t = msg_copy(WIRE_SNAP_HEAD, msg.payload, len, &own);
		assert_int_equal(wire_dec_snap_head(&t, &h2), 0);
		assert_true(h2.sample_size == 65536 && h2.table == WIRE_TABLE_NONE &&
			    h2.table_rows == 0);
		free(own);
	}
	h.table = WIRE_TABLE_NONE;
	h.table_rows = 0;
	h.sample_size = 0;
	n = wire_enc_snap_head(buf, sizeof(buf), &h);
	assert_int_equal(wire_parse_frame(buf, (size_t)n, &msg), n);
	for (uint32_t len = 0; len < WIRE_SNAP_HEAD_LEN; len++) {
		struct wire_msg t = msg_copy(WIRE_SNAP_HEAD, msg.payload, len, &own);
		assert_int_equal(wire_dec_snap_head(&t, &h2), -EPROTO);
		free(own);
	}

	n = wire_enc_snap_end(buf, sizeof(buf), &e);
	assert_int_equal(n, WIRE_HDR_SIZE + WIRE_SNAP_END_LEN);
	assert_int_equal(wire_enc_snap_end(buf, (size_t)n - 1, &e), -ENOSPC);
	assert_int_equal(wire_parse_frame(buf, (size_t)n, &msg), n);
	assert_int_equal(wire_dec_snap_end(&msg, &e2), 0);
	assert_true(e2.ntraces == 5 && e2.total_size == UINT64_MAX - 1);
	assert_true(e2.nstrings == 1 && e2.nframes == 2 && e2.ntracebacks == 3);
	assert_true(e2.gil_ns == 12345 && e2.gil_max_ns == 99);
	for (uint32_t len = 0; len < WIRE_SNAP_END_LEN; len++) {
		struct wire_msg t = msg_copy(WIRE_SNAP_END, msg.payload, len, &own);
		assert_int_equal(wire_dec_snap_end(&t, &e2), -EPROTO);
		free(own);
	}
}

static const uint64_t vals[] = { 0, 1, 127, 128, 300, 16383, 16384,
				 UINT32_MAX - 1, UINT32_MAX };

/* Encode one chunk of every kind with edge values, decode it back. */
static void test_chunk_roundtrip(void **state)
{
	uint8_t *buf = malloc(BIG), *own;
	struct wire_chunk ck;
	struct wire_chunk_rd rd;
	struct wire_msg msg;
	uint32_t frames[5] = { 0, 128, UINT32_MAX, 7, 16384 }, got[8], n, tot;
	const uint8_t *s;
	uint32_t len, a, b;
	uint64_t sz;
	size_t fl;
	const size_t nv = sizeof(vals) / sizeof(vals[0]);

	(void)state;
	assert_non_null(buf);
	/* strings, including an empty one and one with a NUL */
	wire_chunk_begin(&ck, buf, BIG, WIRE_SNAP_STRINGS, 42);
	assert_int_equal(wire_chunk_finish(&ck), 0); /* empty: nothing */
	assert_int_equal(wire_chunk_add_string(&ck, "", 0), 0);
	assert_int_equal(wire_chunk_add_string(&ck, "a\0b", 3), 0);
	assert_int_equal(wire_chunk_add_string(&ck, "/usr/lib/python3.12/\xc3\xbc.py", 25), 0);
	assert_int_equal(wire_chunk_add_frame(&ck, 1, 2), -EINVAL); /* wrong kind */
	fl = wire_chunk_finish(&ck);
	assert_int_equal(wire_parse_frame(buf, fl, &msg), (long)fl);
	assert_int_equal(msg.type, WIRE_SNAP_STRINGS);
	assert_int_equal(wire_chunk_open(&msg, &rd), 0);
	assert_int_equal(rd.first, 42);
	assert_int_equal(rd.count, 3);
	assert_int_equal(wire_chunk_next_string(&rd, &s, &len), 1);
	assert_int_equal(len, 0);
	assert_int_equal(wire_chunk_next_string(&rd, &s, &len), 1);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "a\0b", 3);
	assert_int_equal(wire_chunk_next_string(&rd, &s, &len), 1);
	assert_int_equal(len, 25);
	assert_int_equal(wire_chunk_next_frame(&rd, &a, &b), -EPROTO); /* kind */
	assert_int_equal(wire_chunk_next_string(&rd, &s, &len), 0);
	assert_int_equal(wire_chunk_offset(&rd), msg.len);

	/* frames */
	wire_chunk_begin(&ck, buf, BIG, WIRE_SNAP_FRAMES, 0);
	for (size_t i = 0; i < nv; i++)
		assert_int_equal(wire_chunk_add_frame(&ck, (uint32_t)vals[i],
						      (uint32_t)vals[nv - 1 - i]), 0);
	fl = wire_chunk_finish(&ck);
	assert_int_equal(wire_parse_frame(buf, fl, &msg), (long)fl);
	assert_int_equal(wire_chunk_open(&msg, &rd), 0);
	for (size_t i = 0; i < nv; i++) {
		assert_int_equal(wire_chunk_next_frame(&rd, &a, &b), 1);
		assert_int_equal(a, vals[i]);
		assert_int_equal(b, vals[nv - 1 - i]);
	}
	assert_int_equal(wire_chunk_next_frame(&rd, &a, &b), 0);

	/* tracebacks */
	wire_chunk_begin(&ck, buf, BIG, WIRE_SNAP_TRACEBACKS, 3);
	assert_int_equal(wire_chunk_add_traceback(&ck, frames, 5, 5), 0);
	assert_int_equal(wire_chunk_add_traceback(&ck, NULL, 0, 0), 0);
	assert_int_equal(wire_chunk_add_traceback(&ck, frames, 2, 100), 0);
	fl = wire_chunk_finish(&ck);
	assert_int_equal(wire_parse_frame(buf, fl, &msg), (long)fl);
	assert_int_equal(wire_chunk_open(&msg, &rd), 0);
	assert_int_equal(wire_chunk_next_traceback(&rd, got, 8, &n, &tot), 1);
	assert_int_equal(n, 5);
	assert_int_equal(tot, 5);
	assert_memory_equal(got, frames, sizeof(frames));
	assert_int_equal(wire_chunk_next_traceback(&rd, got, 8, &n, &tot), 1);
	assert_int_equal(n, 0);
	/* a destination too small is a protocol error, nothing written past */
	got[1] = 0xdead;
	assert_int_equal(wire_chunk_next_traceback(&rd, got, 1, &n, &tot), -EPROTO);
	assert_int_equal(got[1], 0xdead);
	assert_int_equal(wire_chunk_next_traceback(&rd, got, 2, &n, &tot), 1);
	assert_int_equal(tot, 100);
	assert_int_equal(wire_chunk_next_traceback(&rd, got, 8, &n, &tot), 0);

	/* traces */
	wire_chunk_begin(&ck, buf, BIG, WIRE_SNAP_TRACES, 0);
	for (size_t i = 0; i < nv; i++)
		assert_int_equal(wire_chunk_add_trace(&ck, vals[i] << 31,
						      (uint32_t)vals[i], 7), 0);
	assert_int_equal(wire_chunk_add_trace(&ck, UINT64_MAX, 0, UINT32_MAX), 0);
	fl = wire_chunk_finish(&ck);
	assert_int_equal(wire_parse_frame(buf, fl, &msg), (long)fl);
	assert_int_equal(wire_chunk_open(&msg, &rd), 0);
	for (size_t i = 0; i < nv; i++) {
		assert_int_equal(wire_chunk_next_trace(&rd, &sz, &a, &b), 1);
		assert_true(sz == vals[i] << 31);
		assert_int_equal(a, vals[i]);
		assert_int_equal(b, 7);
	}
	assert_int_equal(wire_chunk_next_trace(&rd, &sz, &a, &b), 1);
	assert_true(sz == UINT64_MAX);
	assert_int_equal(b, UINT32_MAX);
	assert_int_equal(wire_chunk_next_trace(&rd, &sz, &a, &b), 0);

	/* every truncation of the traces chunk: an error, never an over-read */
	for (uint32_t cut = 0; cut < msg.len; cut++) {
		struct wire_msg t = msg_copy(WIRE_SNAP_TRACES, msg.payload, cut, &own);
		int rc = wire_chunk_open(&t, &rd);

		while (rc == 0 && (rc = wire_chunk_next_trace(&rd, &sz, &a, &b)) == 1)
			rc = 0;
		assert_int_equal(rc, -EPROTO);
		assert_true(wire_chunk_offset(&rd) <= cut);
		free(own);
	}
	free(buf);
}

/* Soft and hard chunk limits. */
static void test_chunk_limits(void **state)
{
	uint8_t *buf = malloc(BIG);
	uint32_t *f = malloc((WIRE_SNAP_NFRAME_MAX + 1) * sizeof(*f));
	char *str = malloc(WIRE_SNAP_STR_MAX + 1);
	struct wire_chunk ck;
	uint32_t count = 0;
	int rc;

	(void)state;
	assert_non_null(buf);
	assert_non_null(f);
	assert_non_null(str);
	wire_chunk_begin(&ck, buf, BIG, WIRE_SNAP_TRACES, 0);
	while ((rc = wire_chunk_add_trace(&ck, UINT64_MAX, UINT32_MAX,
					  UINT32_MAX)) == 0)
		count++;
	assert_int_equal(rc, -ENOSPC);
	assert_true(ck.len - WIRE_HDR_SIZE <= WIRE_SNAP_CHUNK);
	assert_true(ck.len - WIRE_HDR_SIZE > WIRE_SNAP_CHUNK - 20);
	assert_int_equal(ck.count, count);

	/* a traceback bigger than the soft limit goes alone in a chunk */
	for (uint32_t i = 0; i <= WIRE_SNAP_NFRAME_MAX; i++)
		f[i] = UINT32_MAX;
	wire_chunk_begin(&ck, buf, BIG, WIRE_SNAP_TRACEBACKS, 0);
	assert_int_equal(wire_chunk_add_traceback(&ck, f, WIRE_SNAP_NFRAME_MAX, 1u << 20), 0);
	assert_true(ck.len - WIRE_HDR_SIZE > WIRE_SNAP_CHUNK);
	assert_int_equal(wire_chunk_add_traceback(&ck, f, 1, 1), -ENOSPC);
	assert_int_equal(wire_chunk_add_traceback(&ck, f, WIRE_SNAP_NFRAME_MAX + 1,
						  1), -E2BIG);
	/* ...but not into a buffer that is too small */
	wire_chunk_begin(&ck, buf, 4096, WIRE_SNAP_TRACEBACKS, 0);
	assert_int_equal(wire_chunk_add_traceback(&ck, f, WIRE_SNAP_NFRAME_MAX, 1),
			 -ENOSPC);
	assert_int_equal(ck.count, 0);
	assert_int_equal(wire_chunk_finish(&ck), 0);

	memset(str, 'x', WIRE_SNAP_STR_MAX + 1);
	wire_chunk_begin(&ck, buf, BIG, WIRE_SNAP_STRINGS, 0);
	assert_int_equal(wire_chunk_add_string(&ck, str, WIRE_SNAP_STR_MAX + 1), -E2BIG);
	assert_int_equal(wire_chunk_add_string(&ck, str, WIRE_SNAP_STR_MAX), 0);
	free(str);
	free(f);
	free(buf);
}

/* Hand-made payloads: bad varints, huge counts, wrong types. */
static void test_chunk_bad(void **state)
{
	/* first=0, count, then entries */
	static const uint8_t huge_count[] = { 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3 };
	static const uint8_t u32_overflow[] = { 0, 0, 0, 0, 1, 0, 0, 0,
						0x80, 0x80, 0x80, 0x80, 0x10, 1 };
	static const uint8_t too_long[] = { 0, 0, 0, 0, 1, 0, 0, 0,
					    0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					    0x80, 0x80, 0x80, 0x80, 0x00, 0, 0 };
	static const uint8_t bit64[] = { 0, 0, 0, 0, 1, 0, 0, 0,
					 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					 0xff, 0xff, 0xff, 0x02, 0, 0 };
	static const uint8_t max64[] = { 0, 0, 0, 0, 1, 0, 0, 0,
					 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					 0xff, 0xff, 0xff, 0x01, 0, 0 };
	static const uint8_t str_past_end[] = { 0, 0, 0, 0, 1, 0, 0, 0, 5, 'a', 'b' };
	static const uint8_t tb_n_past_end[] = { 0, 0, 0, 0, 1, 0, 0, 0, 9, 9, 1 };
	struct wire_chunk_rd rd;
	struct wire_msg m;
	uint8_t *own;
	uint64_t sz;
	uint32_t a, b, f[16];
	const uint8_t *s;

	(void)state;
	m = msg_copy(WIRE_SNAP_TRACES, huge_count, sizeof(huge_count), &own);
	assert_int_equal(wire_chunk_open(&m, &rd), -EPROTO);
	free(own);
	m = msg_copy(WIRE_SNAP_TRACES, huge_count, 7, &own);
	assert_int_equal(wire_chunk_open(&m, &rd), -EPROTO); /* < 8 bytes */
	free(own);
	m = msg_copy(WIRE_HELLO, u32_overflow, sizeof(u32_overflow), &own);
	assert_int_equal(wire_chunk_open(&m, &rd), -EPROTO); /* not a chunk */
	free(own);
	m = msg_copy(WIRE_SNAP_FRAMES, u32_overflow, sizeof(u32_overflow), &own);
	assert_int_equal(wire_chunk_open(&m, &rd), 0);
	assert_int_equal(wire_chunk_next_frame(&rd, &a, &b), -EPROTO);
	assert_int_equal(wire_chunk_offset(&rd), 8);
	free(own);
	m = msg_copy(WIRE_SNAP_TRACES, too_long, sizeof(too_long), &own);
	assert_int_equal(wire_chunk_open(&m, &rd), 0);
	assert_int_equal(wire_chunk_next_trace(&rd, &sz, &a, &b), -EPROTO);
	free(own);
	m = msg_copy(WIRE_SNAP_TRACES, bit64, sizeof(bit64), &own);
	assert_int_equal(wire_chunk_open(&m, &rd), 0);
	assert_int_equal(wire_chunk_next_trace(&rd, &sz, &a, &b), -EPROTO);
	free(own);
	m = msg_copy(WIRE_SNAP_TRACES, max64, sizeof(max64), &own);
	assert_int_equal(wire_chunk_open(&m, &rd), 0);
	assert_int_equal(wire_chunk_next_trace(&rd, &sz, &a, &b), 1);
	assert_true(sz == UINT64_MAX);
	free(own);
	m = msg_copy(WIRE_SNAP_STRINGS, str_past_end, sizeof(str_past_end), &own);
	assert_int_equal(wire_chunk_open(&m, &rd), 0);
	assert_int_equal(wire_chunk_next_string(&rd, &s, &a), -EPROTO);
	free(own);
	m = msg_copy(WIRE_SNAP_TRACEBACKS, tb_n_past_end, sizeof(tb_n_past_end), &own);
	assert_int_equal(wire_chunk_open(&m, &rd), 0);
	assert_int_equal(wire_chunk_next_traceback(&rd, f, 16, &a, &b), -EPROTO);
	free(own);
	/* a cursor that was never opened */
	memset(&rd, 0, sizeof(rd));
	assert_int_equal(wire_chunk_next_trace(&rd, &sz, &a, &b), -EPROTO);
}

static void test_intern(void **state)
{
	struct wire_intern *t = wire_intern_new();
	struct wire_intern_counts c0, c1;
	uint32_t id, id2, f[3], n, tot, sid, line, len;
	const uint8_t *s;
	const uint32_t *fr;
	char name[32];

	(void)state;
	assert_non_null(t);
	assert_int_equal(wire_intern_frame(t, 0, 1, &id), -EINVAL);
	assert_int_equal(wire_intern_str(t, "a.py", 4, &id), 1);
	assert_int_equal(id, 0);
	assert_int_equal(wire_intern_str(t, "b.py", 4, &id), 1);
	assert_int_equal(id, 1);
	assert_int_equal(wire_intern_str(t, "a.py", 4, &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(wire_intern_str(t, "", 0, &id), 1);
	assert_int_equal(id, 2);
	assert_int_equal(wire_intern_frame(t, 0, 10, &f[0]), 1);
	assert_int_equal(wire_intern_frame(t, 1, 10, &f[1]), 1);
	assert_int_equal(wire_intern_frame(t, 0, 10, &id), 0);
	assert_int_equal(id, f[0]);
	assert_int_equal(wire_intern_frame(t, 3, 10, &id), -EINVAL);
	f[2] = f[0];
	assert_int_equal(wire_intern_traceback(t, f, 3, 3, &id), 1);
	assert_int_equal(wire_intern_traceback(t, f, 3, 9, &id2), 1); /* total */
	assert_int_not_equal(id, id2);
	assert_int_equal(wire_intern_traceback(t, f, 3, 3, &id2), 0);
	assert_int_equal(id, id2);
	assert_int_equal(wire_intern_traceback(t, f, 2, 2, &id2), 1);
	assert_int_equal(wire_intern_traceback(t, NULL, 0, 0, &id2), 1);
	f[0] = 99;
	assert_int_equal(wire_intern_traceback(t, f, 1, 1, &id2), -EINVAL);
	assert_int_equal(wire_intern_traceback(t, f, WIRE_SNAP_NFRAME_MAX + 1, 1,
					       &id2), -E2BIG);
	assert_int_equal(wire_intern_str(t, "x", WIRE_SNAP_STR_MAX + 1, &id2), -E2BIG);

	wire_intern_counts(t, &c0);
	assert_int_equal(c0.strings, 3);
	assert_int_equal(c0.frames, 2);
	assert_int_equal(c0.tracebacks, 4);
	/* grow well past the initial sizes, then roll back */
	for (int i = 0; i < 100000; i++) {
		snprintf(name, sizeof(name), "mod%d.py", i);
		assert_int_equal(wire_intern_str(t, name, strlen(name), &sid), 1);
		assert_int_equal(wire_intern_frame(t, sid, (uint32_t)i, &f[0]), 1);
		assert_int_equal(wire_intern_traceback(t, f, 1, 1, &id), 1);
	}
	wire_intern_counts(t, &c1);
	assert_int_equal(c1.strings, 100003);
	assert_true(wire_intern_memory(t) > 100000 * 10);
	s = wire_intern_get_str(t, 3 + 500, &len);
	assert_int_equal(len, strlen("mod500.py"));
	assert_memory_equal(s, "mod500.py", len);
	wire_intern_rollback(t, &c0);
	wire_intern_counts(t, &c1);
	assert_memory_equal(&c0, &c1, sizeof(c0));
	/* the rolled-back content is new again, the old one still found */
	assert_int_equal(wire_intern_str(t, "mod5.py", 7, &id), 1);
	assert_int_equal(id, 3);
	assert_int_equal(wire_intern_str(t, "b.py", 4, &id), 0);
	assert_int_equal(id, 1);
	wire_intern_get_frame(t, 1, &sid, &line);
	assert_int_equal(sid, 1);
	assert_int_equal(line, 10);
	fr = wire_intern_get_traceback(t, 0, &n, &tot);
	assert_int_equal(n, 3);
	assert_int_equal(tot, 3);
	assert_int_equal(fr[2], fr[0]);
	assert_null(wire_intern_get_traceback(t, 4, &n, &tot));
	assert_null(wire_intern_get_str(t, 4, &len));
	wire_intern_free(t);
	wire_intern_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_end_roundtrip),
		cmocka_unit_test(test_chunk_roundtrip),
		cmocka_unit_test(test_chunk_limits),
		cmocka_unit_test(test_chunk_bad),
		cmocka_unit_test(test_intern),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
