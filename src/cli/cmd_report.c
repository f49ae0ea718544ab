/* cmd_report.c - top, diff, traceback, export, import: reports on
 * snapshot files, offline and scriptable.  Owns the report options (their
 * parsing, and report_opts: the one way a command says what its report
 * shows) and the --fail-above gate; snapshot computes the rows
 * (snapshot_report_*), render lays them out, snapfile.c loads and saves,
 * outfile.h writes (exit 5). */
#include "config.h"

#include <argp.h>
#include <errno.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "outfile.h"
#include "trmtop/render.h"
#include "trmtop/snapshot.h"
#include "trmtop/util.h"

#define MAX_FILTERS 64

/* ---- shared report options ------------------------------------------- */

enum {
	OPT_GROUP_BY = 0x300, OPT_CUMULATIVE, OPT_LIMIT, OPT_INCLUDE, OPT_EXCLUDE,
	OPT_FORMAT, OPT_ALL_FRAMES, OPT_DOMAIN, OPT_EXCLUDE_DOMAIN,
	OPT_FAIL_ABOVE, OPT_FAIL_ABOVE_LINE, OPT_RANK, OPT_LOCATION, OPT_TO,
	OPT_WHAT,
};

enum fmt { FMT_TEXT, FMT_JSON, FMT_COLLAPSED, FMT_TRACEMALLOC, FMT_TRM };

struct report_args {
	enum snap_key key;
	int cumulative;
	size_t limit;
	enum fmt format;
	struct snap_filter filters[MAX_FILTERS];
	char *patterns[MAX_FILTERS];
	size_t nfilters;
	int all_frames;
	const char *files[2];
	int nfiles, want_files;
	uint64_t fail_above, fail_above_line;
	int has_fail_above, has_fail_above_line;
	unsigned rank;
	const char *location;
	const char *output;
	const char *cmd;
	enum snap_what what;
	int has_what;
};

static const struct argp_option view_options[] = {
	{ "group-by", OPT_GROUP_BY, "KEY", 0,
	  "Group by lineno (default), filename or traceback", 1 },
	{ "cumulative", OPT_CUMULATIVE, NULL, 0,
	  "Count every frame of each traceback, not only the most recent", 1 },
	{ "limit", OPT_LIMIT, "N", 0, "Rows shown (default 10; 0 = all)", 1 },
	{ "format", OPT_FORMAT, "FMT", 0, "text (default), json or collapsed", 3 },
	{ 0 }
};

static const struct argp_option filter_options[] = {
	{ "include", OPT_INCLUDE, "GLOB[:LINE]", 0,
	  "Keep only traces whose filename matches (fnmatch; repeatable)", 2 },
	{ "exclude", OPT_EXCLUDE, "GLOB[:LINE]", 0,
	  "Drop traces whose filename matches (fnmatch; repeatable)", 2 },
	{ "all-frames", OPT_ALL_FRAMES, NULL, 0,
	  "Filters match any frame, not only the most recent", 2 },
	{ "domain", OPT_DOMAIN, "N", 0, "Keep only traces of this domain", 2 },
	{ "exclude-domain", OPT_EXCLUDE_DOMAIN, "N", 0, "Drop traces of this domain", 2 },
	{ 0 }
};

static const struct argp_option what_options[] = {
	{ "what", OPT_WHAT, "WHAT", 0,
	  "Of a sampled snapshot: inuse (default: the memory in use now, "
	  "where leaks show) or alloc (allocated since sampling started: "
	  "allocation pressure)", 2 },
	{ 0 }
};

static const struct argp_option diff_options[] = {
	{ "fail-above", OPT_FAIL_ABOVE, "SIZE", 0,
	  "Exit 3 when the total growth exceeds SIZE (e.g. 5MiB)", 4 },
	{ "fail-above-line", OPT_FAIL_ABOVE_LINE, "SIZE", 0,
	  "Exit 3 when any single location grows by more than SIZE", 4 },
	{ 0 }
};

static const struct argp_option traceback_options[] = {
	{ "rank", OPT_RANK, "N", 0, "The Nth largest traceback (default 1)", 1 },
	{ "location", OPT_LOCATION, "FILE:LINE", 0,
	  "The largest traceback whose most recent frame is FILE:LINE", 1 },
	{ "format", OPT_FORMAT, "FMT", 0, "text (default) or json", 3 },
	{ 0 }
};

