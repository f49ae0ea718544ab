/* tmdump_tool.c - test helper for the tracemalloc dump reader and writer,
 * driven by tmdump_check.py under each interpreter.
 *
 *   tmdump_tool dump IN.pickle
 *       read a dump; print JSON: traceback_limit, traces (domain, size,
 *       frames most recent first, total_nframe) and the model's
 *       statistics('traceback') (frames oldest first)
 *   tmdump_tool convert IN.pickle OUT.pickle HEXVERSION
 *       read a dump and write it for that Python version
 *   tmdump_tool synth OUT.pickle HEXVERSION
 *       build a snapshot in C, write it for that version, print its JSON
 *
 * Exit 0 on success, 1 on error (message on stderr). */

#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trmtop/snapshot.h"

static void json_str(const char *p, size_t len)
{
	size_t i;

	putchar('"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_frame(const struct snapshot *s, uint32_t fid)
{
	uint32_t fn, lineno;
	const char *p;
	size_t len;

	snapshot_frame(s, fid, &fn, &lineno);
	p = snapshot_str(s, fn, &len);
	putchar('[');
	json_str(p ? p : "", p ? len : 0);
	printf(", %" PRIu32 "]", lineno);
}

static int print_json(const struct snapshot *s)
{
	const struct snap_trace *t = snapshot_traces(s);
	size_t n = snapshot_ntraces(s), i;
	struct snap_stats st;
	uint32_t j, nf, total;
	const uint32_t *fr;
	int rc;

	printf("{\"traceback_limit\": %" PRIu32 ",\n \"traces\": [",
	       snapshot_cmeta(s)->traceback_limit);
	for (i = 0; i < n; i++) {
		fr = snapshot_traceback(s, t[i].traceback, &nf, &total);
		printf("%s\n  [%" PRIu32 ", %" PRIu64 ", [", i ? "," : "",
		       t[i].domain, t[i].size);
		for (j = 0; j < nf; j++) {
			if (j)
				printf(", ");
			json_frame(s, fr[j]);
		}
		printf("], %" PRIu32 "]", total);
	}
	printf("],\n \"stats\": [");
	rc = snapshot_statistics(s, SNAP_KEY_TRACEBACK, 0, &st);
	if (rc) {
		fprintf(stderr, "tmdump_tool: statistics: %s\n",
			trm_strerror(rc));
		return rc;
	}
	for (i = 0; i < st.n; i++) {
		printf("%s\n  {\"size\": %" PRIu64 ", \"count\": %" PRIu64
		       ", \"frames\": [",
		       i ? "," : "", st.v[i].size, st.v[i].count);
		for (j = 0; j < st.v[i].nframe; j++) {
			printf("%s[", j ? ", " : "");
			json_str(st.v[i].frames[j].filename,
				 st.v[i].frames[j].filename_len);
			printf(", %" PRIu32 "]", st.v[i].frames[j].lineno);
		}
		printf("]}");
	}
	printf("]}\n");
	snap_stats_fini(&st);
	return 0;
}

static struct snapshot *read_file(const char *path)
{
	struct trm_err err = { 0 };
	struct snapshot *s = NULL;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, got;
	FILE *f;

	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "tmdump_tool: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (len == cap) {
			uint8_t *p = realloc(buf, cap ? cap * 2 : 65536);

			if (!p) {
				fprintf(stderr, "tmdump_tool: out of memory\n");
				goto out;
			}
			buf = p;
			cap = cap ? cap * 2 : 65536;
		}
		got = fread(buf + len, 1, cap - len, f);
		if (!got)
			break;
		len += got;
	}
	if (ferror(f)) {
		fprintf(stderr, "tmdump_tool: %s: read error\n", path);
		goto out;
	}
	s = snapshot_read_tracemalloc_mem(buf, len, &err);
	if (!s)
		fprintf(stderr, "tmdump_tool: %s: %s\n", path, err.msg);
out:
	fclose(f);
	free(buf);
	return s;
}

