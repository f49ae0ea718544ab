/* test_wire_codec.c - encoders, decoders and wire_parse_frame. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trmtop/wire.h"

#define BUFSZ 1024

/* Parse a whole encoded frame and check its header. */
static void parse_whole(const uint8_t *buf, int n, uint16_t type,
			struct wire_msg *msg)
{
	assert_true(n >= (int)WIRE_HDR_SIZE);
	assert_int_equal(wire_parse_frame(buf, (size_t)n, msg), n);
	assert_int_equal(msg->type, type);
	assert_int_equal(msg->flags, 0);
	assert_int_equal(msg->len, (uint32_t)n - WIRE_HDR_SIZE);
	assert_ptr_equal(msg->payload, buf + WIRE_HDR_SIZE);
}

/* Every encoder: cap one byte short is -ENOSPC, exact cap works. */
static void check_enospc(int (*enc)(uint8_t *, size_t, const void *),
			 const void *m, int n)
{
	uint8_t buf[BUFSZ];

	for (int cap = 0; cap < n; cap++)
		assert_int_equal(enc(buf, (size_t)cap, m), -ENOSPC);
	assert_int_equal(enc(buf, (size_t)n, m), n);
}

static int enc_hello_v(uint8_t *b, size_t c, const void *m)
{
	return wire_enc_hello(b, c, m);
}

static int enc_stats_v(uint8_t *b, size_t c, const void *m)
{
	return wire_enc_stats(b, c, m);
}

static int enc_start_v(uint8_t *b, size_t c, const void *m)
{
	return wire_enc_start(b, c, m);
}

static int enc_state_v(uint8_t *b, size_t c, const void *m)
{
	return wire_enc_state(b, c, m);
}

static void test_hello_roundtrip(void **state)
{
	uint8_t buf[BUFSZ];
	struct wire_hello in = {
		.proto = WIRE_PROTO_VERSION, .pid = 0x89abcdefu,
		.py_hexversion = 0x030d00f0u, .traceback_limit = 65535,
		.tracing = WIRE_TRACING_APPLICATION,
		.token = 0x0123456789abcdefull,
	};
	struct wire_hello out;
	struct wire_msg msg;
	int n = wire_enc_hello(buf, sizeof(buf), &in);

	(void)state;
	assert_int_equal(n, 8 + 28);
	parse_whole(buf, n, WIRE_HELLO, &msg);
	memset(&out, 0xff, sizeof(out));
	assert_int_equal(wire_dec_hello(&msg, &out), 0);
	assert_int_equal(out.proto, in.proto);
	assert_int_equal(out.pid, in.pid);
	assert_int_equal(out.py_hexversion, in.py_hexversion);
	assert_int_equal(out.traceback_limit, in.traceback_limit);
	assert_int_equal(out.tracing, in.tracing);
	assert_true(out.token == in.token);
	check_enospc(enc_hello_v, &in, n);
}

