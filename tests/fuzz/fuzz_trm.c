/* fuzz_trm.c - libFuzzer harness for the .trm reader and what reads its
 * result: statistics, compare, a filter, the writer, and the rows of every report and
 * every sink.
 * Seed corpus: tests/fuzz/corpus/trm (small valid files, sizes near 2^63
 * among them: tests/fuzz/make_trm_seeds.py); dictionary:
 * tests/fuzz/dict/trm.dict (varints of 2^63 +- k, 2^64 - 1, ...).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I<build> \
 *     tests/fuzz/fuzz_trm.c src/snapshot/\*.c src/render/\*.c src/util/\*.c -lm
 *   ./a.out -max_total_time=60 -dict=tests/fuzz/dict/trm.dict tests/fuzz/corpus/trm
 *
 * Any input must give a snapshot or -TRM_EFORMAT (-ENOMEM), never a crash,
 * a leak, undefined behaviour or an allocation out of proportion with the
 * input.  Each input is read twice: as is, and with its checksum fixed up
 * (so that mutations which keep the structure valid reach the code after
 * the reader).  An accepted snapshot goes through statistics (cumulative
 * ones may say -EOVERFLOW, nothing else), compare with a filtered copy both
 * ways (checked exact against 128-bit sums), every report and sink (no
 * control byte in text output), and is written back and re-read: the writer must
 * handle whatever the reader accepts, and the copy must have the same
 * traces. */

#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trmtop/render.h"
#include "trmtop/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t crc32_ieee(const uint8_t *p, size_t len)
{
	uint32_t crc = 0xffffffffu;
	int k;

	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
	}
	return ~crc;
}

/* Text output: every byte printable ASCII, '\n', or >= 0x80 (the escaper
 * is tested for UTF-8 validity in the unit tests). */
static void check_text(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if ((c < 0x20 && c != '\n') || c == 0x7f)
			abort();
	}
}

/* Render into memory and check: every report of s (or the diff d). */
static void render_all(const struct snap_report *d, const struct snapshot *s,
		       enum snap_key key, int cum)
{
	struct snap_report_opts o = { key, cum, 3, NULL, NULL };
	struct snap_pick pick = { 1, NULL, 0 };
	struct snap_report r;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return;
	if (s && snapshot_report_top(s, &o, &r) == 0) {
		render_text(f, &r);
		render_json(f, &r);
		snap_report_fini(&r);
	}
	if (s && key == SNAP_KEY_TRACEBACK &&
	    snapshot_report_traceback(s, &pick, &o, &r) == 0) {
		render_text(f, &r);
		render_json(f, &r);
		snap_report_fini(&r);
	}
	if (d) {
		render_text(f, d);
		render_json(f, d);
	}
	if (s && key == SNAP_KEY_LINENO && !cum && snapshot_report_stacks(s, &r) == 0) {
		render_collapsed(f, &r);
		snap_report_fini(&r);
	}
	fclose(f);
	check_text(buf, len);
	free(buf);
}

/* compare(a, b): exact, and for a non-cumulative key the row differences
 * add up to the total difference (each trace is in exactly one row). */
static void compare_checked(const struct snapshot *a, const struct snapshot *b,
			    enum snap_key key, int cum)
{
	struct snap_diffs d;
	__int128 sum = 0;
	int rc = snapshot_compare(a, b, key, cum, &d);

	if (rc == -EOVERFLOW && cum)
		return;
	if (rc == -EINVAL && cum && key == SNAP_KEY_TRACEBACK)
		return;
	if (rc == -ENOMEM)
		return;
	if (rc)
		abort();
	if (d.total_size_diff != (__int128)snapshot_total_size(a) -
					 (__int128)snapshot_total_size(b))
		abort();
	for (size_t i = 0; i < d.n; i++) {
		if (d.v[i].size > SNAP_SIZE_MAX || d.v[i].size_diff < -INT64_MAX)
			abort();
		sum += d.v[i].size_diff;
	}
	if (!cum && sum != d.total_size_diff)
		abort();
	snap_diffs_fini(&d);
	{
		struct snap_report_opts o = { key, cum, 3, NULL, NULL };
		struct snap_report r;

		if (snapshot_report_diff(a, b, &o, &r) == 0) {
			render_all(&r, NULL, key, cum);
			snap_report_fini(&r);
		}
	}
}

static void exercise(struct snapshot *s)
{
	static const struct snap_filter filters[] = {
		{ .inclusive = 1, .pattern = "*[a-f]?.py*" },
		{ .inclusive = 0, .pattern = "<*>", .all_frames = 1 },
		{ .inclusive = 0, .is_domain_filter = 1, .domain = 3 },
	};
	struct snap_stats st;
	struct snapshot *f, *s2;
	struct trm_err err = { 0 };
	char *buf = NULL;
	size_t len = 0;
	FILE *mf;
	int key, cum, rc;

	if (snapshot_total_size(s) > SNAP_SIZE_MAX)
		abort();
	for (key = SNAP_KEY_FILENAME; key <= SNAP_KEY_TRACEBACK; key++)
		for (cum = 0; cum < 2; cum++) {
			rc = snapshot_statistics(s, key, cum, &st);
			if (rc == 0) {
				if (st.total_size != snapshot_total_size(s))
					abort();
				snap_stats_fini(&st);
				render_all(NULL, s, key, cum);
			} else if (!(cum && key == SNAP_KEY_TRACEBACK) &&
				   !(cum && rc == -EOVERFLOW) && rc != -ENOMEM) {
				abort();
			}
		}
	f = snapshot_filter(s, filters, 3);
	if (f) {
		for (key = SNAP_KEY_FILENAME; key <= SNAP_KEY_TRACEBACK; key++)
			for (cum = 0; cum < 2; cum++) {
				compare_checked(s, f, key, cum);
				compare_checked(f, s, key, cum);
			}
		snapshot_free(f);
	}
	mf = open_memstream(&buf, &len);
	if (!mf)
		return;
	if (snapshot_write_trm(s, mf, &err) != 0) {
		fclose(mf);
		free(buf);
		abort();
	}
	fclose(mf);
	s2 = snapshot_read_trm_mem((const uint8_t *)buf, len, &err);
	if (!s2 || snapshot_ntraces(s2) != snapshot_ntraces(s) ||
	    snapshot_total_size(s2) != snapshot_total_size(s))
		abort();
	snapshot_free(s2);
	free(buf);
}

static void one(const uint8_t *data, size_t size)
{
	struct trm_err err = { 0 };
	struct snapshot *s = snapshot_read_trm_mem(data, size, &err);

	if (!s) {
		if (err.code != -TRM_EFORMAT && err.code != -ENOMEM)
			abort();
		return;
	}
	exercise(s);
	snapshot_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;
	uint32_t crc;

	one(data, size);
	if (size < 24)
		return 0;
	copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	crc = crc32_ieee(copy, size - 8);
	copy[size - 8] = (uint8_t)crc;
	copy[size - 7] = (uint8_t)(crc >> 8);
	copy[size - 6] = (uint8_t)(crc >> 16);
	copy[size - 5] = (uint8_t)(crc >> 24);
	one(copy, size);
	free(copy);
	return 0;
}
