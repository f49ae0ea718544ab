/* snapfetch.c - read a SNAPSHOT_REQ reply stream into a struct snapshot
 * (snapfetch.h).  Everything from the wire is untrusted: every id is
 * checked against what the connection has received, every count against
 * the header and the caps (struct snapfetch_limits), and errors give the
 * byte offset in the reply. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "snapfetch.h"
#include "trmtop/util.h"

enum sf_state { SF_IDLE, SF_HEAD, SF_BODY, SF_BROKEN };

struct sf_str {
	size_t off;
	uint32_t len;
};

struct sf_frame {
	uint32_t str, lineno;
};

struct sf_tb {
	size_t off;
	uint32_t n, total;
};

/* A row of the connection's table (table replies, wire.h "Only the
 * changed rows"): a wire traceback id and its figures. */
struct sf_row {
	uint32_t tb, domain;
	uint64_t size;
	struct wire_trace_est e;
	uint64_t gen; /* the reply that last sent it */
};

struct snapfetch {
	/* the connection's tables: wire id -> content */
	struct sf_str *strs;
	struct sf_frame *frames;
	struct sf_tb *tbs;
	uint32_t nstr, nframe, ntb;
	size_t cap_str, cap_frame, cap_tb;
	uint8_t *bytes;
	size_t nbytes, cap_bytes;
	uint32_t *ids;
	size_t nids, cap_ids;
	/* this reply: wire id -> snapshot id (SNAP_NONE: not yet interned) */
	uint32_t *map_str, *map_frame, *map_tb;
	size_t cap_map_str, cap_map_frame, cap_map_tb;
	uint32_t *fbuf, *sbuf; /* WIRE_SNAP_NFRAME_MAX each */
	enum sf_state state;
	int phase; /* 0 strings, 1 frames, 2 tracebacks, 3 traces */
	struct snapshot *into;
	snapfetch_progress_fn *progress;
	void *arg;
	struct wire_snap_head head;
	uint64_t got, total_size;
	uint64_t off; /* of the current frame in the reply */
	uint32_t agent_error;
	uint64_t gil_ns, gil_max_ns; /* of the last complete snapshot */
	/* the table of the table replies: valid when have_table (and the
	 * connection is not broken) */
	struct sf_row *rows;
	size_t nrows, cap_rows;
	uint32_t *rowpos; /* wire traceback id -> index in rows + 1; 0 none */
	size_t cap_rowpos;
	bool have_table;
	uint64_t gen; /* table replies begun */
	struct snapfetch_limits lim;
};

/* Arrays of the receiver grow from 256 entries (util_grow). */
static int grow(void **arr, size_t *cap, size_t need, size_t sz)
{
	return util_grow(arr, cap, need, sz, 256);
}

/* Map arrays: grow to n entries, new ones SNAP_NONE. */
static int grow_map(uint32_t **map, size_t *cap, size_t n)
{
	size_t old = *cap;
	int rc = grow((void **)map, cap, n, sizeof(**map));

	if (rc == 0 && *cap > old)
		memset(*map + old, 0xff, (*cap - old) * sizeof(**map));
	return rc;
}

/* A u32 array grown to n entries, new ones 0. */
static int grow_zeroed(uint32_t **arr, size_t *cap, size_t n)
{
	size_t old = *cap;
	int rc = grow((void **)arr, cap, n, sizeof(**arr));

	if (rc == 0 && *cap > old)
		memset(*arr + old, 0, (*cap - old) * sizeof(**arr));
	return rc;
}

struct snapfetch *snapfetch_new(void)
{
	struct snapfetch *sf = calloc(1, sizeof(*sf));

