/* snapshot.h - the in-memory model of a tracemalloc snapshot and every
 * computation on it: statistics by key (cumulative or not), compare,
 * filters, and the file formats (.trm, tracemalloc's own Snapshot.dump).
 *
 * The model mirrors tracemalloc's: a snapshot holds traces (domain, size,
 * traceback), the traceback limit and metadata.  Strings, frames and
 * tracebacks are interned in one arena owned by the snapshot: a trace is
 * 16 bytes, no malloc per trace.  Results are identical to
 * tracemalloc.Snapshot.statistics / compare_to / filter_traces for the
 * same data and the same Python version (snapshot_meta.py_hexversion
 * selects the version's semantics where they differ).
 *
 * Frames of a traceback are stored as tracemalloc's C core gives them:
 * most recent call first. */
#ifndef TRMTOP_SNAPSHOT_H
#define TRMTOP_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "trmtop/err.h"

#define SNAP_NONE UINT32_MAX

/* The most bytes a snapshot's traces may hold in all: 2^63 - 1.  No
 * process holds that much (a 64-bit address space leaves user space 2^47
 * to 2^56 bytes), and under it every size, sum and difference the
 * statistics compute fits in an int64_t exactly.  The readers refuse a
 * file or reply whose traces add up to more (docs/FORMATS.md, "Sizes"). */
#define SNAP_SIZE_MAX ((uint64_t)INT64_MAX)

struct snapshot; /* opaque */

struct snapshot_meta {
	int32_t pid;
	uint32_t py_hexversion;    /* e.g. 0x030b07f0 */
	uint32_t traceback_limit;
	int64_t time_ns;           /* wall clock (CLOCK_REALTIME) of capture */
	uint64_t traced_current, traced_peak, rss, tracemalloc_memory;
	char executable[1024];
	char python_version[32];   /* "3.11.7" */
	char host[256];
	/* 0: an exact snapshot (tracemalloc's traces); else the sampler's
	 * mean sampling interval in bytes (docs/DESIGN.md §4.8): each trace
	 * is then one traceback's estimates, with its struct snap_sample
	 * (snapshot_samples).  Set before the first trace is added
	 * (snapshot_set_sampled, or a copy of another snapshot's meta). */
	uint64_t sample_size;
};

struct snap_trace {
	uint64_t size;
	uint32_t traceback; /* id from snapshot_intern_traceback */
	uint32_t domain;
};

/* Lifecycle.  NULL and errno set on allocation failure. */
struct snapshot *snapshot_new(void);
void snapshot_free(struct snapshot *s);

struct snapshot_meta *snapshot_meta(struct snapshot *s);
const struct snapshot_meta *snapshot_cmeta(const struct snapshot *s);

/* Interning.  Each returns an id, or SNAP_NONE on allocation failure (or
 * an invalid argument: an unknown id, len > 1 MiB, more than 2^20
 * frames).  Equal contents give equal ids; ids run from 0 in order of
 * first interning.  A string is bytes with a length: it may hold NUL
 * bytes (a code object's co_filename can), and is stored with a NUL after
 * its last byte. */
uint32_t snapshot_intern_str(struct snapshot *s, const char *str, size_t len);
uint32_t snapshot_intern_frame(struct snapshot *s, uint32_t filename_id,
			       uint32_t lineno);
/* frames: frame ids, most recent call first; total_nframe as tracemalloc
 * reports it (>= n; equal to n when not truncated; a smaller value, e.g.
 * 0 for 3.8 which has none, is taken as n).  Tracebacks with the same
 * frames and different total_nframe get different ids but are one key for
 * the statistics, as in tracemalloc.  n may be 0 (no frame). */
uint32_t snapshot_intern_traceback(struct snapshot *s, const uint32_t *frames,
				   uint32_t n, uint32_t total_nframe);

/* Append a trace.  0 or -ENOMEM / -EINVAL (unknown traceback id, or a
 * sampled snapshot: snapshot_add_sample) / -EOVERFLOW (the snapshot's
 * total size would exceed SNAP_SIZE_MAX: the trace is not added). */
int snapshot_add_trace(struct snapshot *s, uint32_t domain, uint64_t size,
		       uint32_t traceback);

