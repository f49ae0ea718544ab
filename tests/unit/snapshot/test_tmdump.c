/* test_tmdump.c - tracemalloc dump reader and writer: the real dumps of
 * every Python version (tests/fixtures/tracemalloc, made by
 * scripts/make_fixtures.py) against their expected JSON, truncation at
 * every byte, corrupted bytes, write/read round trips, hand-made pickles.
 * The cross-version writer check (loading our output in each interpreter)
 * is tmdump_check.py. */

#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trmtop/snapshot.h"

#ifndef TMDUMP_FIXTURES
#define TMDUMP_FIXTURES "tests/fixtures/tracemalloc"
#endif

static const char *fixtures_dir(void)
{
	const char *d = getenv("TMDUMP_FIXTURES");

	return d && *d ? d : TMDUMP_FIXTURES;
}

/* ---- files --------------------------------------------------------------- */

static uint8_t *load(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc(n ? (size_t)n : 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Names of the fixtures (without .pickle), sorted; NULL-terminated. */
static char **list_fixtures(void)
{
	DIR *d = opendir(fixtures_dir());
	struct dirent *e;
	char **v = NULL;
	size_t n = 0, i, j;

	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (l <= 7 || strcmp(e->d_name + l - 7, ".pickle"))
			continue;
		v = realloc(v, (n + 2) * sizeof(*v));
		assert_non_null(v);
		v[n] = strndup(e->d_name, l - 7);
		assert_non_null(v[n]);
		n++;
	}
	closedir(d);
	assert_true(n >= 2);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (strcmp(v[i], v[j]) > 0) {
				char *t = v[i];

				v[i] = v[j];
				v[j] = t;
			}
	v[n] = NULL;
	return v;
}

static void free_list(char **v)
{
	size_t i;

	for (i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

static uint8_t *load_fixture(const char *name, const char *ext, size_t *len)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s%s", fixtures_dir(), name, ext);
	return load(path, len);
}

/* ---- a minimal JSON reader for the expected files ------------------------ */

enum jkind { J_NULL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jkind kind;
	uint64_t num;
	char *str; /* J_STR; J_OBJ member name in keys */
	size_t len;
	struct jval *items; /* J_ARR, J_OBJ (values) */
	char **keys;        /* J_OBJ */
	size_t n;
};

static void jskip(const char **p)
{
	while (**p == ' ' || **p == '\n' || **p == '\t' || **p == '\r')
		(*p)++;
}

static void put_utf8(char *out, size_t *o, uint32_t cp)
{
	if (cp < 0x80) {
		out[(*o)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*o)++] = (char)(0xc0 | cp >> 6);
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		out[(*o)++] = (char)(0xe0 | cp >> 12);
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*o)++] = (char)(0xf0 | cp >> 18);
		out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (cp & 0x3f));
	}
}

static char *jstring(const char **p, size_t *len)
{
	const char *s = *p + 1;
	char *out = malloc(strlen(s) + 1);
	size_t o = 0;

	assert_non_null(out);
	assert_int_equal(**p, '"');
	while (*s != '"') {
		assert_true(*s != 0);
		if (*s != '\\') {
			out[o++] = *s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'n':
			out[o++] = '\n';
			s++;
			break;
		case 't':
			out[o++] = '\t';
			s++;
			break;
		case 'u': {
			uint32_t cp = (uint32_t)strtoul(
				(char[]){ s[1], s[2], s[3], s[4], 0 }, NULL, 16);

			s += 5;
			if (cp >= 0xd800 && cp < 0xdc00 && s[0] == '\\' &&
			    s[1] == 'u') {
				uint32_t lo = (uint32_t)strtoul(
					(char[]){ s[2], s[3], s[4], s[5], 0 },
					NULL, 16);

				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
				s += 6;
			}
			put_utf8(out, &o, cp);
			break;
		}
		default:
			out[o++] = *s++;
		}
	}
	*p = s + 1;
	out[o] = 0;
	*len = o;
	return out;
}

