/* snapshot_int.h - private to src/snapshot and its unit tests: the arena,
 * the interning tables, UTF-8 code point helpers, the fnmatch engine. */
#ifndef TRMTOP_SNAPSHOT_INT_H
#define TRMTOP_SNAPSHOT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "trmtop/snapshot.h"

/* Limits shared by the API and the readers. */
#define SNAP_STR_MAX (1u << 20)      /* longest string (bytes) */
#define SNAP_NFRAME_MAX (1u << 20)   /* longest traceback (frames) */
#define SNAP_ID_MAX (UINT32_MAX - 1) /* ids are < this */

/* ---- arena: bump allocator over blocks that never move --------------- */
struct snap_arena_block;
struct snap_arena {
	struct snap_arena_block *head;
};
/* 8-byte aligned, uninitialised; NULL on allocation failure.  Lives until
 * snap_arena_fini. */
void *snap_arena_alloc(struct snap_arena *a, size_t n);
void snap_arena_fini(struct snap_arena *a);

/* ---- open addressing table of ids ------------------------------------ */
struct snap_htab {
	uint32_t *slot; /* SNAP_NONE = empty */
	size_t cap;     /* power of two, or 0 */
	size_t n;
};

struct snap_str {
	const char *p; /* len bytes (NULs allowed), then a NUL; in the arena */
	uint32_t len;
	uint32_t hash;
};

struct snap_frame {
	uint32_t filename, lineno;
};

struct snap_tb {
	const uint32_t *frames; /* most recent first; shared between tracebacks
				   with equal frames */
	uint32_t n, total_nframe;
	uint32_t hash;  /* of the frames only */
	uint32_t canon; /* smallest id with the same frames (the key
			   tracemalloc groups by ignores total_nframe) */
};

struct snap_src {
	uint32_t filename, lineno;
	const char *text;
	uint32_t len;
};

struct snapshot {
	struct snapshot_meta meta;
	struct snap_arena arena;

	struct snap_str *strs;
	size_t nstrs, capstrs;
	struct snap_htab strtab;

	struct snap_frame *frames;
	size_t nframes, capframes;
	struct snap_htab frametab;

	struct snap_tb *tbs;
	size_t ntbs, captbs;
	struct snap_htab tbtab;

	struct snap_trace *traces;
	size_t ntraces, captraces;
	uint64_t total_size;

	/* sampled snapshots only (meta.sample_size): parallel to traces */
	struct snap_sample *samples;
	size_t nsamples, capsamples;
	uint64_t total_count, alloc_total_size, alloc_total_count;
	enum snap_what what;

	struct snap_src *srcs;
	size_t nsrcs, capsrcs;
	struct snap_htab srctab;
};

/* Lookups without insertion: an id or SNAP_NONE. */
uint32_t snap_lookup_str(const struct snapshot *s, const char *p, size_t len);
uint32_t snap_lookup_frame(const struct snapshot *s, uint32_t filename,
			   uint32_t lineno);
/* The canonical id of a traceback with these frames (any total_nframe). */
uint32_t snap_lookup_tb(const struct snapshot *s, const uint32_t *frames,
			uint32_t n);

/* Make room for n more traces: 0 or -ENOMEM. */
int snap_reserve_traces(struct snapshot *s, size_t n);

/* A sampled snapshot: meta.sample_size set and a struct snap_sample for
 * every trace (a meta set by hand over exact traces reads as exact). */
static inline int snap_sampled(const struct snapshot *s)
{
	return s->meta.sample_size && s->nsamples == s->ntraces;
}

/* Trace i's bytes and blocks, as s->what chose. */
static inline uint64_t snap_tr_size(const struct snapshot *s, size_t i)
{
	if (s->what == SNAP_WHAT_ALLOC && snap_sampled(s))
		return s->samples[i].alloc_size;
	return s->traces[i].size;
}

static inline uint64_t snap_tr_count(const struct snapshot *s, size_t i)
{
	if (!snap_sampled(s))
		return 1;
	return s->what == SNAP_WHAT_ALLOC ? s->samples[i].alloc_count
					  : s->samples[i].count;
}

/* ---- UTF-8 ---------------------------------------------------------- */
/* Decode one code point at p[*i] (p NUL-terminated or len-bounded):
 * strict UTF-8 as CPython decodes it, each byte of an invalid sequence
 * becoming U+DC80..U+DCFF (surrogateescape).  Advances *i. */
uint32_t snap_utf8_next(const unsigned char *p, size_t len, size_t *i);
/* Compare a[0..la) and b[0..lb) by code point (Python str order; NUL is
 * U+0000). */
int snap_strcmp(const char *a, size_t la, const char *b, size_t lb);

/* ---- fnmatch ---------------------------------------------------------- */
struct snap_glob;
/* Compile a pattern with the semantics of fnmatch.fnmatchcase (posix) of
 * the Python version py_hexversion.  NULL with errno EINVAL when that
 * version's re.compile would reject the translation (a reversed range
 * like [z-a] before 3.10), ENOMEM on allocation failure. */
struct snap_glob *snap_glob_compile(const char *pattern, size_t len,
				    uint32_t py_hexversion);
void snap_glob_free(struct snap_glob *g);
/* 1 if the whole of name matches, else 0. */
int snap_glob_match(const struct snap_glob *g, const char *name, size_t len);
/* One-shot: 1, 0 or -EINVAL / -ENOMEM. */
int snap_fnmatch(const char *pattern, const char *name,
		 uint32_t py_hexversion);

/* CRC-32 (IEEE 802.3, as zlib's crc32). */
uint32_t snap_crc32(uint32_t crc, const void *buf, size_t len);

#endif