/* ---- sampled snapshots ------------------------------------------------
 *
 * A sampled snapshot holds the sampler's estimates, one trace per
 * traceback: the trace's size is the estimated bytes in use, and a
 * struct snap_sample beside it (a parallel array, absent from exact
 * snapshots, which keep their 16 bytes a trace) the estimated blocks in
 * use and the estimated bytes and blocks allocated since sampling
 * started.  Every computation counts a sampled trace as `count` blocks
 * (an exact one as 1), and reads the figures snapshot_set_what chose. */
struct snap_sample {
	uint64_t count;       /* estimated blocks in use */
	uint64_t alloc_size;  /* estimated bytes allocated (>= the size) */
	uint64_t alloc_count; /* estimated blocks allocated (>= count) */
};

/* Which figures the statistics read. */
enum snap_what {
	SNAP_WHAT_INUSE, /* in use now (exact snapshots have only these) */
	SNAP_WHAT_ALLOC, /* allocated since sampling started (sampled) */
};

/* "inuse", "alloc". */
const char *snap_what_name(enum snap_what what);
/* From what a user typed: those names.  0, or -EINVAL. */
int snap_what_parse(const char *name, enum snap_what *what);

/* Make the empty snapshot s a sampled one of this sampling size
 * (meta.sample_size).  0, -EINVAL (size 0), -EBUSY (s has traces). */
int snapshot_set_sampled(struct snapshot *s, uint64_t sample_size);

/* Append a sampled trace: size, the bytes in use, and e's figures.  0,
 * -EINVAL (an exact snapshot, an unknown traceback id, allocated figures
 * below those in use, bytes without blocks: every sample stands for at
 * least one block), -EOVERFLOW (a total of the snapshot, in use or
 * allocated, bytes or blocks, would exceed SNAP_SIZE_MAX: not added),
 * -ENOMEM. */
int snapshot_add_sample(struct snapshot *s, uint32_t domain, uint64_t size,
			uint32_t traceback, const struct snap_sample *e);

/* meta.sample_size of a sampled snapshot, 0 for an exact one. */
uint64_t snapshot_sample_size(const struct snapshot *s);
/* The figures of each trace (parallel to snapshot_traces), or NULL for
 * an exact snapshot.  Borrowed as snapshot_traces. */
const struct snap_sample *snapshot_samples(const struct snapshot *s);

/* Choose the figures statistics, compare, reports and the totals read:
 * SNAP_WHAT_ALLOC only for a sampled snapshot (-EINVAL for an exact
 * one).  A new snapshot reads SNAP_WHAT_INUSE; a filtered copy keeps its
 * source's choice.  The files keep every figure whatever the choice. */
int snapshot_set_what(struct snapshot *s, enum snap_what what);
enum snap_what snapshot_what(const struct snapshot *s);

/* Read access.  Borrowed pointers valid until snapshot_free, except
 * snapshot_traces: until the next snapshot_add_trace. */
size_t snapshot_ntraces(const struct snapshot *s);
const struct snap_trace *snapshot_traces(const struct snapshot *s);
size_t snapshot_nstrs(const struct snapshot *s);
/* The bytes of string id (NUL-terminated after *len bytes, which may
 * hold NULs of their own). */
const char *snapshot_str(const struct snapshot *s, uint32_t id, size_t *len);
void snapshot_frame(const struct snapshot *s, uint32_t frame_id,
		    uint32_t *filename_id, uint32_t *lineno);
/* Frame ids of a traceback (most recent first) and its total_nframe. */
const uint32_t *snapshot_traceback(const struct snapshot *s, uint32_t tb_id,
				   uint32_t *n, uint32_t *total_nframe);
/* The traces' bytes and blocks, as snapshot_what chose (the blocks of
 * an exact snapshot: its trace count; of a sampled one: the estimates). */
uint64_t snapshot_total_size(const struct snapshot *s);
uint64_t snapshot_total_count(const struct snapshot *s);
/* Table sizes: ids run from 0 to the count - 1. */
size_t snapshot_nframes(const struct snapshot *s);
size_t snapshot_ntracebacks(const struct snapshot *s);

/* ---- statistics ------------------------------------------------------ */

enum snap_key { SNAP_KEY_FILENAME, SNAP_KEY_LINENO, SNAP_KEY_TRACEBACK };