static void jparse(const char **p, struct jval *v)
{
	memset(v, 0, sizeof(*v));
	jskip(p);
	if (**p == '"') {
		v->kind = J_STR;
		v->str = jstring(p, &v->len);
	} else if (**p == '[' || **p == '{') {
		int obj = **p == '{';

		v->kind = obj ? J_OBJ : J_ARR;
		(*p)++;
		jskip(p);
		while (**p != (obj ? '}' : ']')) {
			v->items = realloc(v->items,
					   (v->n + 1) * sizeof(*v->items));
			assert_non_null(v->items);
			if (obj) {
				size_t kl;

				v->keys = realloc(v->keys,
						  (v->n + 1) * sizeof(*v->keys));
				assert_non_null(v->keys);
				jskip(p);
				v->keys[v->n] = jstring(p, &kl);
				jskip(p);
				assert_int_equal(**p, ':');
				(*p)++;
			}
			jparse(p, &v->items[v->n++]);
			jskip(p);
			if (**p == ',')
				(*p)++;
			jskip(p);
		}
		(*p)++;
	} else if (!strncmp(*p, "null", 4)) {
		v->kind = J_NULL;
		*p += 4;
	} else {
		char *end;

		v->kind = J_NUM;
		v->num = strtoull(*p, &end, 10);
		assert_true(end != *p);
		*p = end;
	}
}

static void jfree(struct jval *v)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		jfree(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
}

