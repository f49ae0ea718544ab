/* snapcheck.c - test helper: reads snapshots and queries from a simple
 * text file, prints the results of the snapshot module in a canonical
 * text form that xcheck.py compares with tracemalloc's own results.
 *
 * Input, one record per line, fields separated by one space; strings are
 * hex-encoded UTF-8 bytes ("-" for an empty string):
 *   SNAP <hexversion> <traceback_limit>       starts snapshot number k
 *   S <hex>                                    string id 0, 1, ...
 *   T <domain> <size> <total_nframe> <n> (<sid> <lineno>)*n   most recent first
 *   Q STATS <snap> <key> <cumulative>          key: 0 filename 1 lineno 2 traceback
 *   Q COMPARE <new> <old> <key> <cumulative>
 *   Q FILTER <snap> <nfilters>, then nfilters lines
 *   F <inclusive> <is_domain> <hexpattern> <has_lineno> <lineno> <all_frames> <has_domain> <domain>
 *   Q MATCH <hexversion> <hexpattern> <hexname>
 *   SRC <sid> <lineno> <hextext>               a source line (for -w)
 * Output: "Q <n>" then the result lines of query n (see xcheck.py).
 * Every snapshot also goes through .trm (write, read back); STATS checks
 * that the copy gives the same result and says "TRM-MISMATCH" if not.
 * Also: snapcheck -w DIR writes each snapshot as DIR/<k>.trm. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot_int.h"

#define MAXSNAP 64
#define MAXF 16

static struct snapshot *snaps[MAXSNAP], *copies[MAXSNAP];
static size_t nsnaps;

static void die(const char *what)
{
	fprintf(stderr, "snapcheck: %s\n", what);
	exit(2);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode hex in place; returns the length. */
static size_t unhex(char *s)
{
	size_t n = 0, i;

	if (strcmp(s, "-") == 0) {
		s[0] = '\0';
		return 0;
	}
	for (i = 0; s[i] && s[i + 1]; i += 2) {
		int a = hexval(s[i]), b = hexval(s[i + 1]);

		if (a < 0 || b < 0)
			die("bad hex");
		s[n++] = (char)(a * 16 + b);
	}
	s[n] = '\0';
	return n;
}

static void puthex(const char *p, size_t len)
{
	if (!len)
		fputs("-", stdout);
	for (size_t i = 0; i < len; i++)
		printf("%02x", (unsigned char)p[i]);
}

static void putlocs(const struct snap_loc *l, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		fputs(i ? "," : " ", stdout);
		puthex(l[i].filename, l[i].filename_len);
		printf(":%" PRIu32, l[i].lineno);
	}
}

/* The next space-separated field of *save (NULL at the end of line). */
static char *field(char **save)
{
	char *p = *save, *t;

	while (*p == ' ' || *p == '\n')
		p++;
	if (!*p)
		return NULL;
	t = p;
	while (*p && *p != ' ' && *p != '\n')
		p++;
	if (*p)
		*p++ = '\0';
	*save = p;
	return t;
}

static uint64_t num(char **save)
{
	char *t = field(save), *end;
	unsigned long long v;

	if (!t)
		die("missing field");
	errno = 0;
	v = strtoull(t, &end, 0);
	if (errno || *end)
		die("bad number");
	return v;
}

static char *word(char **save)
{
	char *t = field(save);

	if (!t)
		die("missing field");
	return t;
}

static int stats_equal(const struct snap_stats *a, const struct snap_stats *b)
{
	size_t i;
	uint32_t k;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++) {
		if (a->v[i].size != b->v[i].size ||
		    a->v[i].count != b->v[i].count ||
		    a->v[i].nframe != b->v[i].nframe)
			return 0;
		for (k = 0; k < a->v[i].nframe; k++)
			if (a->v[i].frames[k].filename_len !=
				    b->v[i].frames[k].filename_len ||
			    memcmp(a->v[i].frames[k].filename,
				   b->v[i].frames[k].filename,
				   a->v[i].frames[k].filename_len) ||
			    a->v[i].frames[k].lineno != b->v[i].frames[k].lineno)
				return 0;
	}
	return 1;
}