/* The key's name as tracemalloc spells it: "filename", "lineno",
 * "traceback". */
const char *snap_key_name(enum snap_key key);

/* A key from what a user typed (--group-by): those names, and "line" and
 * "file".  0, or -EINVAL (*key untouched). */
int snap_key_parse(const char *name, enum snap_key *key);

/* A location as a statistic's key shows it. */
struct snap_loc {
	const char *filename;  /* borrowed from a snapshot; filename_len
				  bytes (NULs included), then a NUL */
	uint32_t lineno;       /* 0 for the filename key */
	uint32_t filename_len;
};

struct snap_stat {
	const struct snap_loc *frames; /* the key's traceback, in the order
					  tracemalloc's Traceback holds it
					  (oldest call first) */
	uint32_t nframe;
	uint64_t size, count;
	/* for SNAP_KEY_TRACEBACK: the traceback id in the snapshot */
	uint32_t traceback;
};

struct snap_stats {
	struct snap_stat *v;
	size_t n;
	uint64_t total_size, total_count; /* of the snapshot's traces (not the
					     sum of v[], which counts a trace
					     once per frame when cumulative) */
	void *arena; /* owns v and the frames arrays */
};

/* snapshot.statistics(key, cumulative): sorted as tracemalloc sorts them
 * (size, count, traceback, descending).  cumulative is refused (-EINVAL)
 * for SNAP_KEY_TRACEBACK, as tracemalloc does.  Cumulative counts a trace
 * once per frame (a recursive frame twice).  A trace with an empty
 * traceback (where tracemalloc raises IndexError) counts under a key with
 * nframe 0 for the non-cumulative filename/lineno keys, and nowhere when
 * cumulative.  Every size and count is exact: a key whose size or count
 * would exceed SNAP_SIZE_MAX (only possible when cumulative, with many
 * frames of a huge crafted trace) is -EOVERFLOW, never a wrapped or
 * clamped number.  0 or -errno; *out is always initialised (fini is
 * safe). */
int snapshot_statistics(const struct snapshot *s, enum snap_key key,
			int cumulative, struct snap_stats *out);
void snap_stats_fini(struct snap_stats *st);

struct snap_diff {
	const struct snap_loc *frames;
	uint32_t nframe;
	uint64_t size, count;    /* in the new snapshot */
	int64_t size_diff, count_diff;
};

struct snap_diffs {
	struct snap_diff *v;
	size_t n;
	int64_t total_size_diff; /* new total size - old total size */
	void *arena;
};

/* new.compare_to(old, key, cumulative), sorted as tracemalloc sorts it
 * (abs(size_diff), size, abs(count_diff), count, traceback, descending).
 * Both exact, or both sampled with the same size and snapshot_what (else
 * -EXDEV: estimates of another kind do not subtract).
 * Frames point into either snapshot: both must outlive the result.
 * Differences are exact (every size and count is at most SNAP_SIZE_MAX);
 * -EOVERFLOW as for statistics. */
int snapshot_compare(const struct snapshot *new_s, const struct snapshot *old_s,
		     enum snap_key key, int cumulative, struct snap_diffs *out);
void snap_diffs_fini(struct snap_diffs *d);

/* ---- report rows -------------------------------------------------------- */

/* What each row of a report holds, computed here once for every sink
 * (render.h: text, JSON, collapsed stacks, and the terminal view): the
 * sinks format rows and compute nothing.  A report owns its rows; the
 * locations and source lines they point to are borrowed from the
 * snapshots it was computed from (and from the source function), which
 * must outlive it. */

/* Source line lookup: the stripped text of filename:lineno, or NULL
 * (filename: filename_len bytes, which may hold NULs).  Borrowed at least
 * until the report is released. */
typedef const char *(*snap_source_fn)(void *arg, const char *filename,
				      size_t filename_len, uint32_t lineno);

enum snap_report_kind {
	SNAP_REPORT_TOP,       /* statistics: the top allocation sites */
	SNAP_REPORT_DIFF,      /* compare: the top differences */
	SNAP_REPORT_TRACEBACK, /* one traceback (one row) */
	SNAP_REPORT_STACKS,    /* one row per stored traceback (collapsed) */
};