static const struct jval *jget(const struct jval *o, const char *key)
{
	size_t i;

	assert_int_equal(o->kind, J_OBJ);
	for (i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return &o->items[i];
	fail_msg("no key %s", key);
	return NULL;
}

/* ---- comparisons ------------------------------------------------------- */

static void check_frame(const struct snapshot *s, uint32_t fid,
			const struct jval *jf)
{
	uint32_t fn, lineno;
	const char *p;
	size_t len;

	assert_int_equal(jf->kind, J_ARR);
	assert_int_equal(jf->n, 2);
	snapshot_frame(s, fid, &fn, &lineno);
	p = snapshot_str(s, fn, &len);
	assert_non_null(p);
	assert_int_equal(len, jf->items[0].len);
	assert_memory_equal(p, jf->items[0].str, len);
	assert_int_equal(lineno, jf->items[1].num);
}

static void check_against_json(const struct snapshot *s,
			       const struct jval *doc)
{
	const struct jval *traces = jget(doc, "traces");
	const struct jval *stats = jget(doc, "stats");
	const struct snap_trace *t = snapshot_traces(s);
	struct snap_stats st;
	size_t i;
	uint32_t j, n, total;
	const uint32_t *fr;

	assert_int_equal(snapshot_cmeta(s)->traceback_limit,
			 jget(doc, "traceback_limit")->num);
	assert_int_equal(snapshot_ntraces(s), traces->n);
	assert_int_equal(snapshot_ntraces(s), jget(doc, "ntraces")->num);
	for (i = 0; i < traces->n; i++) {
		const struct jval *jt = &traces->items[i];

		assert_int_equal(t[i].domain, jt->items[0].num);
		assert_int_equal(t[i].size, jt->items[1].num);
		fr = snapshot_traceback(s, t[i].traceback, &n, &total);
		assert_int_equal(n, jt->items[2].n);
		for (j = 0; j < n; j++)
			check_frame(s, fr[j], &jt->items[2].items[j]);
		/* 3.8 dumps have no total_nframe: it is n */
		assert_int_equal(total, jt->items[3].kind == J_NULL
						? n
						: jt->items[3].num);
	}
	/* statistics('traceback'), in tracemalloc's order */
	assert_int_equal(snapshot_statistics(s, SNAP_KEY_TRACEBACK, 0, &st), 0);
	assert_int_equal(st.n, stats->n);
	for (i = 0; i < st.n; i++) {
		const struct jval *js = &stats->items[i];
		const struct jval *jf = jget(js, "frames");

		assert_int_equal(st.v[i].size, jget(js, "size")->num);
		assert_int_equal(st.v[i].count, jget(js, "count")->num);
		assert_int_equal(st.v[i].nframe, jf->n);
		for (j = 0; j < st.v[i].nframe; j++) {
			assert_string_equal(st.v[i].frames[j].filename,
					    jf->items[j].items[0].str);
			assert_int_equal(st.v[i].frames[j].lineno,
					 jf->items[j].items[1].num);
		}
	}
	snap_stats_fini(&st);
}

/* Same traces (by content), same limit. */
static void check_same(const struct snapshot *a, const struct snapshot *b)
{
	const struct snap_trace *ta = snapshot_traces(a);
	const struct snap_trace *tb = snapshot_traces(b);
	size_t i;
	uint32_t j, na, nb, tota, totb, fa, fb, la, lb;
	const uint32_t *fra, *frb;
	const char *pa, *pb;
	size_t lena, lenb;

	assert_int_equal(snapshot_cmeta(a)->traceback_limit,
			 snapshot_cmeta(b)->traceback_limit);
	assert_int_equal(snapshot_ntraces(a), snapshot_ntraces(b));
	for (i = 0; i < snapshot_ntraces(a); i++) {
		assert_int_equal(ta[i].domain, tb[i].domain);
		assert_int_equal(ta[i].size, tb[i].size);
		fra = snapshot_traceback(a, ta[i].traceback, &na, &tota);
		frb = snapshot_traceback(b, tb[i].traceback, &nb, &totb);
		assert_int_equal(na, nb);
		assert_int_equal(tota, totb);
		for (j = 0; j < na; j++) {
			snapshot_frame(a, fra[j], &fa, &la);
			snapshot_frame(b, frb[j], &fb, &lb);
			assert_int_equal(la, lb);
			pa = snapshot_str(a, fa, &lena);
			pb = snapshot_str(b, fb, &lenb);
			assert_int_equal(lena, lenb);
			assert_memory_equal(pa, pb, lena);
		}
	}
}

static uint8_t *write_mem(const struct snapshot *s, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	struct trm_err err = { 0 };

	assert_non_null(f);
	assert_int_equal(snapshot_write_tracemalloc(s, f, &err), 0);
	assert_int_equal(fclose(f), 0);
	return (uint8_t *)buf;
}

static struct snapshot *read_ok(const uint8_t *buf, size_t len)
{
	struct trm_err err = { 0 };
	struct snapshot *s = snapshot_read_tracemalloc_mem(buf, len, &err);

	if (!s)
		fail_msg("read failed: %s", err.msg);
	return s;
}

static void read_bad(const uint8_t *buf, size_t len, const char *why)
{
	struct trm_err err = { 0 };
	struct snapshot *s = snapshot_read_tracemalloc_mem(buf, len, &err);

	if (s)
		fail_msg("accepted a bad dump (%s)", why);
	assert_int_equal(errno, TRM_EFORMAT);
	assert_int_equal(err.code, -TRM_EFORMAT);
	assert_non_null(strstr(err.msg, "byte "));
	if (why && !strstr(err.msg, why))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, why);
}

/* ---- tests on the fixtures ------------------------------------------- */

static void test_fixtures(void **state)
{
	char **names = list_fixtures();
	size_t i, len, jlen;

	(void)state;
	for (i = 0; names[i]; i++) {
		uint8_t *buf = load_fixture(names[i], ".pickle", &len);
		char *json = (char *)load_fixture(names[i], ".json", &jlen);
		const char *p;
		struct jval doc;
		struct snapshot *s;

		json = realloc(json, jlen + 1);
		assert_non_null(json);
		json[jlen] = 0;
		p = json;
		jparse(&p, &doc);
		s = read_ok(buf, len);
		check_against_json(s, &doc);
		print_message("# %s: %zu traces\n", names[i],
			      snapshot_ntraces(s));
		snapshot_free(s);
		jfree(&doc);
		free(json);
		free(buf);
	}
	free_list(names);
}