	if (!sf)
		return NULL;
	sf->lim = (struct snapfetch_limits){
		.traces = SNAPFETCH_MAX_TRACES,
		.reply_bytes = SNAPFETCH_MAX_REPLY_BYTES,
		.strings = SNAPFETCH_MAX_STRINGS,
		.string_bytes = SNAPFETCH_MAX_STRING_BYTES,
		.frames = SNAPFETCH_MAX_FRAMES,
		.tracebacks = SNAPFETCH_MAX_TRACEBACKS,
		.frame_ids = SNAPFETCH_MAX_FRAME_IDS,
	};
	sf->fbuf = malloc(WIRE_SNAP_NFRAME_MAX * sizeof(*sf->fbuf));
	sf->sbuf = malloc(WIRE_SNAP_NFRAME_MAX * sizeof(*sf->sbuf));
	if (!sf->fbuf || !sf->sbuf) {
		snapfetch_free(sf);
		errno = ENOMEM;
		return NULL;
	}
	return sf;
}

void snapfetch_free(struct snapfetch *sf)
{
	if (!sf)
		return;
	free(sf->strs);
	free(sf->frames);
	free(sf->tbs);
	free(sf->bytes);
	free(sf->ids);
	free(sf->map_str);
	free(sf->map_frame);
	free(sf->map_tb);
	free(sf->fbuf);
	free(sf->sbuf);
	free(sf->rows);
	free(sf->rowpos);
	free(sf);
}

void snapfetch_set_limits(struct snapfetch *sf,
			  const struct snapfetch_limits *lim)
{
	sf->lim = *lim;
}

uint32_t snapfetch_agent_error(const struct snapfetch *sf)
{
	return sf ? sf->agent_error : 0;
}

int snapfetch_begin(struct snapfetch *sf, struct snapshot *into,
		    snapfetch_progress_fn *progress, void *arg)
{
	if (sf->state == SF_BROKEN)
		return -TRM_EPROTO;
	if (sf->map_str)
		memset(sf->map_str, 0xff, sf->cap_map_str * sizeof(uint32_t));
	if (sf->map_frame)
		memset(sf->map_frame, 0xff, sf->cap_map_frame * sizeof(uint32_t));
	if (sf->map_tb)
		memset(sf->map_tb, 0xff, sf->cap_map_tb * sizeof(uint32_t));
	sf->into = into;
	sf->progress = progress;
	sf->arg = arg;
	sf->state = SF_HEAD;
	sf->phase = 0;
	sf->got = sf->total_size = sf->off = 0;
	sf->agent_error = 0;
	memset(&sf->head, 0, sizeof(sf->head));
	return 0;
}

/* A protocol error at byte `at` of the current frame's payload. */
static int proto(struct snapfetch *sf, size_t at, const char *why,
		 struct trm_err *err)
{
	sf->state = SF_BROKEN;
	return trm_err_set(err, -TRM_EPROTO,
			   "snapshot reply: byte %llu: %s",
			   (unsigned long long)(sf->off + WIRE_HDR_SIZE + at), why);
}

/* A cap passed at byte `at` of the current frame's payload. */
static int too_many(struct snapfetch *sf, size_t at, const char *what,
		    uint64_t n, uint64_t cap, struct trm_err *err)
{
	sf->state = SF_BROKEN;
	return trm_err_set(err, -TRM_EPROTO,
			   "snapshot reply: byte %llu: %llu %s, more than the "
			   "%llu trmtop accepts",
			   (unsigned long long)(sf->off + WIRE_HDR_SIZE + at),
			   (unsigned long long)n, what, (unsigned long long)cap);
}

static int fail(struct snapfetch *sf, int rc, struct trm_err *err)
{
	sf->state = SF_BROKEN;
	return trm_err_set(err, rc, "snapshot reply: %s", trm_strerror(rc));
}

/* Forget the table (a full table reply replaces it). */
static void table_reset(struct snapfetch *sf)
{
	for (size_t i = 0; i < sf->nrows; i++)
		sf->rowpos[sf->rows[i].tb] = 0;
	sf->nrows = 0;
	sf->have_table = false;
}

/* The table part of SNAP_HEAD (sample_size, table_rows, table at 76, 84,
 * 92).  0 or -TRM_EPROTO. */