static void q_stats(char **save)
{
	size_t k = num(save), i;
	int key = (int)num(save), cum = (int)num(save), rc;
	struct snap_stats st, st2;

	if (k >= nsnaps)
		die("bad snapshot");
	rc = snapshot_statistics(snaps[k], key, cum, &st);
	if (rc < 0) {
		printf("ERR\n");
		return;
	}
	for (i = 0; i < st.n; i++) {
		printf("%" PRIu64 " %" PRIu64 " %" PRIu32, st.v[i].size,
		       st.v[i].count, st.v[i].nframe);
		putlocs(st.v[i].frames, st.v[i].nframe);
		putchar('\n');
	}
	if (snapshot_statistics(copies[k], key, cum, &st2) < 0 ||
	    !stats_equal(&st, &st2))
		printf("TRM-MISMATCH\n");
	snap_stats_fini(&st2);
	snap_stats_fini(&st);
}

static void q_compare(char **save)
{
	size_t a = num(save), b = num(save), i;
	int key = (int)num(save), cum = (int)num(save);
	struct snap_diffs d;

	if (a >= nsnaps || b >= nsnaps)
		die("bad snapshot");
	/* through .trm: the copies */
	if (snapshot_compare(copies[a], copies[b], key, cum, &d) < 0) {
		printf("ERR\n");
		return;
	}
	for (i = 0; i < d.n; i++) {
		printf("%" PRIu64 " %" PRId64 " %" PRIu64 " %" PRId64 " %" PRIu32,
		       d.v[i].size, d.v[i].size_diff, d.v[i].count,
		       d.v[i].count_diff, d.v[i].nframe);
		putlocs(d.v[i].frames, d.v[i].nframe);
		putchar('\n');
	}
	snap_diffs_fini(&d);
}

static void q_filter(FILE *in, char **save)
{
	size_t k = num(save), nf = num(save), i;
	struct snap_filter f[MAXF];
	char *lines[MAXF] = { 0 };
	struct snapshot *r;
	const struct snap_trace *tr;

	if (k >= nsnaps || nf > MAXF)
		die("bad filter query");
	memset(f, 0, sizeof(f));
	for (i = 0; i < nf; i++) {
		char *line = NULL, *sv, *t;
		size_t cap = 0;

		if (getline(&line, &cap, in) < 0)
			die("missing filter");
		lines[i] = line;
		sv = line;
		t = field(&sv);
		if (!t || strcmp(t, "F"))
			die("bad filter line");
		f[i].inclusive = (int)num(&sv);
		f[i].is_domain_filter = (int)num(&sv);
		t = word(&sv);
		unhex(t);
		f[i].pattern = t;
		f[i].has_lineno = (int)num(&sv);
		f[i].lineno = (uint32_t)num(&sv);
		f[i].all_frames = (int)num(&sv);
		f[i].has_domain = (int)num(&sv);
		f[i].domain = (uint32_t)num(&sv);
	}
	r = snapshot_filter(snaps[k], f, nf);
	if (!r) {
		printf("ERR\n");
		goto out;
	}
	tr = snapshot_traces(r);
	for (i = 0; i < snapshot_ntraces(r); i++) {
		uint32_t n, total, j;
		const uint32_t *fr = snapshot_traceback(r, tr[i].traceback, &n,
							&total);

		printf("%" PRIu32 " %" PRIu64 " %" PRIu32, tr[i].domain,
		       tr[i].size, n);
		for (j = 0; j < n; j++) {
			uint32_t sid, lineno;
			const char *name;
			size_t len;

			snapshot_frame(r, fr[j], &sid, &lineno);
			fputs(j ? "," : " ", stdout);
			name = snapshot_str(r, sid, &len);
			puthex(name, len);
			printf(":%" PRIu32, lineno);
		}
		putchar('\n');
	}
	snapshot_free(r);
out:
	for (i = 0; i < nf; i++)
		free(lines[i]);
}

static void q_match(char **save)
{
	uint32_t v = (uint32_t)num(save);
	char *pat = word(save), *name = word(save);
	size_t plen = unhex(pat), nlen = unhex(name);
	struct snap_glob *g = snap_glob_compile(pat, plen, v);
	int r = -1;

	/* lengths: a name may hold NUL bytes */
	if (g)
		r = snap_glob_match(g, name, nlen);
	snap_glob_free(g);
	printf("%s\n", r < 0 ? "ERR" : r ? "1" : "0");
}