static void test_truncated(void **state)
{
	char **names = list_fixtures();
	size_t i, k, len;

	(void)state;
	for (i = 0; names[i]; i++) {
		uint8_t *buf = load_fixture(names[i], ".pickle", &len);

		for (k = 0; k < len; k++) {
			/* an exact-size copy: ASan sees any over-read */
			uint8_t *cut = malloc(k ? k : 1);

			assert_non_null(cut);
			memcpy(cut, buf, k);
			read_bad(k ? cut : NULL, k, NULL);
			free(cut);
		}
		free(buf);
	}
	free_list(names);
}

static void test_corrupted(void **state)
{
	static const uint8_t xors[] = { 0xff, 0x80, 0x01, 0x20 };
	char **names = list_fixtures();
	size_t i, k, x, len, wlen, nok = 0, nbad = 0;

	(void)state;
	for (i = 0; names[i]; i++) {
		uint8_t *buf = load_fixture(names[i], ".pickle", &len);

		for (k = 0; k < len; k++) {
			for (x = 0; x < sizeof(xors) + 1; x++) {
				struct trm_err err = { 0 };
				struct snapshot *s, *s2;
				uint8_t *w, old = buf[k];

				buf[k] = x < sizeof(xors) ? old ^ xors[x] : 0;
				s = snapshot_read_tracemalloc_mem(buf, len,
								  &err);
				buf[k] = old;
				if (!s) {
					assert_int_equal(err.code,
							 -TRM_EFORMAT);
					nbad++;
					continue;
				}
				/* whatever was accepted writes and reads
				 * back the same */
				nok++;
				w = write_mem(s, &wlen);
				s2 = read_ok(w, wlen);
				check_same(s, s2);
				snapshot_free(s2);
				snapshot_free(s);
				free(w);
			}
		}
		free(buf);
	}
	print_message("# corrupted: %zu accepted, %zu refused\n", nok, nbad);
	free_list(names);
}

static void test_write_round_trip(void **state)
{
	char **names = list_fixtures();
	size_t i, len, wlen, jlen;

	(void)state;
	for (i = 0; names[i]; i++) {
		uint8_t *buf = load_fixture(names[i], ".pickle", &len);
		char *json = (char *)load_fixture(names[i], ".json", &jlen);
		struct snapshot *s, *s2;
		struct jval doc;
		const char *p;
		uint8_t *w;

		json = realloc(json, jlen + 1);
		assert_non_null(json);
		json[jlen] = 0;
		p = json;
		jparse(&p, &doc);
		s = read_ok(buf, len);
		snapshot_meta(s)->py_hexversion =
			(uint32_t)jget(&doc, "hexversion")->num;
		w = write_mem(s, &wlen);
		/* memo-shared filenames, frames and tracebacks: never larger
		 * than what pickle itself wrote (which adds FRAME) */
		assert_true(wlen <= len);
		s2 = read_ok(w, wlen);
		check_same(s, s2);
		check_against_json(s2, &doc);
		snapshot_free(s2);
		snapshot_free(s);
		free(w);
		jfree(&doc);
		free(json);
		free(buf);
	}
	free_list(names);
}

/* ---- hand-made pickles ------------------------------------------------- */

struct pb {
	uint8_t b[8192];
	size_t n;
};