static int on_head_table(struct snapfetch *sf, struct trm_err *err)
{
	const struct wire_snap_head *h = &sf->head;

	if (!h->sample_size)
		return proto(sf, 76, "a table reply without a sampling size", err);
	if (h->table != WIRE_TABLE_FULL && h->table != WIRE_TABLE_DELTA)
		return proto(sf, 92, "unknown kind of table reply", err);
	if (h->table == WIRE_TABLE_DELTA && !sf->have_table)
		return proto(sf, 92, "a delta with no table on the connection "
			     "to apply it to", err);
	if (h->table_rows > sf->lim.traces)
		return too_many(sf, 84, "table rows announced", h->table_rows,
				sf->lim.traces, err);
	if (h->table_rows > (uint64_t)sf->ntb + h->new_tracebacks)
		return proto(sf, 84, "more table rows than tracebacks", err);
	if (h->table == WIRE_TABLE_FULL ? h->ntraces != h->table_rows
					: h->ntraces > h->table_rows)
		return proto(sf, 32, "more traces than table rows", err);
	if (h->table == WIRE_TABLE_FULL)
		table_reset(sf);
	sf->gen++;
	return 0;
}

static int on_head(struct snapfetch *sf, const struct wire_msg *msg,
		   struct trm_err *err)
{
	struct wire_snap_head *h = &sf->head;

	if (wire_dec_snap_head(msg, h) < 0)
		return proto(sf, msg->len, "short SNAP_HEAD", err);
	if (h->first_string != sf->nstr || h->first_frame != sf->nframe ||
	    h->first_traceback != sf->ntb)
		return proto(sf, 48, "first ids out of step with the connection",
			     err);
	/* the caps, before anything is allocated for them */
	if (h->ntraces > sf->lim.traces)
		return too_many(sf, 32, "traces announced", h->ntraces,
				sf->lim.traces, err);
	if ((uint64_t)sf->nstr + h->new_strings > sf->lim.strings)
		return too_many(sf, 60, "strings in the connection",
				(uint64_t)sf->nstr + h->new_strings,
				sf->lim.strings, err);
	if ((uint64_t)sf->nframe + h->new_frames > sf->lim.frames)
		return too_many(sf, 64, "frames in the connection",
				(uint64_t)sf->nframe + h->new_frames,
				sf->lim.frames, err);
	if ((uint64_t)sf->ntb + h->new_tracebacks > sf->lim.tracebacks)
		return too_many(sf, 68, "tracebacks in the connection",
				(uint64_t)sf->ntb + h->new_tracebacks,
				sf->lim.tracebacks, err);
	if (h->new_strings > UINT32_MAX - sf->nstr ||
	    h->new_frames > UINT32_MAX - sf->nframe ||
	    h->new_tracebacks > UINT32_MAX - sf->ntb)
		return proto(sf, 60, "too many new entries", err);
	if (h->table && on_head_table(sf, err) < 0)
		return -TRM_EPROTO;
	if (h->sample_size && snapshot_set_sampled(sf->into, h->sample_size) < 0)
		return fail(sf, -EINVAL, err);
	sf->state = SF_BODY;
	return 0;
}

/* Check a chunk's kind against the order and its first id. */
static int chunk_order(struct snapfetch *sf, const struct wire_chunk_rd *rd,
		       int phase, uint64_t first, struct trm_err *err)
{
	if (phase < sf->phase)
		return proto(sf, 0, "chunk out of order", err);
	sf->phase = phase;
	if (rd->first != (uint32_t)first) /* trace indexes: modulo 2^32 */
		return proto(sf, 0, "chunk's first id out of step", err);
	return 0;
}

static int on_strings(struct snapfetch *sf, struct wire_chunk_rd *rd,
		      struct trm_err *err)
{
	const uint8_t *s;
	uint32_t len;
	int rc;

