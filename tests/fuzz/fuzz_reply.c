/* fuzz_reply.c - libFuzzer harness for the snapshot reply stream as trmtop
 * reads it from a (hostile) agent: wire frames -> snapfetch -> snapshot ->
 * statistics, compare and every renderer.
 *
 * fuzz_wire mutates raw bytes; most of its inputs die in a frame header or
 * a count check.  This harness is structure-aware: the input is a program
 * of operations, each of which encodes one frame with the wire encoders
 * (SNAP_HEAD, a chunk of strings, frames, tracebacks or traces, SNAP_END,
 * ERROR, or raw bytes), with ids and counts that follow the connection's
 * state unless the input says otherwise.  So the fuzzer spends its time on
 * long, mostly valid replies: hostile file names (control bytes, NULs,
 * separators), sizes near 2^63, counts at and past the caps (lowered here,
 * so that each is reached), several replies on one connection.
 *
 * Invariants: no crash, leak or undefined behaviour; a reply is a snapshot
 * or an error; a snapshot's total is at most SNAP_SIZE_MAX and equals the
 * sum of its traces; text renderings hold no control byte; compare with
 * the previous snapshot of the connection is exact.
 *
 * Build from the source root (B: a dir with config.h):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -IB -Iinclude -Isrc/session tests/fuzz/fuzz_reply.c src/session/snapfetch.c \
 *     src/wire/\*.c src/snapshot/\*.c src/render/\*.c src/util/\*.c -lm
 *   ./a.out -max_total_time=60 tests/fuzz/corpus/reply
 * A table head (op 9, wire minor 3) plans the rows its traces will send
 * and announces the table they make with the harness's copy of the
 * receiver's table, so that deltas are mostly in step.
 * Seeds (tests/fuzz/corpus/reply): programs for a valid reply, two replies
 * sharing tables, sizes near 2^63, a name full of escapes, a full table
 * reply then a delta. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapfetch.h"
#include "trmtop/render.h"
#include "trmtop/snapshot.h"
#include "trmtop/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BUF_CAP (WIRE_HDR_SIZE + 65536u)

/* The caps, lowered so that inputs of a few KiB reach each of them. */
static const struct snapfetch_limits limits = {
	.traces = 512,
	.reply_bytes = 48u << 10,
	.strings = 64,
	.string_bytes = 4096,
	.frames = 128,
	.tracebacks = 128,
	.frame_ids = 1024,
};

/* Sizes worth trying: near 0, 2^32, 2^62, 2^63 and 2^64. */
static const uint64_t sizes[] = {
	0, 1, 7, 4096, UINT32_MAX, 1ull << 32, (1ull << 62) - 1, 1ull << 62,
	(1ull << 63) - 2, (1ull << 63) - 1, 1ull << 63, (1ull << 63) + 1,
	UINT64_MAX - 1, UINT64_MAX,
};

/* Names worth trying; the input may also spell its own. */
static const char *const names[] = {
	"a.py", "/app/b.py", "<frozen importlib._bootstrap>",
	"/x/\x1b[2J\x1b]0;t\x07.py", "a;b c\nd.py", "\xff\xc2\x9b\xc3\xa9.py",
	"", "\\x1b",
};

struct in {
	const uint8_t *p;
	size_t n;
};

static unsigned u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint32_t u32(struct in *in)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 8 | u8(in);
	return v;
}

static uint64_t u64(struct in *in)
{
	return (uint64_t)u32(in) << 32 | u32(in);
}

/* A size: mostly one of the interesting ones, plus or minus a little. */
static uint64_t a_size(struct in *in)
{
	unsigned k = u8(in);

	if (k < 200)
		return sizes[k % (sizeof(sizes) / sizeof(sizes[0]))] + (int8_t)u8(in);
	return u64(in);
}

/* What the harness believes the agent has sent on the connection. */
struct out {
	uint8_t *buf; /* BUF_CAP bytes */
};

#define MAX_TB 128u  /* limits.tracebacks */
#define MAX_PLAN 64u