static void pb_put(struct pb *p, const void *d, size_t n)
{
	assert_true(p->n + n <= sizeof(p->b));
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

#define PB(p, ...)                                                  \
	do {                                                        \
		static const uint8_t pb_bytes_[] = { __VA_ARGS__ }; \
		pb_put((p), pb_bytes_, sizeof(pb_bytes_));          \
	} while (0)

static void pb_str(struct pb *p, const char *s)
{
	uint8_t l = (uint8_t)strlen(s);

	PB(p, 0x8c);
	pb_put(p, &l, 1);
	pb_put(p, s, l);
}

/* Protocol-4 prologue up to the open traces list (as Snapshot.dump). */
static void pb_head(struct pb *p)
{
	PB(p, 0x80, 4);
	pb_str(p, "tracemalloc");
	pb_str(p, "Snapshot");
	PB(p, 0x93, ')', 0x81, '}', '(');
	pb_str(p, "traces");
	pb_str(p, "tracemalloc");
	pb_str(p, "_Traces");
	PB(p, 0x93, ')', 0x81, '}');
	pb_str(p, "_traces");
	PB(p, ']');
}

static void pb_tail(struct pb *p, uint8_t limit)
{
	PB(p, 's', 'b');
	pb_str(p, "traceback_limit");
	PB(p, 'K');
	pb_put(p, &limit, 1);
	PB(p, 'u', 'b', '.');
}

static void test_shared_memo(void **state)
{
	struct pb p = { .n = 0 };
	struct snapshot *s;
	const struct snap_trace *t;

	(void)state;
	pb_head(&p);
	PB(&p, '(');
	/* (0, 10, (("a.py", 1), ("b.py", 2)), 2), memoized as 0..3 */
	PB(&p, '(', 'K', 0, 'K', 10);
	pb_str(&p, "a.py");
	PB(&p, 0x94, 'K', 1, 0x86, 0x94);
	pb_str(&p, "b.py");
	PB(&p, 0x94, 'K', 2, 0x86, 0x94, 0x86, 0x94, 'K', 2, 't');
	/* (5, 20, <memo 4>, 2) and (5, 30, <memo 4>, 3) */
	PB(&p, '(', 'K', 5, 'K', 20, 'h', 4, 'K', 2, 't');
	PB(&p, '(', 'K', 5, 'K', 30, 'h', 4, 'K', 3, 't');
	/* (0, 1, (("a.py", 1),)) : 3-tuple, frame from the memo */
	PB(&p, 'K', 0, 'K', 1, 'h', 1, 0x85, 0x87);
	PB(&p, 'e');
	pb_tail(&p, 7);
	s = read_ok(p.b, p.n);
	assert_int_equal(snapshot_ntraces(s), 4);
	assert_int_equal(snapshot_cmeta(s)->traceback_limit, 7);
	t = snapshot_traces(s);
	assert_int_equal(t[0].traceback, t[1].traceback);
	assert_int_not_equal(t[1].traceback, t[2].traceback); /* total 3 */
	assert_int_equal(t[1].domain, 5);
	assert_int_equal(t[2].size, 30);
	snapshot_free(s);
}

static void test_protocol2_forms(void **state)
{
	struct pb p = { .n = 0 };
	struct snapshot *s;
	const struct snap_trace *t;
	uint32_t n, total;
	const uint32_t *fr;
	uint32_t fn, lineno;
	size_t len;
	const char *str;

	(void)state;
	/* protocol 2: text GLOBAL, BINPUT/LONG_BINPUT/LONG_BINGET,
	 * BINUNICODE, LONG4, BINUNICODE8, REDUCE form Snapshot(traces, 3) */
	PB(&p, 0x80, 2, 'c');
	pb_put(&p, "tracemalloc\nSnapshot\n", 21);
	PB(&p, 'q', 0, ']', 'r', 1, 0, 0, 0, '(', '(');
	PB(&p, 'J', 0xff, 0xff, 0xff, 0x7f);          /* domain 2**31-1 */
	PB(&p, 0x8b, 9, 0, 0, 0, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	   0x7f, 0); /* size 2**63-3 (+ 2 below: the most a snapshot holds) */
	PB(&p, 'X', 4, 0, 0, 0, 'x', '.', 'p', 'y', 'q', 7);
	PB(&p, 'M', 0x34, 0x12, 0x86, 0x85, 'N', 't');
	PB(&p, '(', 'K', 1, 'K', 2, 0x8d, 3, 0, 0, 0, 0, 0, 0, 0, 'y', '.',
	   'p', 'K', 0, 0x86, 0x85, 't');
	PB(&p, 'e', '0', 'j', 1, 0, 0, 0, 'K', 3, 0x86, 'R', '.');
	s = read_ok(p.b, p.n);
	assert_int_equal(snapshot_ntraces(s), 2);
	assert_int_equal(snapshot_cmeta(s)->traceback_limit, 3);
	t = snapshot_traces(s);
	assert_int_equal(t[0].domain, 0x7fffffff);
	assert_true(t[0].size == SNAP_SIZE_MAX - 2);
	assert_true(snapshot_total_size(s) == SNAP_SIZE_MAX);
	fr = snapshot_traceback(s, t[0].traceback, &n, &total);
	assert_int_equal(n, 1);
	assert_int_equal(total, 1); /* None: not recorded */
	snapshot_frame(s, fr[0], &fn, &lineno);
	assert_int_equal(lineno, 0x1234);
	str = snapshot_str(s, fn, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(str, "x.py", 4);
	snapshot_free(s);
}

static void test_bad_inputs(void **state)
{
	struct pb p;
	size_t i;

	(void)state;
	read_bad((const uint8_t *)"", 0, "empty");
	read_bad((const uint8_t *)"\x80\x04K\x01.", 5, "not a tracemalloc");
	read_bad((const uint8_t *)"\x80\x06.", 3, "protocol");
	read_bad((const uint8_t *)"(lp0\n.", 6, "not a pickle");
	read_bad((const uint8_t *)"\x80\x02" "cos\nsystem\n.", 14,
		 "global");
	read_bad((const uint8_t *)"\x80\x04" "K\x01h\x05.", 7, "memo");
	read_bad((const uint8_t *)"\x80\x04" "K\x01r\xff\xff\xff\xff.", 9,
		 "memo index");
	read_bad((const uint8_t *)"\x80\x04" "\x8c\xff" "ab", 6, "truncated");
	read_bad((const uint8_t *)"\x80\x04" "\x8d\xff\xff\xff\xff\xff\xff"
				  "\xff\xff" "ab.", 14, "truncated");
	read_bad((const uint8_t *)"\x80\x04" "\x95\x00\x00\x00\x00\x00\x00"
				  "\x01\x00.", 12, "frame");
	read_bad((const uint8_t *)"\x80\x04" "\x8a\x0a" "0123456789.", 15,
		 "integer");
	read_bad((const uint8_t *)"\x80\x04" "t.", 4, "MARK");
	read_bad((const uint8_t *)"\x80\x04" "0.", 4, "underflow");
	read_bad((const uint8_t *)"\x80\x04" "(0.", 5, "underflow");
	read_bad((const uint8_t *)"\x80\x04" "K\x01K\x02.", 7, "stack");
	read_bad((const uint8_t *)"\x80\x04" "K\x01K\x02" "a.", 8,
		 "non-list");

	/* too many open MARKs */
	memset(&p, 0, sizeof(p));
	PB(&p, 0x80, 4);
	for (i = 0; i < 5000; i++)
		PB(&p, '(');
	read_bad(p.b, p.n, "MARK");

	/* a trace of the wrong shape, a negative size, a str lineno */
	memset(&p, 0, sizeof(p));
	pb_head(&p);
	PB(&p, 'K', 1, 0x85, 'a');
	pb_tail(&p, 1);
	read_bad(p.b, p.n, "trace is not");
	memset(&p, 0, sizeof(p));
	pb_head(&p);
	PB(&p, 'K', 0, 'J', 0xff, 0xff, 0xff, 0xff, ')', 0x87, 'a');
	pb_tail(&p, 1);
	read_bad(p.b, p.n, "size");
	memset(&p, 0, sizeof(p));
	pb_head(&p);
	PB(&p, 'K', 0, 'K', 1);
	pb_str(&p, "f.py");
	pb_str(&p, "1");
	PB(&p, 0x86, 0x85, 0x87, 'a');
	pb_tail(&p, 1);
	read_bad(p.b, p.n, "lineno");
	/* two traces of 2**62 bytes: more than a snapshot can hold */
	memset(&p, 0, sizeof(p));
	pb_head(&p);
	for (i = 0; i < 2; i++)
		PB(&p, 'K', 0, 0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x40, ')', 0x87, 'a');
	pb_tail(&p, 1);
	read_bad(p.b, p.n, "2**63-1");
	/* total_nframe below the number of frames */
	memset(&p, 0, sizeof(p));
	pb_head(&p);
	PB(&p, '(', 'K', 0, 'K', 1);
	pb_str(&p, "f.py");
	PB(&p, 'K', 1, 0x86, 0x85, 'K', 0, 't', 'a');
	pb_tail(&p, 1);
	read_bad(p.b, p.n, "total_nframe");
}

static void test_write_synthetic(void **state)
{
	static const uint32_t versions[] = { 0x030812f0, 0x030b07f0, 0 };
	struct snapshot *s, *s2;
	uint32_t str[3], fr[4], tb[3], v;
	uint8_t *w;
	size_t wlen;

	(void)state;
	for (v = 0; v < 3; v++) {
		s = snapshot_new();
		assert_non_null(s);
		snapshot_meta(s)->py_hexversion = versions[v];
		snapshot_meta(s)->traceback_limit = UINT32_MAX;
		str[0] = snapshot_intern_str(s, "a.py", 4);
		/* a NUL byte survives, as in Python's str */
		str[1] = snapshot_intern_str(s, "\xc3\xa9\0.py", 6);
		str[2] = snapshot_intern_str(s, "", 0);
		fr[0] = snapshot_intern_frame(s, str[0], 0);
		fr[1] = snapshot_intern_frame(s, str[1], UINT32_MAX);
		fr[2] = snapshot_intern_frame(s, str[2], 256);
		fr[3] = snapshot_intern_frame(s, str[0], 65536);
		tb[0] = snapshot_intern_traceback(s, fr, 4,
						  versions[v] == 0x030812f0
							  ? 4
							  : 100);
		tb[1] = snapshot_intern_traceback(s, fr + 1, 0, 0);
		tb[2] = snapshot_intern_traceback(s, fr + 1, 3, 3);
		assert_int_equal(snapshot_add_trace(s, UINT32_MAX, 1ull << 62,
						    tb[0]), 0);
		assert_int_equal(snapshot_add_trace(s, 0, 0, tb[1]), 0);
		assert_int_equal(snapshot_add_trace(s, 1, (1ull << 62) - 0x80000001u,
						    tb[2]), 0);
		assert_int_equal(snapshot_add_trace(s, 2, 0x80000000u, tb[0]),
				 0);
		assert_true(snapshot_total_size(s) == SNAP_SIZE_MAX);
		w = write_mem(s, &wlen);
		s2 = read_ok(w, wlen);
		check_same(s, s2);
		snapshot_free(s2);
		free(w);
		snapshot_free(s);
	}

	/* an empty snapshot */
	s = snapshot_new();
	assert_non_null(s);
	w = write_mem(s, &wlen);
	s2 = read_ok(w, wlen);
	assert_int_equal(snapshot_ntraces(s2), 0);
	snapshot_free(s2);
	snapshot_free(s);
	free(w);
}

static void test_write_error(void **state)
{
	struct trm_err err = { 0 };
	struct snapshot *s = snapshot_new();
	FILE *f = fopen("/dev/full", "w");
	int rc;

	(void)state;
	assert_non_null(s);
	assert_non_null(f); /* /dev/full is on every Linux */
	rc = snapshot_write_tracemalloc(s, f, &err);
	assert_true(rc < 0);
	assert_non_null(strstr(err.msg, "write failed"));
	fclose(f);
	snapshot_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixtures),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupted),
		cmocka_unit_test(test_write_round_trip),
		cmocka_unit_test(test_shared_memo),
		cmocka_unit_test(test_protocol2_forms),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_write_synthetic),
		cmocka_unit_test(test_write_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