static struct snapshot *roundtrip(struct snapshot *s)
{
	struct trm_err err = { 0 };
	struct snapshot *c;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		die("open_memstream");
	if (snapshot_write_trm(s, f, &err) < 0)
		die(err.msg);
	fclose(f);
	c = snapshot_read_trm_mem((const uint8_t *)buf, len, &err);
	if (!c)
		die(err.msg);
	free(buf);
	return c;
}

int main(int argc, char **argv)
{
	const char *wdir = NULL;
	FILE *in;
	char *line = NULL;
	size_t cap = 0, nq = 0, i;
	uint32_t *fr = NULL;
	size_t capfr = 0;

	if (argc == 4 && strcmp(argv[1], "-w") == 0) {
		wdir = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc != 2)
		die("usage: snapcheck [-w DIR] INPUT");
	in = fopen(argv[1], "r");
	if (!in)
		die("cannot open input");
	while (getline(&line, &cap, in) >= 0) {
		char *save = line, *t = field(&save);
		struct snapshot *s = nsnaps ? snaps[nsnaps - 1] : NULL;

		if (!t)
			continue;
		if (strcmp(t, "SNAP") == 0) {
			if (nsnaps == MAXSNAP)
				die("too many snapshots");
			s = snaps[nsnaps++] = snapshot_new();
			if (!s)
				die("oom");
			snapshot_meta(s)->py_hexversion = (uint32_t)num(&save);
			snapshot_meta(s)->traceback_limit = (uint32_t)num(&save);
		} else if (strcmp(t, "S") == 0) {
			char *h = word(&save);
			size_t n = unhex(h);

			if (!s || snapshot_intern_str(s, h, n) !=
					  snapshot_nstrs(s) - 1)
				die("bad string (duplicate?)");
		} else if (strcmp(t, "T") == 0) {
			uint32_t dom = (uint32_t)num(&save), total, n, k, tb;
			uint64_t size = num(&save);

			total = (uint32_t)num(&save);
			n = (uint32_t)num(&save);
			if (n + 1 > capfr) {
				capfr = n + 1;
				fr = realloc(fr, capfr * sizeof(*fr));
				if (!fr)
					die("oom");
			}
			for (k = 0; k < n; k++) {
				uint32_t sid = (uint32_t)num(&save);
				uint32_t lineno = (uint32_t)num(&save);

				fr[k] = snapshot_intern_frame(s, sid, lineno);
				if (fr[k] == SNAP_NONE)
					die("bad frame");
			}
			tb = snapshot_intern_traceback(s, fr, n, total);
			if (tb == SNAP_NONE || snapshot_add_trace(s, dom, size, tb))
				die("bad trace");
		} else if (strcmp(t, "SRC") == 0) {
			uint32_t sid = (uint32_t)num(&save);
			uint32_t lineno = (uint32_t)num(&save);
			char *h = word(&save);
			size_t n = unhex(h);

			if (!s || snapshot_set_source(s, sid, lineno, h, n) < 0)
				die("bad source line");
		} else if (strcmp(t, "Q") == 0) {
			char *kind = word(&save);

			if (nsnaps && !copies[nsnaps - 1])
				for (i = 0; i < nsnaps; i++)
					if (!copies[i])
						copies[i] = roundtrip(snaps[i]);
			printf("Q %zu\n", nq++);
			if (strcmp(kind, "STATS") == 0)
				q_stats(&save);
			else if (strcmp(kind, "COMPARE") == 0)
				q_compare(&save);
			else if (strcmp(kind, "FILTER") == 0)
				q_filter(in, &save);
			else if (strcmp(kind, "MATCH") == 0)
				q_match(&save);
			else
				die("unknown query");
		} else {
			die("unknown record");
		}
	}
	for (i = 0; wdir && i < nsnaps; i++) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%zu.trm", wdir, i);
		f = fopen(path, "wb");
		if (!f || snapshot_write_trm(snaps[i], f, NULL) < 0)
			die("cannot write .trm");
		fclose(f);
	}
	for (i = 0; i < nsnaps; i++) {
		snapshot_free(snaps[i]);
		snapshot_free(copies[i]);
	}
	free(fr);
	free(line);
	fclose(in);
	return 0;
}