struct conn {
	uint32_t nstr, nframe, ntb;   /* tables sent so far */
	uint32_t str0, frame0, tb0;   /* at this reply's head */
	uint64_t ntraces, got, total; /* this reply */
	uint32_t max_frame_ids;       /* longest traceback sent */
	/* table replies (wire minor 3): the receiver's table as the harness
	 * believes it, and the rows a table head planned */
	uint32_t table;               /* this reply's kind, 0: none */
	uint64_t row[MAX_TB];
	uint8_t present[MAX_TB];
	uint32_t plan_tb[MAX_PLAN];
	uint64_t plan_size[MAX_PLAN];
	unsigned nplan, sent;
};

/* A planned row's estimates: valid ones (blocks for bytes, allocated at
 * least in use). */
static struct wire_trace_est est_of(uint64_t size)
{
	return (struct wire_trace_est){ size ? 1 : 0, size + (size < UINT64_MAX),
					size ? 2 : 1 };
}

/* A SNAP_HEAD's interning fields in step with the connection, and the
 * counts of what the reply adds, from the input. */
static void head_in_step(struct in *in, const struct conn *c,
			 struct wire_snap_head *h)
{
	h->first_string = c->nstr;
	h->first_frame = c->nframe;
	h->first_traceback = c->ntb;
	h->new_strings = u8(in) % 24;
	h->new_frames = u8(in) % 48;
	h->new_tracebacks = u8(in) % 48;
	h->traceback_limit = u8(in);
	h->tracing = 1;
}

/* A table head: plan its rows (distinct traceback ids among those the
 * connection will have after this reply's tracebacks) and announce the
 * table they make, in step unless the input says otherwise. */
static int table_head(struct in *in, struct conn *c, struct out *o)
{
	struct wire_snap_head h = { 0 };
	uint8_t used[MAX_TB] = { 0 };
	uint64_t cur = 0, rows = 0;
	uint32_t ntb;

	head_in_step(in, c, &h);
	h.sample_size = 4096;
	h.table = u8(in) < 128 ? WIRE_TABLE_FULL : WIRE_TABLE_DELTA;
	ntb = c->ntb + h.new_tracebacks;
	c->nplan = 0;
	for (unsigned n = u8(in) % MAX_PLAN; n && ntb; n--) {
		uint32_t tb = u8(in) % ntb;

		if (tb >= MAX_TB || used[tb])
			continue;
		used[tb] = 1;
		c->plan_tb[c->nplan] = tb;
		c->plan_size[c->nplan++] = a_size(in);
	}
	for (uint32_t tb = 0; tb < MAX_TB; tb++) {
		uint64_t v = c->row[tb];
		int here = h.table == WIRE_TABLE_DELTA && c->present[tb];

		for (unsigned i = 0; i < c->nplan; i++)
			if (c->plan_tb[i] == tb) {
				v = c->plan_size[i];
				here = 1;
			}
		if (here) {
			rows++;
			cur += v; /* wraps: the receiver refuses it then */
		}
	}
	h.ntraces = c->nplan;
	h.table_rows = rows;
	h.traced_current = cur;
	if (u8(in) > 240) /* out of step */
		h.table_rows += (int8_t)u8(in);
	if (u8(in) > 240)
		h.traced_current += (int8_t)u8(in);
	if (u8(in) > 250)
		h.table = u8(in);
	c->str0 = c->nstr;
	c->frame0 = c->nframe;
	c->tb0 = c->ntb;
	c->ntraces = h.ntraces;
	c->got = c->total = 0;
	c->sent = 0;
	c->table = h.table;
	return wire_enc_snap_head(o->buf, BUF_CAP, &h);
}

/* A table reply was taken: the receiver's table now. */
static void table_taken(struct conn *c)
{
	if (c->table == WIRE_TABLE_FULL)
		memset(c->present, 0, sizeof(c->present));
	for (unsigned i = 0; i < c->nplan; i++) {
		c->row[c->plan_tb[i]] = c->plan_size[i];
		c->present[c->plan_tb[i]] = 1;
	}
}


/* Encode the next frame from the input into o->buf: its length, or 0 when
 * the input is used up. */