	if ((rc = chunk_order(sf, rd, 0, sf->nstr, err)) < 0)
		return rc;
	if (rd->count > sf->head.first_string + sf->head.new_strings - sf->nstr)
		return proto(sf, 4, "more strings than announced", err);
	if (grow((void **)&sf->strs, &sf->cap_str, (size_t)sf->nstr + rd->count,
		 sizeof(*sf->strs)) < 0 ||
	    grow_map(&sf->map_str, &sf->cap_map_str, (size_t)sf->nstr + rd->count) < 0)
		return fail(sf, -ENOMEM, err);
	while ((rc = wire_chunk_next_string(rd, &s, &len)) == 1) {
		if (sf->nbytes + len > sf->lim.string_bytes)
			return too_many(sf, wire_chunk_offset(rd) - len,
					"bytes of strings in the connection",
					(uint64_t)sf->nbytes + len,
					sf->lim.string_bytes, err);
		if (grow((void **)&sf->bytes, &sf->cap_bytes, sf->nbytes + len + 1,
			 1) < 0)
			return fail(sf, -ENOMEM, err);
		memcpy(sf->bytes + sf->nbytes, s, len);
		sf->strs[sf->nstr].off = sf->nbytes;
		sf->strs[sf->nstr].len = len;
		sf->nbytes += len;
		sf->nstr++;
	}
	return rc < 0 ? proto(sf, wire_chunk_offset(rd), "bad string", err) : 0;
}

static int on_frames(struct snapfetch *sf, struct wire_chunk_rd *rd,
		     struct trm_err *err)
{
	uint32_t sid, lineno;
	size_t at;
	int rc;

	if ((rc = chunk_order(sf, rd, 1, sf->nframe, err)) < 0)
		return rc;
	if (rd->count > sf->head.first_frame + sf->head.new_frames - sf->nframe)
		return proto(sf, 4, "more frames than announced", err);
	if (grow((void **)&sf->frames, &sf->cap_frame,
		 (size_t)sf->nframe + rd->count, sizeof(*sf->frames)) < 0 ||
	    grow_map(&sf->map_frame, &sf->cap_map_frame,
		     (size_t)sf->nframe + rd->count) < 0)
		return fail(sf, -ENOMEM, err);
	for (at = wire_chunk_offset(rd);
	     (rc = wire_chunk_next_frame(rd, &sid, &lineno)) == 1;
	     at = wire_chunk_offset(rd)) {
		if (sid >= sf->nstr)
			return proto(sf, at, "frame refers to an unknown string",
				     err);
		sf->frames[sf->nframe].str = sid;
		sf->frames[sf->nframe].lineno = lineno;
		sf->nframe++;
	}
	return rc < 0 ? proto(sf, wire_chunk_offset(rd), "bad frame", err) : 0;
}

static int on_tracebacks(struct snapfetch *sf, struct wire_chunk_rd *rd,
			 struct trm_err *err)
{
	uint32_t n, total;
	size_t at;
	int rc;

	if ((rc = chunk_order(sf, rd, 2, sf->ntb, err)) < 0)
		return rc;
	if (rd->count > sf->head.first_traceback + sf->head.new_tracebacks - sf->ntb)
		return proto(sf, 4, "more tracebacks than announced", err);
	if (grow((void **)&sf->tbs, &sf->cap_tb, (size_t)sf->ntb + rd->count,
		 sizeof(*sf->tbs)) < 0 ||
	    grow_map(&sf->map_tb, &sf->cap_map_tb, (size_t)sf->ntb + rd->count) < 0)
		return fail(sf, -ENOMEM, err);
	for (at = wire_chunk_offset(rd);
	     (rc = wire_chunk_next_traceback(rd, sf->fbuf, WIRE_SNAP_NFRAME_MAX,
					     &n, &total)) == 1;
	     at = wire_chunk_offset(rd)) {
		for (uint32_t i = 0; i < n; i++)
			if (sf->fbuf[i] >= sf->nframe)
				return proto(sf, at,
					     "traceback refers to an unknown frame",
					     err);
		if (total < n)
			return proto(sf, at, "total_nframe below the frame count",
				     err);
		if (sf->nids + n > sf->lim.frame_ids)
			return too_many(sf, at,
					"frame ids of tracebacks in the connection",
					(uint64_t)sf->nids + n, sf->lim.frame_ids,
					err);
		if (grow((void **)&sf->ids, &sf->cap_ids, sf->nids + n + 1,
			 sizeof(*sf->ids)) < 0)
			return fail(sf, -ENOMEM, err);
		memcpy(sf->ids + sf->nids, sf->fbuf, n * sizeof(*sf->ids));
		sf->tbs[sf->ntb].off = sf->nids;
		sf->tbs[sf->ntb].n = n;
		sf->tbs[sf->ntb].total = total;
		sf->nids += n;
		sf->ntb++;
	}
	return rc < 0 ? proto(sf, wire_chunk_offset(rd), "bad traceback", err)
		      : 0;
}

