/* fuzz_tmdump.c - libFuzzer harness for the tracemalloc dump reader.
 * Seed corpus: tests/fuzz/corpus/tmdump (the fixtures of every version).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I<build> \
 *     tests/fuzz/fuzz_tmdump.c src/snapshot/\*.c src/util/\*.c -lm
 *   ./a.out -max_total_time=60 tests/fuzz/corpus/tmdump
 *
 * Any input must give a snapshot or -TRM_EFORMAT, never a crash, a leak
 * or an unbounded allocation.  An accepted input is also written back and
 * re-read: the writer must handle whatever the reader accepts. */

#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "trmtop/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trm_err err = { 0 };
	struct snapshot *s, *s2;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	s = snapshot_read_tracemalloc_mem(data, size, &err);
	if (!s) {
		if (err.code != -TRM_EFORMAT && err.code != -ENOMEM)
			abort();
		return 0;
	}
	f = open_memstream(&buf, &len);
	if (f) {
		struct trm_err werr = { 0 };

		if (snapshot_write_tracemalloc(s, f, &werr))
			abort();
		fclose(f);
		s2 = snapshot_read_tracemalloc_mem((const uint8_t *)buf, len,
						   &werr);
		if (!s2 || snapshot_ntraces(s2) != snapshot_ntraces(s))
			abort();
		snapshot_free(s2);
		free(buf);
	}
	snapshot_free(s);
	return 0;
}