static size_t next_frame(struct in *in, struct conn *c, struct out *o)
{
	unsigned op = u8(in) % 10, k, n;
	struct wire_chunk ck;
	int len = 0;

	if (!in->n)
		return 0;
	switch (op) {
	case 0: { /* SNAP_HEAD in step with the connection */
		struct wire_snap_head h = { 0 };

		h.ntraces = u8(in) < 240 ? u8(in) : a_size(in);
		head_in_step(in, c, &h);
		if (u8(in) > 250) /* out of step */
			h.first_string += u8(in);
		c->str0 = c->nstr;
		c->frame0 = c->nframe;
		c->tb0 = c->ntb;
		c->ntraces = h.ntraces;
		c->got = c->total = 0;
		c->table = 0;
		len = wire_enc_snap_head(o->buf, BUF_CAP, &h);
		break;
	}
	case 9: /* a table head (a sampled reply of changed rows) */
		len = table_head(in, c, o);
		break;
	case 1: /* strings */
		wire_chunk_begin(&ck, o->buf, BUF_CAP, WIRE_SNAP_STRINGS, c->nstr);
		for (n = u8(in) % 8; n; n--) {
			k = u8(in);
			if (k < 128) {
				const char *s = names[k % (sizeof(names) / sizeof(names[0]))];

				if (wire_chunk_add_string(&ck, s, strlen(s)) < 0)
					break;
			} else { /* the input's own bytes, NULs included */
				size_t l = u8(in) % 32;

				if (l > in->n)
					l = in->n;
				if (wire_chunk_add_string(&ck, in->p, l) < 0)
					break;
				in->p += l;
				in->n -= l;
			}
			c->nstr++;
		}
		len = (int)wire_chunk_finish(&ck);
		break;
	case 2: /* frames */
		wire_chunk_begin(&ck, o->buf, BUF_CAP, WIRE_SNAP_FRAMES, c->nframe);
		for (n = u8(in) % 8; n; n--) {
			uint32_t sid = c->nstr ? u8(in) % c->nstr : u8(in);

			if (wire_chunk_add_frame(&ck, sid, u8(in) < 250 ? u8(in) : u32(in)) < 0)
				break;
			c->nframe++;
		}
		len = (int)wire_chunk_finish(&ck);
		break;
	case 3: { /* tracebacks */
		uint32_t f[64];

		wire_chunk_begin(&ck, o->buf, BUF_CAP, WIRE_SNAP_TRACEBACKS, c->ntb);
		for (n = u8(in) % 6; n; n--) {
			uint32_t nf = u8(in) % 64, total;

			for (uint32_t i = 0; i < nf; i++)
				f[i] = c->nframe ? u8(in) % c->nframe : u8(in);
			total = nf + (u8(in) > 200 ? u8(in) : 0);
			if (wire_chunk_add_traceback(&ck, f, nf, total) < 0)
				break;
			c->ntb++;
		}
		len = (int)wire_chunk_finish(&ck);
		break;
	}
	case 4: case 5: /* traces */
		wire_chunk_begin(&ck, o->buf, BUF_CAP, WIRE_SNAP_TRACES,
				 (uint32_t)c->got);
		for (n = u8(in) % 16; c->table && n && c->sent < c->nplan; n--) {
			uint64_t sz = c->plan_size[c->sent];
			struct wire_trace_est e = est_of(sz);

			if (wire_chunk_add_trace_est(&ck, sz, c->plan_tb[c->sent], 0,
						     &e) < 0)
				break;
			c->sent++;
			c->got++;
			c->total += sz;
		}
		for (n = c->table ? 0 : u8(in) % 16; n; n--) {
			uint64_t sz = a_size(in);
			uint32_t tb = c->ntb ? u8(in) % c->ntb : u8(in);

			if (wire_chunk_add_trace(&ck, sz, tb, u8(in) % 3) < 0)
				break;
			c->got++;
			c->total += sz; /* the agent's sum wraps the same way */
		}
		len = (int)wire_chunk_finish(&ck);
		break;
	case 6: { /* SNAP_END, consistent unless the input says not */
		struct wire_snap_end e = { c->got, c->total, c->nstr, c->nframe,
					   c->ntb, 0, 0 };

		if (u8(in) > 240)
			e.total_size += u8(in);
		len = wire_enc_snap_end(o->buf, BUF_CAP, &e);
		break;
	}
	case 7: { /* ERROR (the stream's first frame, or mid-reply) */
		char text[32];
		size_t l = u8(in) % (sizeof(text) - 1);

		if (l > in->n)
			l = in->n;
		memcpy(text, in->p, l);
		text[l] = '\0';
		in->p += l;
		in->n -= l;
		len = wire_enc_error(o->buf, BUF_CAP, 1 + u8(in) % 7, text);
		break;
	}
	default: { /* raw bytes */
		size_t l = u8(in) % 64;

		if (l > in->n)
			l = in->n;
		memcpy(o->buf, in->p, l);
		in->p += l;
		in->n -= l;
		len = (int)l;
		break;
	}
	}
	return len > 0 ? (size_t)len : 0;
}