/* Snapshot id of wire traceback tb (interning it and its frames and
 * strings on first use in this reply); SNAP_NONE on allocation failure. */
static uint32_t resolve_tb(struct snapfetch *sf, uint32_t tb)
{
	const struct sf_tb *t = &sf->tbs[tb];
	const uint32_t *ids = sf->ids + t->off;

	if (sf->map_tb[tb] != SNAP_NONE)
		return sf->map_tb[tb];
	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t f = ids[i];

		if (sf->map_frame[f] == SNAP_NONE) {
			uint32_t s = sf->frames[f].str;

			if (sf->map_str[s] == SNAP_NONE) {
				sf->map_str[s] = snapshot_intern_str(
					sf->into,
					(const char *)sf->bytes + sf->strs[s].off,
					sf->strs[s].len);
				if (sf->map_str[s] == SNAP_NONE)
					return SNAP_NONE;
			}
			sf->map_frame[f] = snapshot_intern_frame(
				sf->into, sf->map_str[s], sf->frames[f].lineno);
			if (sf->map_frame[f] == SNAP_NONE)
				return SNAP_NONE;
		}
		sf->sbuf[i] = sf->map_frame[f];
	}
	sf->map_tb[tb] = snapshot_intern_traceback(sf->into, sf->sbuf, t->n,
						   t->total);
	return sf->map_tb[tb];
}

/* Add one trace, with its estimates in a sampled reply: 0 or the error
 * of snapshot_add_trace / snapshot_add_sample. */
static int add_trace(struct snapfetch *sf, uint32_t domain, uint64_t size,
		     uint32_t tb, const struct wire_trace_est *e)
{
	struct snap_sample smp = { e->count, e->alloc_size, e->alloc_count };

	if (!sf->head.sample_size)
		return snapshot_add_trace(sf->into, domain, size, tb);
	return snapshot_add_sample(sf->into, domain, size, tb, &smp);
}

/* One entry of a table reply at byte `at`: a row sent again replaces
 * its figures, a new one is added.  0 or an error. */
static int table_row(struct snapfetch *sf, size_t at, uint64_t size,
		     uint32_t tb, uint32_t domain,
		     const struct wire_trace_est *e, struct trm_err *err)
{
	uint32_t pos = tb < sf->cap_rowpos ? sf->rowpos[tb] : 0;
	struct sf_row *r;

	if (e->alloc_size < size || e->alloc_count < e->count ||
	    (size && !e->count) || (e->alloc_size && !e->alloc_count))
		return proto(sf, at, "estimates that cannot be (allocated below "
			     "in use, or bytes without blocks)", err);
	if (size > UINT64_MAX - sf->total_size)
		return proto(sf, at, "trace sizes add up to more than 2^64-1 "
			     "bytes", err);
	if (pos && sf->rows[pos - 1].gen == sf->gen)
		return proto(sf, at, "a traceback sent twice in a table reply",
			     err);
	if (!pos) {
		if (grow((void **)&sf->rows, &sf->cap_rows, sf->nrows + 1,
			 sizeof(*sf->rows)) < 0)
			return fail(sf, -ENOMEM, err);
		sf->rowpos[tb] = pos = (uint32_t)++sf->nrows;
	}
	r = &sf->rows[pos - 1];
	*r = (struct sf_row){ tb, domain, size, *e, sf->gen };
	sf->total_size += size;
	sf->got++;
	return 0;
}

/* After a table reply's last entry: check the table against SNAP_HEAD
 * and put its rows in the snapshot.  0 or an error. */