static int write_file(const struct snapshot *s, const char *path)
{
	struct trm_err err = { 0 };
	FILE *f = fopen(path, "wb");
	int rc;

	if (!f) {
		fprintf(stderr, "tmdump_tool: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	rc = snapshot_write_tracemalloc(s, f, &err);
	if (fclose(f) && !rc)
		rc = -EIO;
	if (rc)
		fprintf(stderr, "tmdump_tool: %s: %s\n", path,
			err.msg[0] ? err.msg : trm_strerror(rc));
	return rc;
}

static int parse_hex(const char *arg, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 0);
	if (errno || *end || end == arg || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* A snapshot exercising what the writer must get right: shared frames and
 * tracebacks, non-ASCII and long filenames, truncated tracebacks
 * (total_nframe > n), several domains, sizes across every int encoding
 * a snapshot can need (BININT1 .. an 8-byte LONG1: the sizes add up to at
 * most 2**63-1, so none needs LONG1's sign byte), an empty traceback. */
static struct snapshot *synth(uint32_t hexversion)
{
	static const char *names[] = {
		"/srv/app/main.py", "/srv/app/d\xc3\xa9j\xc3\xa0.py",
		"<frozen importlib._bootstrap>", "/tmp/\xe6\xa8\xa1\xe5\x9d\x97.py",
		"quote\"back\\slash.py",
	};
	static const uint64_t sizes[] = {
		0, 1, 255, 256, 65535, 65536, 0x7fffffff, 0x80000000ull,
		3000000000ull, 1ull << 40, 1ull << 62,
		(1ull << 62) - (1ull << 41), /* the total stays below 2**63 */
	};
	char longname[600];
	struct snapshot *s = snapshot_new();
	uint32_t str[6], fr[40], tb[12];
	uint32_t i, j;

	if (!s)
		return NULL;
	snapshot_meta(s)->py_hexversion = hexversion;
	snapshot_meta(s)->traceback_limit = 25;
	for (i = 0; i < 5; i++)
		str[i] = snapshot_intern_str(s, names[i], strlen(names[i]));
	memset(longname, 'x', sizeof(longname));
	memcpy(longname, "/long/", 6);
	memcpy(longname + sizeof(longname) - 3, ".py", 3);
	str[5] = snapshot_intern_str(s, longname, sizeof(longname));
	for (i = 0; i < 40; i++)
		fr[i] = snapshot_intern_frame(s, str[i % 6],
					      i * 977u % 70000u);
	for (i = 0; i < 12; i++) {
		uint32_t n = (i * 7) % 26;

		/* hexversion < 3.9 has no total_nframe: keep it = n */
		tb[i] = snapshot_intern_traceback(
			s, fr + (i % 10), n,
			hexversion >= 0x03090000 || !hexversion ? n + (i % 3)
								 : n);
	}
	/* one trace per size */
	for (i = 0; i < 12; i++)
		if (snapshot_add_trace(s, i % 3 ? 0 : 424242 + i, sizes[i],
				       tb[i]))
			goto fail;
	/* more than one APPENDS batch, sharing the small ones */
	for (j = 0; j < 2500; j++)
		if (snapshot_add_trace(s, j % 5 == 0, 16 + j % 7, tb[j % 6]))
			goto fail;
	return s;
fail:
	snapshot_free(s);
	return NULL;
}

int main(int argc, char **argv)
{
	struct snapshot *s = NULL;
	uint32_t hex;
	int rc = 1;

	if (argc == 3 && !strcmp(argv[1], "dump")) {
		s = read_file(argv[2]);
		if (s && !print_json(s))
			rc = 0;
	} else if (argc == 5 && !strcmp(argv[1], "convert")) {
		if (parse_hex(argv[4], &hex))
			goto usage;
		s = read_file(argv[2]);
		if (s) {
			snapshot_meta(s)->py_hexversion = hex;
			if (!write_file(s, argv[3]))
				rc = 0;
		}
	} else if (argc == 4 && !strcmp(argv[1], "synth")) {
		if (parse_hex(argv[3], &hex))
			goto usage;
		s = synth(hex);
		if (!s)
			fprintf(stderr, "tmdump_tool: synth failed\n");
		else if (!write_file(s, argv[2]) && !print_json(s))
			rc = 0;
	} else {
		goto usage;
	}
	snapshot_free(s);
	return rc;
usage:
	fprintf(stderr, "usage: tmdump_tool dump IN | convert IN OUT HEX | "
			"synth OUT HEX\n");
	return 2;
}