static void test_hello_layout(void **state)
{
	/* The exact bytes documented in wire.h, little-endian. */
	static const uint8_t want[] = {
		28, 0, 0, 0, 1, 0, 0, 0,                /* len, HELLO, flags */
		0x03, 0x00, 0x01, 0x00,                 /* proto 0x00010003 */
		0x04, 0x03, 0x02, 0x01,                 /* pid */
		0xf0, 0x00, 0x0b, 0x03,                 /* 0x030b00f0 */
		0x05, 0x00, 0x00, 0x00,                 /* traceback_limit */
		0x01, 0, 0, 0,                          /* tracing, pad */
		8, 7, 6, 5, 4, 3, 2, 1,                 /* token */
	};
	struct wire_hello in = {
		.proto = WIRE_PROTO_VERSION, .pid = 0x01020304,
		.py_hexversion = 0x030b00f0, .traceback_limit = 5,
		.tracing = WIRE_TRACING_TRMTOP, .token = 0x0102030405060708ull,
	};
	uint8_t buf[BUFSZ];

	(void)state;
	assert_int_equal(wire_enc_hello(buf, sizeof(buf), &in), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_stats_roundtrip(void **state)
{
	uint8_t buf[BUFSZ];
	struct wire_stats in = {
		.traced_current = 0x1122334455667788ull,
		.traced_peak = UINT64_MAX, .tracemalloc_memory = 12345,
		.traced_blocks = 1ull << 40, .rss = 4096 * 1000ull,
		.traceback_limit = 25, .tracing = WIRE_TRACING_TRMTOP,
	};
	struct wire_stats out;
	struct wire_msg msg;
	int n = wire_enc_stats(buf, sizeof(buf), &in);

	(void)state;
	assert_int_equal(n, 8 + 48);
	parse_whole(buf, n, WIRE_STATS, &msg);
	memset(&out, 0, sizeof(out));
	assert_int_equal(wire_dec_stats(&msg, &out), 0);
	assert_true(out.traced_current == in.traced_current);
	assert_true(out.traced_peak == in.traced_peak);
	assert_true(out.tracemalloc_memory == in.tracemalloc_memory);
	assert_true(out.traced_blocks == in.traced_blocks);
	assert_true(out.rss == in.rss);
	assert_int_equal(out.traceback_limit, in.traceback_limit);
	assert_int_equal(out.tracing, in.tracing);
	check_enospc(enc_stats_v, &in, n);
}

static void test_start_roundtrip(void **state)
{
	uint8_t buf[BUFSZ];
	struct wire_start in = { .nframe = 100, .flags = WIRE_START_KEEP };
	struct wire_start out = { .nframe = 0 };
	struct wire_msg msg;
	int n = wire_enc_start(buf, sizeof(buf), &in);

	(void)state;
	assert_int_equal(n, 16);
	parse_whole(buf, n, WIRE_START, &msg);
	assert_int_equal(wire_dec_start(&msg, &out), 0);
	assert_int_equal(out.nframe, 100);
	assert_int_equal(out.flags, WIRE_START_KEEP);
	check_enospc(enc_start_v, &in, n);
}

static void test_state_roundtrip(void **state)
{
	uint8_t buf[BUFSZ];
	struct wire_state in = { .tracing = WIRE_TRACING_OFF,
				 .traceback_limit = 0xdeadbeef };
	struct wire_state out = { .tracing = 9 };
	struct wire_msg msg;
	int n = wire_enc_state(buf, sizeof(buf), &in);

	(void)state;
	assert_int_equal(n, 16);
	parse_whole(buf, n, WIRE_STATE, &msg);
	assert_int_equal(wire_dec_state(&msg, &out), 0);
	assert_int_equal(out.tracing, WIRE_TRACING_OFF);
	assert_int_equal(out.traceback_limit, 0xdeadbeef);
	check_enospc(enc_state_v, &in, n);
}

/* The sampler's trailing fields: sent only when set, read back, and 0
 * when absent (an older peer's frame). */
static void test_sample_fields_roundtrip(void **state)
{
	uint8_t buf[BUFSZ];
	struct wire_start st = { .nframe = 16, .flags = WIRE_START_SAMPLE,
				 .sample_size = 65536, .sample_max_memory = 1 << 21 };
	struct wire_start sto;
	struct wire_state ste = { .tracing = WIRE_TRACING_OFF,
				  .traceback_limit = 16, .sample_size = 65536 };
	struct wire_state steo;
	struct wire_stats ss = { .rss = 5, .sample_size = 4096, .samples = 77,
				 .sample_memory = 1 << 20,
				 .sample_flags = WIRE_SAMPLE_CAPPED };
	struct wire_stats sso;
	struct wire_msg msg;
	int n;

	(void)state;
	n = wire_enc_start(buf, sizeof(buf), &st);
	assert_int_equal(n, 8 + 24);
	parse_whole(buf, n, WIRE_START, &msg);
	assert_int_equal(wire_dec_start(&msg, &sto), 0);
	assert_int_equal(sto.flags, WIRE_START_SAMPLE);
	assert_int_equal(sto.sample_size, 65536);
	assert_int_equal(sto.sample_max_memory, 1 << 21);
	check_enospc(enc_start_v, &st, n);

	n = wire_enc_state(buf, sizeof(buf), &ste);
	assert_int_equal(n, 8 + 16);
	parse_whole(buf, n, WIRE_STATE, &msg);
	assert_int_equal(wire_dec_state(&msg, &steo), 0);
	assert_int_equal(steo.sample_size, 65536);
	assert_int_equal(steo.traceback_limit, 16);

	n = wire_enc_stats(buf, sizeof(buf), &ss);
	assert_int_equal(n, 8 + 80);
	parse_whole(buf, n, WIRE_STATS, &msg);
	assert_int_equal(wire_dec_stats(&msg, &sso), 0);
	assert_int_equal(sso.rss, 5);
	assert_int_equal(sso.sample_size, 4096);
	assert_int_equal(sso.samples, 77);
	assert_int_equal(sso.sample_memory, 1 << 20);
	assert_int_equal(sso.sample_flags, WIRE_SAMPLE_CAPPED);
	check_enospc(enc_stats_v, &ss, n);

	/* without them: the old sizes, and the decoder says 0 */
	ss.sample_size = 0;
	n = wire_enc_stats(buf, sizeof(buf), &ss);
	assert_int_equal(n, 8 + 48);
	parse_whole(buf, n, WIRE_STATS, &msg);
	sso.samples = 1;
	assert_int_equal(wire_dec_stats(&msg, &sso), 0);
	assert_int_equal(sso.sample_size, 0);
	assert_int_equal(sso.samples, 0);
	st.flags = 0;
	n = wire_enc_start(buf, sizeof(buf), &st);
	assert_int_equal(n, 16);
	parse_whole(buf, n, WIRE_START, &msg);
	assert_int_equal(wire_dec_start(&msg, &sto), 0);
	assert_int_equal(sto.sample_size, 0);
}

static void test_error_roundtrip(void **state)
{
	uint8_t buf[BUFSZ];
	struct wire_error out;
	struct wire_msg msg;
	const char *text = "tracemalloc.start: ValueError: bad nframe \xc3\xa9";
	int n = wire_enc_error(buf, sizeof(buf), WIRE_ERR_PYTHON, text);

	(void)state;
	assert_int_equal(n, (int)(8 + 4 + strlen(text)));
	parse_whole(buf, n, WIRE_ERROR, &msg);
	assert_int_equal(wire_dec_error(&msg, &out), 0);
	assert_int_equal(out.code, WIRE_ERR_PYTHON);
	assert_string_equal(out.text, text);

	/* Empty and NULL text. */
	n = wire_enc_error(buf, sizeof(buf), WIRE_ERR_BUSY, NULL);
	assert_int_equal(n, 12);
	parse_whole(buf, n, WIRE_ERROR, &msg);
	assert_int_equal(wire_dec_error(&msg, &out), 0);
	assert_int_equal(out.code, WIRE_ERR_BUSY);
	assert_string_equal(out.text, "");

	for (int cap = 0; cap < 12 + 5; cap++)
		assert_int_equal(wire_enc_error(buf, (size_t)cap, 1, "hello"),
				 -ENOSPC);
	assert_int_equal(wire_enc_error(buf, 17, 1, "hello"), 17);
}

static void test_error_long_text_truncated(void **state)
{
	static uint8_t buf[4096];
	char text[1000];
	struct wire_error out;
	struct wire_msg msg;
	int n;

	(void)state;
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	n = wire_enc_error(buf, sizeof(buf), WIRE_ERR_UNKNOWN, text);
	assert_int_equal(n, 8 + 4 + 999);
	parse_whole(buf, n, WIRE_ERROR, &msg);
	assert_int_equal(wire_dec_error(&msg, &out), 0);
	assert_int_equal(strlen(out.text), sizeof(out.text) - 1);
	assert_memory_equal(out.text, text, sizeof(out.text) - 1);
}

static void test_empty_frames(void **state)
{
	static const uint16_t types[] = { WIRE_STATS_REQ, WIRE_STOP,
					  WIRE_DETACH };
	uint8_t buf[BUFSZ];
	struct wire_msg msg;

	(void)state;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		int n = wire_enc_empty(buf, sizeof(buf), types[i]);
		assert_int_equal(n, 8);
		parse_whole(buf, n, types[i], &msg);
		for (int cap = 0; cap < 8; cap++)
			assert_int_equal(wire_enc_empty(buf, (size_t)cap, types[i]),
					 -ENOSPC);
	}
}

/* Decoders: every payload shorter than the layout is -EPROTO; a payload
 * with trailing bytes decodes (minor-version extension).  The payload is
 * copied into a heap block of exactly msg.len bytes so that ASan catches
 * any read past the end. */
static void check_truncations(const uint8_t *frame, int n,
			      int (*dec)(const struct wire_msg *, void *),
			      size_t min_len)
{
	size_t plen = (size_t)n - WIRE_HDR_SIZE;

	for (size_t len = 0; len <= plen + 3; len++) {
		uint8_t *p = malloc(len ? len : 1);
		uint8_t out[512];
		struct wire_msg msg = { .type = 0, .flags = 0,
					.len = (uint32_t)len, .payload = p };

		assert_non_null(p);
		memset(p, 0xa5, len);
		memcpy(p, frame + WIRE_HDR_SIZE, len < plen ? len : plen);
		assert_int_equal(dec(&msg, out), len < min_len ? -EPROTO : 0);
		free(p);
	}
}

static int dec_hello_v(const struct wire_msg *m, void *o)
{
	return wire_dec_hello(m, o);
}

static int dec_stats_v(const struct wire_msg *m, void *o)
{
	return wire_dec_stats(m, o);
}

static int dec_start_v(const struct wire_msg *m, void *o)
{
	return wire_dec_start(m, o);
}

static int dec_state_v(const struct wire_msg *m, void *o)
{
	return wire_dec_state(m, o);
}

static int dec_error_v(const struct wire_msg *m, void *o)
{
	return wire_dec_error(m, o);
}

static void test_decoders_truncated(void **state)
{
	uint8_t buf[BUFSZ];
	struct wire_hello h = { .proto = 1, .token = 2 };
	struct wire_stats s = { .rss = 3 };
	struct wire_start st = { .nframe = 4 };
	struct wire_state sa = { .tracing = 1 };

	(void)state;
	check_truncations(buf, wire_enc_hello(buf, sizeof(buf), &h), dec_hello_v, 28);
	check_truncations(buf, wire_enc_stats(buf, sizeof(buf), &s), dec_stats_v, 48);
	check_truncations(buf, wire_enc_start(buf, sizeof(buf), &st), dec_start_v, 8);
	check_truncations(buf, wire_enc_state(buf, sizeof(buf), &sa), dec_state_v, 8);
	check_truncations(buf, wire_enc_error(buf, sizeof(buf), 2, "abc"),
			  dec_error_v, 4);
}

static void test_trailing_bytes_ignored(void **state)
{
	uint8_t buf[BUFSZ];
	struct wire_start in = { .nframe = 7, .flags = 0 }, out;
	struct wire_msg msg;
	int n = wire_enc_start(buf, sizeof(buf), &in);

	(void)state;
	/* Grow the payload by 5 bytes, as a newer peer would. */
	buf[0] += 5;
	memset(buf + n, 0x11, 5);
	assert_int_equal(wire_parse_frame(buf, (size_t)n + 5, &msg), n + 5);
	assert_int_equal(msg.len, 13);
	assert_int_equal(wire_dec_start(&msg, &out), 0);
	assert_int_equal(out.nframe, 7);
}

/* wire_parse_frame on every prefix of a frame: 0 until complete.  Each
 * prefix lives in its own exact-size heap block (ASan checks bounds). */
static void test_parse_every_prefix(void **state)
{
	uint8_t buf[BUFSZ];
	struct wire_stats s = { .traced_current = 1 };
	int n = wire_enc_stats(buf, sizeof(buf), &s);

	(void)state;
	for (int len = 0; len <= n; len++) {
		uint8_t *p = malloc(len ? (size_t)len : 1);
		struct wire_msg msg;

		assert_non_null(p);
		memcpy(p, buf, (size_t)len);
		assert_int_equal(wire_parse_frame(p, (size_t)len, &msg),
				 len < n ? 0 : n);
		free(p);
	}
}

static void test_parse_oversize(void **state)
{
	uint8_t hdr[8] = { 0 };
	struct wire_msg msg;
	uint32_t big = WIRE_MAX_PAYLOAD + 1;

	(void)state;
	for (int i = 0; i < 4; i++)
		hdr[i] = (uint8_t)(big >> (8 * i));
	/* Known as soon as the length field is complete. */
	assert_int_equal(wire_parse_frame(hdr, 3, &msg), 0);
	assert_int_equal(wire_parse_frame(hdr, 4, &msg), -EPROTO);
	assert_int_equal(wire_parse_frame(hdr, 8, &msg), -EPROTO);
	memset(hdr, 0xff, 4);
	assert_int_equal(wire_parse_frame(hdr, 8, &msg), -EPROTO);

	/* Exactly the maximum is a valid header (needs more bytes). */
	big = WIRE_MAX_PAYLOAD;
	for (int i = 0; i < 4; i++)
		hdr[i] = (uint8_t)(big >> (8 * i));
	assert_int_equal(wire_parse_frame(hdr, 8, &msg), 0);
}

static void test_parse_two_frames(void **state)
{
	uint8_t buf[BUFSZ];
	struct wire_state sa = { .tracing = 2, .traceback_limit = 3 };
	struct wire_msg msg;
	int a = wire_enc_empty(buf, sizeof(buf), WIRE_STOP);
	int b = wire_enc_state(buf + a, sizeof(buf) - (size_t)a, &sa);
	long n;

	(void)state;
	n = wire_parse_frame(buf, (size_t)(a + b), &msg);
	assert_int_equal(n, a);
	assert_int_equal(msg.type, WIRE_STOP);
	n = wire_parse_frame(buf + a, (size_t)b, &msg);
	assert_int_equal(n, b);
	assert_int_equal(msg.type, WIRE_STATE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_roundtrip),
		cmocka_unit_test(test_hello_layout),
		cmocka_unit_test(test_stats_roundtrip),
		cmocka_unit_test(test_start_roundtrip),
		cmocka_unit_test(test_state_roundtrip),
		cmocka_unit_test(test_sample_fields_roundtrip),
		cmocka_unit_test(test_error_roundtrip),
		cmocka_unit_test(test_error_long_text_truncated),
		cmocka_unit_test(test_empty_frames),
		cmocka_unit_test(test_decoders_truncated),
		cmocka_unit_test(test_trailing_bytes_ignored),
		cmocka_unit_test(test_parse_every_prefix),
		cmocka_unit_test(test_parse_oversize),
		cmocka_unit_test(test_parse_two_frames),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