static void check_text(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if ((c < 0x20 && c != '\n') || c == 0x7f)
			abort();
	}
}

/* Everything trmtop does with a snapshot it received. */
static void use(const struct snapshot *s, const struct snapshot *prev)
{
	const struct snap_trace *t = snapshot_traces(s);
	struct snap_report_opts o = { SNAP_KEY_TRACEBACK, 0, 5, NULL, NULL };
	struct snap_report r;
	uint64_t sum = 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	for (size_t i = 0; i < snapshot_ntraces(s); i++)
		sum += t[i].size;
	if (sum != snapshot_total_size(s) || sum > SNAP_SIZE_MAX)
		abort();
	f = open_memstream(&buf, &len);
	if (!f)
		return;
	for (int key = SNAP_KEY_FILENAME; key <= SNAP_KEY_TRACEBACK; key++) {
		int cum = key != SNAP_KEY_TRACEBACK && (sum & 1);
		int rc;

		o.key = key;
		o.cumulative = cum;
		rc = snapshot_report_top(s, &o, &r);
		if (rc == 0) {
			render_text(f, &r);
			render_json(f, &r);
			snap_report_fini(&r);
		} else if (rc != -EOVERFLOW && rc != -ENOMEM) {
			abort();
		}
		if (prev && snapshot_report_diff(s, prev, &o, &r) == 0) {
			if (r.total_size_diff != (__int128)snapshot_total_size(s) -
							 (__int128)snapshot_total_size(prev))
				abort();
			render_text(f, &r);
			snap_report_fini(&r);
		}
	}
	if (snapshot_report_stacks(s, &r) == 0) {
		render_collapsed(f, &r);
		snap_report_fini(&r);
	}
	fclose(f);
	check_text(buf, len);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct conn c = { 0 };
	struct out o = { malloc(BUF_CAP) };
	struct snapfetch *sf = snapfetch_new();
	struct snapshot *snap = snapshot_new(), *prev = NULL;
	struct trm_err err;
	size_t n;

	if (!o.buf || !sf || !snap || snapfetch_begin(sf, snap, NULL, NULL) < 0)
		goto out;
	snapfetch_set_limits(sf, &limits);
	while ((n = next_frame(&in, &c, &o)) > 0) {
		struct wire_msg msg;
		long fl = wire_parse_frame(o.buf, n, &msg);
		int rc;

		if (fl <= 0 || (size_t)fl != n)
			break; /* raw bytes that are no whole frame */
		memset(&err, 0, sizeof(err));
		rc = snapfetch_feed(sf, &msg, &err);
		if (rc == 0)
			continue;
		if (rc == 1) {
			if (c.table)
				table_taken(&c);
			use(snap, prev);
			snapshot_free(prev);
			prev = snap;
		} else if (rc == -TRM_EAGENT && snapfetch_agent_error(sf)) {
			snapshot_free(snap);
		} else {
			if (rc != -TRM_EPROTO && rc != -TRM_EAGENT && rc != -ENOMEM)
				abort();
			if (!err.msg[0])
				abort(); /* every error says why */
			break;   /* out of step: the connection is closed */
		}
		/* the next reply on the same connection */
		snap = snapshot_new();
		if (!snap || snapfetch_begin(sf, snap, NULL, NULL) < 0)
			break;
	}
out:
	snapshot_free(prev);
	snapshot_free(snap);
	snapfetch_free(sf);
	free(o.buf);
	return 0;
}