struct snap_row {
	size_t rank;                   /* 1-based position in the report */
	const struct snap_loc *frames; /* the key's frames, oldest call first */
	uint32_t nframe;
	/* The frame the row names, as tracemalloc's pretty top shows it:
	 * the most recent call (frames[nframe - 1]) for the traceback key,
	 * else frames[0]; NULL when the row has no frame. */
	const struct snap_loc *loc;
	/* sources[i]: the source line of frames[i] (none for a lineno of
	 * 0, an empty line, or no source function), or NULL; the array is
	 * NULL for rows that are not shown (past the limit) and for the
	 * rows of a stacks report. */
	const char *const *sources;
	const char *source;            /* loc's line, or NULL */
	uint64_t size, count;          /* (for a diff: in the new snapshot) */
	double average;                /* size / count; 0 when count is 0 */
	int64_t size_diff, count_diff; /* SNAP_REPORT_DIFF only */
};

struct snap_report {
	enum snap_report_kind kind;
	enum snap_key key;
	int cumulative;
	struct snap_row *rows; /* every row, in tracemalloc's order */
	size_t nrows;
	size_t nshown;         /* the first nshown rows are shown (the limit) */
	size_t nkeys;          /* keys the statistics found (= nrows, except
				  for a traceback report: the tracebacks it
				  picked its row from) */
	/* The rows not shown, summed (the "N other" line): sizes and counts
	 * saturate at SNAP_SIZE_MAX (cumulative rows count a trace once per
	 * frame), differences at INT64_MIN/INT64_MAX. */
	size_t nother;
	uint64_t other_size, other_count;
	int64_t other_size_diff;
	/* TOP: the snapshot's traces (not the sum of the rows); TRACEBACK:
	 * the row's; DIFF: total_size_diff = new total - old total. */
	uint64_t total_size, total_count;
	int64_t total_size_diff;
	/* The snapshot's sampling size (snapshot_sample_size; both
	 * snapshots' for a diff), 0 when exact: every size and count is then
	 * an estimate of what `what` says, and the sinks say so. */
	uint64_t sample_size;
	enum snap_what what;
	void *priv;            /* owns the rows and what they point to */
};

struct snap_report_opts {
	enum snap_key key;
	int cumulative;
	size_t limit;          /* rows shown; 0 = all */
	snap_source_fn source; /* may be NULL: no source lines */
	void *source_arg;
};

/* The rows of snapshot_statistics(s, o->key, o->cumulative).  0 or the
 * errors of snapshot_statistics (-EINVAL, -ENOMEM, -EOVERFLOW); *out is
 * always initialised (fini is safe). */
int snapshot_report_top(const struct snapshot *s,
			const struct snap_report_opts *o, struct snap_report *out);

/* The rows of snapshot_compare(new_s, old_s, o->key, o->cumulative):
 * both snapshots must outlive the report.  Errors as for compare. */
int snapshot_report_diff(const struct snapshot *new_s,
			 const struct snapshot *old_s,
			 const struct snap_report_opts *o,
			 struct snap_report *out);

/* Which traceback a traceback report shows. */
struct snap_pick {
	unsigned rank;    /* the rank-th largest (1: the largest) ... */
	const char *file; /* ... or, if set, the largest whose most recent
			     frame is file:line, file being the frame's
			     whole name or its part after a '/' */
	uint32_t line;
};

/* One traceback of the traceback statistics (non-cumulative; o->key,
 * cumulative and limit are ignored), as a one-row report of rank 1 whose
 * totals are the row's.  0, -ENOENT when no traceback is picked
 * (out->nkeys says how many there were), or the errors of
 * snapshot_statistics. */
int snapshot_report_traceback(const struct snapshot *s,
			      const struct snap_pick *pick,
			      const struct snap_report_opts *o,
			      struct snap_report *out);

/* One row per traceback id of s holding traces whose sizes sum to more
 * than 0, in id order (tracebacks with the same frames and another
 * total_nframe are rows of their own), with the sizes summed and the
 * traces counted; no source lines, no limit.  A frame whose name is
 * missing has a NULL filename.  0 or -ENOMEM. */
int snapshot_report_stacks(const struct snapshot *s, struct snap_report *out);

void snap_report_fini(struct snap_report *r);

/* ---- filters ---------------------------------------------------------- */