static const struct argp_option export_options[] = {
	{ "to", OPT_TO, "FMT", 0, "tracemalloc, json or collapsed", 1 },
	{ "output", 'o', "FILE", 0, "Write to FILE (default: standard output)", 1 },
	{ 0 }
};

static const struct argp_option import_options[] = {
	{ "output", 'o', "FILE", 0, "The .trm file to write (required)", 1 },
	{ 0 }
};

static int parse_filter(struct report_args *a, struct argp_state *state,
			int inclusive, char *arg)
{
	struct snap_filter *f;
	char *colon;

	if (a->nfilters >= MAX_FILTERS)
		argp_error(state, "too many filters (at most %d)", MAX_FILTERS);
	f = &a->filters[a->nfilters];
	memset(f, 0, sizeof(*f));
	f->inclusive = inclusive;
	colon = strrchr(arg, ':');
	if (colon && colon[1]) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(colon + 1, &end, 10);
		if (!errno && !*end && v <= UINT32_MAX) {
			*colon = '\0';
			f->has_lineno = 1;
			f->lineno = (uint32_t)v;
		}
	}
	f->pattern = arg;
	a->nfilters++;
	return 0;
}

static error_t report_parse(int key, char *arg, struct argp_state *state)
{
	struct report_args *a = state->input;
	char *end;
	unsigned long v;

	switch (key) {
	case OPT_GROUP_BY:
		if (snap_key_parse(arg, &a->key) < 0)
			argp_error(state, "--group-by: expected lineno, filename or "
				   "traceback, not '%s'", arg);
		return 0;
	case OPT_CUMULATIVE:
		a->cumulative = 1;
		return 0;
	case OPT_LIMIT:
	case OPT_RANK:
	case OPT_DOMAIN:
	case OPT_EXCLUDE_DOMAIN:
		errno = 0;
		v = strtoul(arg, &end, 10);
		if (errno || *end || !*arg || v > UINT32_MAX || (key == OPT_RANK && v == 0))
			argp_error(state, "invalid number '%s'", arg);
		if (key == OPT_LIMIT) {
			a->limit = v;
		} else if (key == OPT_RANK) {
			a->rank = (unsigned)v;
		} else {
			struct snap_filter *f;

			if (a->nfilters >= MAX_FILTERS)
				argp_error(state, "too many filters");
			f = &a->filters[a->nfilters++];
			memset(f, 0, sizeof(*f));
			f->is_domain_filter = 1;
			f->inclusive = key == OPT_DOMAIN;
			f->has_domain = 1;
			f->domain = (uint32_t)v;
		}
		return 0;
	case OPT_INCLUDE:
	case OPT_EXCLUDE:
		return parse_filter(a, state, key == OPT_INCLUDE, arg);
	case OPT_ALL_FRAMES:
		a->all_frames = 1;
		return 0;
	case OPT_FORMAT:
	case OPT_TO:
		if (strcmp(arg, "text") == 0 && key == OPT_FORMAT)
			a->format = FMT_TEXT;
		else if (strcmp(arg, "json") == 0)
			a->format = FMT_JSON;
		else if (strcmp(arg, "collapsed") == 0)
			a->format = FMT_COLLAPSED;
		else if (strcmp(arg, "tracemalloc") == 0 && key == OPT_TO)
			a->format = FMT_TRACEMALLOC;
		else
			argp_error(state, "unknown format '%s'", arg);
		return 0;
	case OPT_FAIL_ABOVE:
	case OPT_FAIL_ABOVE_LINE: {
		uint64_t sz;

		if (util_parse_size(arg, &sz) < 0)
			argp_error(state, "invalid size '%s' (e.g. 5MiB, 512k, 1000000)", arg);
		if (key == OPT_FAIL_ABOVE) {
			a->fail_above = sz;
			a->has_fail_above = 1;
		} else {
			a->fail_above_line = sz;
			a->has_fail_above_line = 1;
		}
		return 0;
	}
	case OPT_LOCATION:
		a->location = arg;
		return 0;
	case OPT_WHAT:
		if (snap_what_parse(arg, &a->what) < 0)
			argp_error(state, "--what: expected inuse or alloc, not '%s'",
				   arg);
		a->has_what = 1;
		return 0;
	case 'o':
		a->output = arg;
		return 0;
	case ARGP_KEY_ARG:
		if (a->nfiles >= a->want_files)
			argp_error(state, "unexpected argument '%s'", arg);
		a->files[a->nfiles++] = arg;
		return 0;
	case ARGP_KEY_END:
		if (a->nfiles < a->want_files)
			argp_error(state, "expected %d snapshot file%s", a->want_files,
				   a->want_files > 1 ? "s" : "");
		if (a->cumulative && a->key == SNAP_KEY_TRACEBACK)
			argp_error(state, "--cumulative applies to lineno and filename grouping only");
		return 0;
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

enum { WITH_VIEW = 1, WITH_FILTERS = 2 };

static int parse_report(int argc, char **argv, int with,
			const struct argp_option *extra, const char *args_doc,
			const char *doc, int nfiles, struct report_args *a)
{
	const struct argp_option *groups[4] = {
		with & WITH_VIEW ? view_options : NULL,
		with & WITH_FILTERS ? filter_options : NULL,
		with & WITH_FILTERS ? what_options : NULL, extra };
	struct argp_option *all = cli_merge_options(groups, 4);
	struct argp ap = { all, report_parse, args_doc, doc, NULL, NULL, NULL };
	size_t i;
	int rc;

	if (!all) {
		cli_errorf("out of memory");
		return EXIT_TARGET;
	}
	memset(a, 0, sizeof(*a));
	/* without the view options: every traceback (traceback, export) */
	a->key = with & WITH_VIEW ? SNAP_KEY_LINENO : SNAP_KEY_TRACEBACK;
	a->limit = with & WITH_VIEW ? 10 : 0;
	a->rank = 1;
	a->want_files = nfiles;
	rc = argp_parse(&ap, argc, argv, 0, NULL, a);
	free(all);
	if (rc != 0)
		return EXIT_USAGE;
	for (i = 0; i < a->nfilters; i++)
		a->filters[i].all_frames = a->all_frames;
	return 0;
}

static const char *stored_source(void *arg, const char *filename,
				 size_t filename_len, uint32_t lineno)
{
	return snapshot_source(arg, filename, filename_len, lineno);
}

/* The one way a command says what its report shows: the parsed view
 * options, with the source lines stored in the snapshot src. */
static struct snap_report_opts report_opts(const struct report_args *a,
					   const struct snapshot *src)
{
	struct snap_report_opts o = { a->key, a->cumulative, a->limit,
				      stored_source, (void *)src };

	return o;
}

static enum render_format render_format(enum fmt f)
{
	return f == FMT_JSON ? RENDER_JSON
	       : f == FMT_COLLAPSED ? RENDER_COLLAPSED : RENDER_TEXT;
}

/* Report a failed statistics or compare; returns the exit code.  Sums
 * past 2^63-1 bytes come from crafted sizes: bad input. */
static int stats_failed(const char *file, const char *what, int rc)
{
	if (rc == -EOVERFLOW) {
		cli_errorf("%s: %s: a size or count adds up to more than 2^63-1 "
			   "(crafted sizes: no process holds that much)", file, what);
		return EXIT_BADINPUT;
	}
	cli_errorf("%s: %s: %s", file, what, strerror(-rc));
	return EXIT_TARGET;
}

/* --what on the snapshot loaded from file: 0, or the exit code (an exact
 * snapshot has no allocated figures; the error printed). */
static int apply_what(struct snapshot *s, const char *file,
		      const struct report_args *a)
{
	if (snapshot_set_what(s, a->what) == 0)
		return 0;
	cli_errorf("%s: --what alloc needs a sampled snapshot (an exact one "
		   "holds only the memory in use)", file);
	return EXIT_USAGE;
}

/* Apply the filters (if any): returns s itself or a filtered copy in *own. */
static const struct snapshot *filtered(const struct snapshot *s,
				       const struct report_args *a,
				       struct snapshot **own, int *ec)
{
	*own = NULL;
	if (a->nfilters == 0)
		return s;
	*own = snapshot_filter(s, a->filters, a->nfilters);
	if (!*own) {
		cli_errorf("filtering: %s", strerror(errno));
		*ec = EXIT_TARGET;
	}
	return *own;
}

/* Load file and apply the filters: *s the snapshot, the return value what
 * the report reads (*s itself or a filtered copy in *own); NULL with *ec
 * set (the error printed). */
static const struct snapshot *load_view(const char *file,
					const struct report_args *a,
					struct snapshot **s,
					struct snapshot **own, int *ec)
{
	*own = NULL;
	*s = cli_load_snapshot(file, ec);
	if (!*s)
		return NULL;
	*ec = apply_what(*s, file, a);
	if (*ec)
		return NULL;
	return filtered(*s, a, own, ec);
}

/* The rows of top and export: collapsed stacks, or the top sites (none
 * for a tracemalloc dump, written from the snapshot itself).  0 or the
 * exit code. */
static int top_rows(const struct snapshot *v, const struct snapshot *src,
		    const struct report_args *a, struct snap_report *r)
{
	struct snap_report_opts ro = report_opts(a, src);
	int rc = 0;

	if (a->format == FMT_COLLAPSED)
		rc = snapshot_report_stacks(v, r);
	else if (a->format != FMT_TRACEMALLOC)
		rc = snapshot_report_top(v, &ro, r);
	return rc < 0 ? stats_failed(a->files[0], "statistics", rc) : 0;
}

/* Lay r out on standard output, then note (if any) on out or, under
 * JSON, on stderr.  0 or the exit code. */
static int print_report(const struct report_args *a,
			const struct snap_report *r, const char *note)
{
	struct outfile out;
	int ec, rc;

	struct render_opts ro = { 0 };
	const char *cs;

	/* "~" for "≈" where the charset is not UTF-8, as the live view */
	if (r->sample_size && a->format == FMT_TEXT) {
		setlocale(LC_CTYPE, "");
		cs = nl_langinfo(CODESET);
		ro.ascii = !cs || strcmp(cs, "UTF-8") != 0;
	}
	ec = outfile_start(&out, NULL, 0);
	if (ec)
		return ec;
	rc = render_report_with(out.f, render_format(a->format), r, &ro);
	if (note)
		fputs(note, a->format == FMT_JSON ? stderr : out.f);
	return outfile_finish(&out, rc, NULL);
}

int cmd_top(int argc, char **argv)
{
	struct report_args a;
	struct snapshot *s, *own;
	const struct snapshot *v;
	struct snap_report r = { 0 };
	int ec = 0;

	ec = parse_report(argc, argv, WITH_VIEW | WITH_FILTERS, NULL, "FILE",
			  "Show the top allocation sites of a snapshot file (.trm or a "
			  "tracemalloc dump).", 1, &a);
	if (ec)
		return ec;
	v = load_view(a.files[0], &a, &s, &own, &ec);
	if (!v)
		goto out;
	ec = top_rows(v, s, &a, &r);
	if (!ec)
		ec = print_report(&a, &r, NULL);
out:
	snap_report_fini(&r);
	snapshot_free(own);
	snapshot_free(s);
	return ec;
}

/* --fail-above, --fail-above-line: the exit code (3 when exceeded) and
 * a message on what grew. */
static int check_growth(const struct report_args *a, const struct snap_report *r)
{
	char loc[1024], b1[32], b2[32];
	int ec = 0;
	size_t i;

	if (a->has_fail_above && r->total_size_diff > 0 &&
	    (uint64_t)r->total_size_diff > a->fail_above) {
		cli_errorf("total growth %s exceeds --fail-above %s",
			   util_format_size(r->total_size_diff, 1, b1, sizeof(b1)),
			   util_format_size((int64_t)a->fail_above, 0, b2, sizeof(b2)));
		for (i = 0; i < r->nrows && i < 3 && r->rows[i].size_diff > 0; i++)
			fprintf(stderr, "  grows: %s %s\n",
				render_row_loc(&r->rows[i], loc, sizeof(loc)),
				util_format_size(r->rows[i].size_diff, 1, b1, sizeof(b1)));
		ec = EXIT_THRESHOLD;
	}
	if (!a->has_fail_above_line)
		return ec;
	/* every location, the one with no frame included */
	for (i = 0; i < r->nrows; i++) {
		const struct snap_row *e = &r->rows[i];

		if (e->size_diff <= 0 || (uint64_t)e->size_diff <= a->fail_above_line)
			continue;
		cli_errorf("%s grew by %s, more than --fail-above-line %s",
			   render_row_loc(e, loc, sizeof(loc)),
			   util_format_size(e->size_diff, 1, b1, sizeof(b1)),
			   util_format_size((int64_t)a->fail_above_line, 0, b2, sizeof(b2)));
		ec = EXIT_THRESHOLD;
	}
	return ec;
}

/* "exact" or "sampled every SIZE" into buf. */
static const char *kind_text(const struct snapshot *s, char *buf, size_t cap)
{
	char b[32];

	if (!snapshot_sample_size(s))
		return "exact";
	snprintf(buf, cap, "sampled every %s",
		 util_format_size((int64_t)snapshot_sample_size(s), 0, b, sizeof(b)));
	return buf;
}

/* Two snapshots diff compares: both exact, or sampled alike (estimates
 * of another kind do not subtract).  0, or the exit code (printed). */
static int check_kinds(const struct report_args *a, const struct snapshot *olds,
		       const struct snapshot *news)
{
	char k1[64], k2[64];

	if (snapshot_sample_size(olds) == snapshot_sample_size(news))
		return 0;
	cli_errorf("diff: %s is %s and %s is %s: their figures do not compare",
		   a->files[0], kind_text(olds, k1, sizeof(k1)), a->files[1],
		   kind_text(news, k2, sizeof(k2)));
	return EXIT_TARGET;
}

int cmd_diff(int argc, char **argv)
{
	struct report_args a;
	struct snapshot *olds = NULL, *news = NULL, *own1 = NULL, *own2 = NULL;
	const struct snapshot *vo, *vn;
	struct snap_report r = { 0 };
	struct snap_report_opts ro;
	int ec = 0, rc;

	ec = parse_report(argc, argv, WITH_VIEW | WITH_FILTERS, diff_options, "OLD NEW",
			  "Compare two snapshot files, like tracemalloc's compare_to; "
			  "with --fail-above, a CI leak gate (exit 3).", 2, &a);
	if (ec)
		return ec;
	if (a.format == FMT_COLLAPSED) {
		cli_errorf("diff: --format collapsed is not available for a diff");
		return EXIT_USAGE;
	}
	olds = cli_load_snapshot(a.files[0], &ec);
	if (!olds)
		goto out;
	news = cli_load_snapshot(a.files[1], &ec);
	if (!news)
		goto out;
	ec = check_kinds(&a, olds, news);
	if (!ec)
		ec = apply_what(olds, a.files[0], &a);
	if (!ec)
		ec = apply_what(news, a.files[1], &a);
	if (ec)
		goto out;
	vo = filtered(olds, &a, &own1, &ec);
	vn = vo ? filtered(news, &a, &own2, &ec) : NULL;
	if (!vo || !vn)
		goto out;
	ro = report_opts(&a, news);
	rc = snapshot_report_diff(vn, vo, &ro, &r);
	if (rc < 0) {
		char both[2 * 4096 + 8];

		snprintf(both, sizeof(both), "%s, %s", a.files[0], a.files[1]);
		ec = stats_failed(both, "compare", rc);
		goto out;
	}
	ec = print_report(&a, &r, NULL);
	if (ec)
		goto out;
	ec = check_growth(&a, &r);
out:
	snap_report_fini(&r);
	snapshot_free(own1);
	snapshot_free(own2);
	snapshot_free(olds);
	snapshot_free(news);
	return ec;
}

/* --location FILE:LINE into pick (file: a copy to free); 0 or the exit
 * code. */
static int parse_location(const char *arg, struct snap_pick *pick, char **file)
{
	char *colon, *end;
	unsigned long l;

	*file = strdup(arg);
	colon = *file ? strrchr(*file, ':') : NULL;
	if (!colon) {
		cli_errorf("--location: expected FILE:LINE, not '%s'", arg);
		goto fail;
	}
	*colon = '\0';
	errno = 0;
	l = strtoul(colon + 1, &end, 10);
	if (errno || *end || l > UINT32_MAX) {
		cli_errorf("--location: bad line number in '%s'", arg);
		goto fail;
	}
	pick->file = *file;
	pick->line = (uint32_t)l;
	return 0;
fail:
	free(*file);
	*file = NULL;
	return EXIT_USAGE;
}

int cmd_traceback(int argc, char **argv)
{
	struct report_args a;
	struct snapshot *s = NULL, *own = NULL;
	const struct snapshot *v;
	struct snap_report r = { 0 };
	struct snap_report_opts ro;
	struct snap_pick pick = { 0 };
	char *loc_file = NULL;
	int ec = 0, rc;

	ec = parse_report(argc, argv, WITH_FILTERS, traceback_options, "FILE",
			  "Show the traceback of the Nth largest allocation site, or of "
			  "the largest one at FILE:LINE.", 1, &a);
	if (ec)
		return ec;
	pick.rank = a.rank;
	if (a.location) {
		ec = parse_location(a.location, &pick, &loc_file);
		if (ec)
			return ec;
	}
	v = load_view(a.files[0], &a, &s, &own, &ec);
	if (!v)
		goto out;
	ro = report_opts(&a, s);
	rc = snapshot_report_traceback(v, &pick, &ro, &r);
	if (rc == -ENOENT) {
		if (loc_file)
			cli_errorf("%s: no allocation at %s", a.files[0], a.location);
		else
			cli_errorf("%s: only %zu allocation site%s, no rank %u", a.files[0],
				   r.nkeys, r.nkeys == 1 ? "" : "s", a.rank);
		ec = EXIT_USAGE;
		goto out;
	}
	if (rc < 0) {
		ec = stats_failed(a.files[0], "statistics", rc);
		goto out;
	}
	ec = print_report(&a, &r, snapshot_cmeta(s)->traceback_limit > 1 ? NULL :
			  "note: this snapshot keeps 1 frame per traceback; for deeper ones "
			  "take it with more, e.g.: trmtop snapshot --pid PID --frames 25\n");
out:
	free(loc_file);
	snap_report_fini(&r);
	snapshot_free(own);
	snapshot_free(s);
	return ec;
}

int cmd_export(int argc, char **argv)
{
	struct report_args a;
	struct trm_err err = { 0 };
	struct snapshot *s, *own;
	const struct snapshot *v;
	struct snap_report r = { 0 };
	struct outfile of;
	int ec = 0, rc;

	ec = parse_report(argc, argv, WITH_FILTERS, export_options, "FILE",
			  "Convert a snapshot file to tracemalloc's own dump format "
			  "(Snapshot.load), JSON, or collapsed stacks.", 1, &a);
	if (ec)
		return ec;
	if (a.format == FMT_TEXT) {
		cli_errorf("export: --to is required (tracemalloc, json or collapsed)");
		return EXIT_USAGE;
	}
	v = load_view(a.files[0], &a, &s, &own, &ec);
	if (!v)
		goto out;
	if (a.format == FMT_TRACEMALLOC && snapshot_sample_size(s)) {
		cli_errorf("%s: a sampled snapshot holds estimates per traceback, "
			   "not traces: tracemalloc's format cannot hold it (use "
			   "--to json or collapsed)", a.files[0]);
		ec = EXIT_TARGET;
		goto out;
	}
	ec = top_rows(v, s, &a, &r);
	if (ec)
		goto out;
	/* JSON carries the stored source lines; the others do not */
	ec = outfile_start(&of, a.output, a.format == FMT_JSON ? cli_snapshot_mode(s) : 0666);
	if (ec)
		goto out;
	if (a.format == FMT_TRACEMALLOC)
		rc = snapshot_write_tracemalloc(v, of.f, &err);
	else
		rc = render_report(of.f, render_format(a.format), &r);
	ec = outfile_finish(&of, rc, &err);
out:
	snap_report_fini(&r);
	snapshot_free(own);
	snapshot_free(s);
	return ec;
}

int cmd_import(int argc, char **argv)
{
	struct report_args a;
	struct snapshot *s;
	int ec = 0;

	ec = parse_report(argc, argv, 0, import_options, "DUMP",
			  "Convert a tracemalloc dump (Snapshot.dump) into a .trm file.",
			  1, &a);
	if (ec)
		return ec;
	if (!a.output) {
		cli_errorf("import: -o FILE.trm is required");
		return EXIT_USAGE;
	}
	s = cli_load_snapshot(a.files[0], &ec);
	if (!s)
		return ec;
	ec = cli_save_snapshot(s, a.output);
	snapshot_free(s);
	return ec;
}
