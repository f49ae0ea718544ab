#include "config.h"

/* fuzz_trm.c - libFuzzer harness for the .trm reader.
 * Seed corpus: tests/fuzz/corpus/trm (small valid files).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I<build> \
 *     tests/fuzz/fuzz_trm.c src/snapshot/\*.c src/util/\*.c -lm
 *   ./a.out -max_total_time=60 tests/fuzz/corpus/trm
 *
 * Any input must give a snapshot or -TRM_EFORMAT (-ENOMEM), never a crash,
 * a leak or an allocation out of proportion with the input.  Each input is
 * read twice: as is, and with its checksum fixed up (so that mutations
 * which keep the structure valid reach the code after the reader).  An
 * accepted snapshot goes through statistics, compare, a filter, and is
 * written back and re-read: the writer must handle whatever the reader
 * accepts, and the copy must have the same traces. */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void exercise(struct snapshot *s)
{
	static const struct snap_filter filters[] = {
		{ .inclusive = 1, .pattern = "*[a-f]?.py*" },
		{ .inclusive = 0, .pattern = "<*>", .all_frames = 1 },
		{ .inclusive = 0, .is_domain_filter = 1, .domain = 3 },
	};
	struct snap_stats st;
	struct snap_diffs d;
	struct snapshot *f, *s2;
	struct trm_err err = { 0 };
	char *buf = NULL;
	size_t len = 0;
	FILE *mf;
	int key, cum;

	for (key = SNAP_KEY_FILENAME; key <= SNAP_KEY_TRACEBACK; key++)
		for (cum = 0; cum < 2; cum++) {
			if (snapshot_statistics(s, key, cum, &st) == 0)
				snap_stats_fini(&st);
			else if (!(cum && key == SNAP_KEY_TRACEBACK))
				abort();
		}
	f = snapshot_filter(s, filters, 3);
	if (f) {
		if (snapshot_compare(s, f, SNAP_KEY_TRACEBACK, 0, &d) == 0)
			snap_diffs_fini(&d);
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