struct snap_filter {
	int inclusive;            /* 1: Filter(True, ...); 0: exclude */
	int is_domain_filter;     /* DomainFilter(inclusive, domain) */
	const char *pattern;      /* fnmatch pattern on the filename */
	int has_lineno;
	uint32_t lineno;
	int all_frames;
	int has_domain;
	uint32_t domain;
};

/* snapshot.filter_traces(filters): a new snapshot with the traces that
 * pass, in their order, with the same metadata and source lines; same
 * semantics as tracemalloc (includes: any must match; excludes: none may
 * match; ".pyc" at the end of a pattern or filename is read as ".py";
 * fnmatch as Python's fnmatch.fnmatchcase on posix for meta.py_hexversion,
 * see src/snapshot/filter.c).  A frame filter on an empty traceback does
 * not match (tracemalloc raises IndexError).  NULL + errno: ENOMEM, or
 * EINVAL for a NULL pattern or a pattern that version's re module rejects
 * (a reversed range such as "[z-a]" before 3.10; 3.10+ accepts it). */
struct snapshot *snapshot_filter(const struct snapshot *s,
				 const struct snap_filter *filters, size_t n);

/* ---- files ------------------------------------------------------------ */

#define SNAP_TRM_VERSION 2 /* 2: sampled snapshots (an exact one is written as 1) */

/* .trm: own binary format (see docs/FORMATS.md).  Read errors are
 * -TRM_EFORMAT with the byte offset and reason in err ("truncated at byte
 * N: traceback table"; the caller prefixes the file name), errno set to
 * TRM_EFORMAT (ENOMEM on allocation failure); a newer format version says
 * so.  Never crashes on any input; memory is proportional to the input.
 * The file keeps ids, metadata and source lines, but not the order of the
 * traces (stored grouped by traceback). */
int snapshot_write_trm(const struct snapshot *s, FILE *f, struct trm_err *err);
struct snapshot *snapshot_read_trm(FILE *f, struct trm_err *err);
struct snapshot *snapshot_read_trm_mem(const uint8_t *buf, size_t len,
				       struct trm_err *err);

/* tracemalloc's own Snapshot.dump() file: a pickle of a
 * tracemalloc.Snapshot.  The reader accepts the dumps of every supported
 * Python version (3.8-3.14, pickle protocols 2-5) and fills meta's
 * traceback_limit (other metadata stays empty); the writer produces a file
 * that tracemalloc.Snapshot.load of the Python version in
 * meta.py_hexversion loads (its trace tuple layout); a sampled snapshot
 * is refused (-EINVAL: its traces are estimates per traceback, not
 * blocks, and the format cannot say so).  Read errors are
 * -TRM_EFORMAT with offset and reason; never crashes on any input. */
int snapshot_write_tracemalloc(const struct snapshot *s, FILE *f,
			       struct trm_err *err);
struct snapshot *snapshot_read_tracemalloc_mem(const uint8_t *buf, size_t len,
					       struct trm_err *err);

/* A snapshot file of either format, told apart by its first bytes: a
 * tracemalloc dump (a pickle header, protocols 2-5) or a .trm file (its
 * magic, or a file shorter than the magic that starts like it: the reader
 * says where it is truncated).  path must name a regular file (opened
 * O_NONBLOCK and checked before any read: a FIFO or a device is refused,
 * never waited on) of at most 4 GiB.  NULL with errno set (an open or
 * read errno, ENOMEM, or TRM_EFORMAT: not a regular file, too large, not
 * a snapshot ("magic mismatch"), or the readers' errors) and err's
 * message saying why, without the path: the caller prefixes it. */
struct snapshot *snapshot_load(const char *path, struct trm_err *err);

/* Source lines stored in a .trm for offline reports (filename, lineno ->
 * text).  Borrowed; NULL when absent.  The text is NUL-terminated (a
 * NUL byte in it ends it). */
int snapshot_set_source(struct snapshot *s, uint32_t filename_id,
			uint32_t lineno, const char *text, size_t len);
const char *snapshot_source(const struct snapshot *s, const char *filename,
			    size_t filename_len, uint32_t lineno);
/* How many source lines s holds (a file holding them is written 0600). */
size_t snapshot_nsources(const struct snapshot *s);

#endif