static int table_fill(struct snapfetch *sf, struct trm_err *err)
{
	uint64_t inuse = 0;

	if (sf->nrows != sf->head.table_rows)
		return proto(sf, 84, "the table's rows after this reply differ "
			     "from SNAP_HEAD's table_rows", err);
	for (size_t i = 0; i < sf->nrows; i++) {
		const struct sf_row *r = &sf->rows[i];
		uint32_t stb;
		int rc;

		if (__builtin_add_overflow(inuse, r->size, &inuse))
			return proto(sf, 0, "table rows add up to more than "
				     "2^64-1 bytes in use", err);
		stb = resolve_tb(sf, r->tb);
		if (stb == SNAP_NONE)
			return fail(sf, -ENOMEM, err);
		rc = add_trace(sf, r->domain, r->size, stb, &r->e);
		if (rc == -EOVERFLOW || rc == -EINVAL)
			return proto(sf, 0, "table rows add up to more than "
				     "2^63-1", err);
		if (rc < 0)
			return fail(sf, rc, err);
	}
	if (inuse != sf->head.traced_current)
		return proto(sf, 0, "the table's bytes in use differ from "
			     "SNAP_HEAD's traced_current", err);
	sf->have_table = true;
	return 0;
}

static int on_traces(struct snapfetch *sf, struct wire_chunk_rd *rd,
		     struct trm_err *err)
{
	struct wire_trace_est e;
	uint64_t size;
	uint32_t tb, domain, stb;
	size_t at;
	int rc, est = !!(rd->flags & WIRE_TRACES_ESTIMATES);

	if ((rc = chunk_order(sf, rd, 3, sf->got, err)) < 0)
		return rc;
	if (rd->count > sf->head.ntraces - sf->got)
		return proto(sf, 4, "more traces than announced", err);
	/* a sampled reply's traces are estimates, an exact one's are not
	 * (an agent older than wire minor 2 sends no block counts: the
	 * session does not ask it for a sampled snapshot) */
	if (est != !!sf->head.sample_size)
		return proto(sf, 0, est ? "estimates in an exact snapshot"
				       : "sampled traces without their estimates",
			     err);
	if (sf->head.table && grow_zeroed(&sf->rowpos, &sf->cap_rowpos, sf->ntb) < 0)
		return fail(sf, -ENOMEM, err);
	for (at = wire_chunk_offset(rd);
	     (rc = wire_chunk_next_trace_est(rd, &size, &tb, &domain, &e)) == 1;
	     at = wire_chunk_offset(rd)) {
		if (tb >= sf->ntb)
			return proto(sf, at, "trace refers to an unknown traceback",
				     err);
		if (sf->head.table) {
			if ((rc = table_row(sf, at, size, tb, domain, &e, err)) < 0)
				return rc;
			continue;
		}
		stb = resolve_tb(sf, tb);
		if (stb == SNAP_NONE)
			return fail(sf, -ENOMEM, err);
		rc = add_trace(sf, domain, size, stb, &e);
		if (rc == -EOVERFLOW)
			return proto(sf, at, est ? "trace estimates add up to more "
				     "than 2^63-1" : "trace sizes add up to more than "
				     "2^63-1 bytes", err);
		if (rc == -EINVAL && est)
			return proto(sf, at, "estimates that cannot be (allocated "
				     "below in use, or bytes without blocks)", err);
		if (rc < 0)
			return fail(sf, rc, err);
		sf->total_size += size;
		sf->got++;
	}
	if (rc < 0)
		return proto(sf, wire_chunk_offset(rd), "bad trace", err);
	if (sf->progress)
		sf->progress(sf->got, sf->head.ntraces, sf->arg);
	return 0;
}

static int on_end(struct snapfetch *sf, const struct wire_msg *msg,
		  struct trm_err *err)
{
	const struct wire_snap_head *h = &sf->head;
	struct wire_snap_end e;
	struct snapshot_meta *m;
	int rc;

