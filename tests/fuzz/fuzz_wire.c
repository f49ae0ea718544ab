/* fuzz_wire.c - libFuzzer harness for the wire decoders and snapfetch.
 *
 * The input is a byte stream as the agent writes it on the data pipe:
 * frames are cut with wire_parse_frame, every frame goes through the
 * fixed-layout decoders, and the frames are fed to snapfetch_feed (as the
 * session does with what it reads) as the replies to consecutive
 * SNAPSHOT_REQs of one connection: after a complete snapshot, or an ERROR
 * reply, the next frame begins the next reply, with the connection's
 * interning tables kept.  Completed snapshots are read back.
 *
 * Build from the source root with every .c file of src/wire, src/snapshot
 * and src/util, plus src/session/snapfetch.c (B: a configured build dir):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -IB -Iinclude -Isrc/session tests/fuzz/fuzz_wire.c src/session/snapfetch.c \
 *     $WIRE_C $SNAPSHOT_C $UTIL_C -lm -o fuzz_wire
 *   ./fuzz_wire -max_total_time=30 tests/fuzz/corpus/wire
 * Seeds: a real two-snapshot stream captured from the agent (3.12),
 * hand-made streams (two snapshots sharing tables, ERROR then a snapshot,
 * an empty snapshot then another). */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "snapfetch.h"
#include "trmtop/snapshot.h"
#include "trmtop/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touch everything a completed snapshot holds. */
static void read_back(const struct snapshot *s)
{
	const struct snap_trace *t = snapshot_traces(s);
	size_t n = snapshot_ntraces(s);
	volatile uint64_t sink = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t nf, total, fid, line;
		const uint32_t *f = snapshot_traceback(s, t[i].traceback, &nf, &total);

		for (uint32_t k = 0; f && k < nf; k++) {
			size_t len;
			const char *str;

			snapshot_frame(s, f[k], &fid, &line);
			str = snapshot_str(s, fid, &len);
			sink += line + (str && len ? (uint8_t)str[len - 1] : 0);
		}
		sink += t[i].size + total;
	}
	sink += snapshot_total_size(s);
	(void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapfetch *sf = snapfetch_new();
	struct snapshot *snap = snapshot_new();
	struct trm_err err;
	size_t off = 0;

	if (!sf || !snap)
		goto out;
	if (snapfetch_begin(sf, snap, NULL, NULL) < 0)
		goto out;
	while (off < size) {
		struct wire_msg msg;
		union {
			struct wire_hello hello;
			struct wire_stats stats;
			struct wire_start start;
			struct wire_state state;
			struct wire_error error;
			struct wire_snap_head head;
			struct wire_snap_end end;
		} u;
		long n = wire_parse_frame(data + off, size - off, &msg);
		int rc;

		if (n <= 0)
			break;
		off += (size_t)n;
		(void)wire_dec_hello(&msg, &u.hello);
		(void)wire_dec_stats(&msg, &u.stats);
		(void)wire_dec_start(&msg, &u.start);
		(void)wire_dec_state(&msg, &u.state);
		(void)wire_dec_error(&msg, &u.error);
		(void)wire_dec_snap_head(&msg, &u.head);
		(void)wire_dec_snap_end(&msg, &u.end);

		memset(&err, 0, sizeof(err));
		rc = snapfetch_feed(sf, &msg, &err);
		if (rc == 0)
			continue;
		if (rc == 1)
			read_back(snap);
		else if (rc != -TRM_EAGENT || snapfetch_agent_error(sf) == 0)
			break; /* the connection is out of step */
		/* next reply on the same connection */
		snapshot_free(snap);
		snap = snapshot_new();
		if (!snap || snapfetch_begin(sf, snap, NULL, NULL) < 0)
			break;
	}
out:
	snapshot_free(snap);
	snapfetch_free(sf);
	return 0;
}