	if (wire_dec_snap_end(msg, &e) < 0)
		return proto(sf, msg->len, "short SNAP_END", err);
	if (e.ntraces != sf->got || h->ntraces != sf->got)
		return proto(sf, 0, "trace count differs from the header", err);
	if (e.total_size != sf->total_size)
		return proto(sf, 8, "total size differs from the traces", err);
	if (e.nstrings != sf->nstr || e.nframes != sf->nframe ||
	    e.ntracebacks != sf->ntb ||
	    sf->nstr - h->first_string != h->new_strings ||
	    sf->nframe - h->first_frame != h->new_frames ||
	    sf->ntb - h->first_traceback != h->new_tracebacks)
		return proto(sf, 16, "table sizes differ from what was sent", err);
	if (h->table && (rc = table_fill(sf, err)) < 0)
		return rc;
	m = snapshot_meta(sf->into);
	m->traceback_limit = h->traceback_limit;
	m->traced_current = h->traced_current;
	m->traced_peak = h->traced_peak;
	m->rss = h->rss;
	m->tracemalloc_memory = h->tracemalloc_memory;
	m->py_hexversion = h->py_hexversion;
	sf->gil_ns = e.gil_ns;
	sf->gil_max_ns = e.gil_max_ns;
	sf->state = SF_IDLE;
	return 1;
}

void snapfetch_abandon(struct snapfetch *sf)
{
	sf->state = SF_BROKEN;
}

uint64_t snapfetch_offset(const struct snapfetch *sf)
{
	return sf->off;
}

void snapfetch_gil_time(const struct snapfetch *sf, uint64_t *total_ns,
			uint64_t *max_ns)
{
	*total_ns = sf->gil_ns;
	*max_ns = sf->gil_max_ns;
}

int snapfetch_feed(struct snapfetch *sf, const struct wire_msg *msg,
		   struct trm_err *err)
{
	struct wire_chunk_rd rd;
	struct wire_error e;
	int rc;

	if (sf->state == SF_BROKEN)
		return trm_err_set(err, -TRM_EPROTO,
				   "snapshot reply: the connection is out of step");
	if (sf->state == SF_IDLE)
		return trm_err_set(err, -EINVAL, "snapshot reply: not begun");
	if (sf->off + WIRE_HDR_SIZE + (uint64_t)msg->len > sf->lim.reply_bytes) {
		rc = too_many(sf, 0, "bytes in the reply",
			      sf->off + WIRE_HDR_SIZE + (uint64_t)msg->len,
			      sf->lim.reply_bytes, err);
		goto out;
	}
	if (msg->type == WIRE_ERROR) {
		bool first = sf->state == SF_HEAD;

		if (wire_dec_error(msg, &e) < 0)
			return proto(sf, 0, "short ERROR", err);
		sf->agent_error = e.code;
		sf->state = first ? SF_IDLE : SF_BROKEN;
		return trm_err_set(err, -TRM_EAGENT, "agent: %s", e.text);
	}
	if (sf->state == SF_HEAD) {
		if (msg->type != WIRE_SNAP_HEAD)
			rc = proto(sf, 0, "expected SNAP_HEAD", err);
		else
			rc = on_head(sf, msg, err);
		goto out;
	}
	switch (msg->type) {
	case WIRE_SNAP_STRINGS:
	case WIRE_SNAP_FRAMES:
	case WIRE_SNAP_TRACEBACKS:
	case WIRE_SNAP_TRACES:
		if (wire_chunk_open(msg, &rd) < 0) {
			rc = proto(sf, 4, "chunk count exceeds its payload", err);
			break;
		}
		rc = msg->type == WIRE_SNAP_STRINGS  ? on_strings(sf, &rd, err)
		     : msg->type == WIRE_SNAP_FRAMES ? on_frames(sf, &rd, err)
		     : msg->type == WIRE_SNAP_TRACEBACKS
			     ? on_tracebacks(sf, &rd, err)
			     : on_traces(sf, &rd, err);
		break;
	case WIRE_SNAP_END:
		rc = on_end(sf, msg, err);
		break;
	default:
		if (msg->type <= WIRE_SNAP_END)
			rc = proto(sf, 0, "unexpected message in a snapshot", err);
		else
			rc = 0; /* a newer message type: ignored */
		break;
	}
out:
	sf->off += WIRE_HDR_SIZE + (uint64_t)msg->len;
	return rc;
}
