/* tui.c - the terminal view of the live view (ncursesw): the header
 * (target, memory, sparklines of traced memory and RSS, refresh, the
 * native-memory line), a status line, the table of rows (selectable,
 * scrollable), and three overlays: the traceback of the selected row, the
 * filter prompt and the help.  Keys as man trmtop lists them; the mouse
 * wheel scrolls; a resize redraws; colours unless NO_COLOR is set or the
 * terminal has none; Unicode blocks for the sparklines where the locale
 * is UTF-8, ASCII elsewhere.
 *
 * Every text from the target is escaped (view.c) before it is drawn, and
 * drawn cut to the columns it has (wcwidth), never wrapped. */
#include "config.h"

#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include <curses.h>

#include "live_int.h"
#include "trmtop/render.h"
#include "trmtop/util.h"

enum mode { MODE_TABLE, MODE_TRACEBACK, MODE_FILTER, MODE_HELP };

enum pair { PAIR_HEAD = 1, PAIR_SUSPECT, PAIR_WARN, PAIR_TITLE };

#define HEAD_ROWS 7  /* header lines, sparklines, status, column titles */
#define TREND_CELLS 8

struct tui {
	int utf8, color;
	enum mode mode;
	size_t sel, top;        /* selected row and first row shown */
	size_t nrows;           /* rows of the last view */
	char filter[256];       /* the prompt's text */
	/* the traceback overlay: lines copied when it opens */
	char **tb;
	size_t ntb, tbcap, tb_top;
};

static const uint64_t intervals[] = { 100, 250, 500, 1000, 2000, 5000, 10000,
				      30000, 60000, 300000 };

/* Draw s (valid UTF-8) at y, x, cut to cols columns. */
static void put(int y, int x, const char *s, int cols, attr_t attr)
{
	wchar_t w[1024];
	size_t n, i;
	int used = 0;

	if (cols <= 0 || y >= LINES)
		return;
	n = mbstowcs(w, s, sizeof(w) / sizeof(w[0]) - 1);
	if (n == (size_t)-1) {
		/* not in this locale's charset (LANG=C): ASCII, one '?' a
		 * character else (s is escaped UTF-8).  Not the bytes:
		 * ncurses would draw each as two cells ("~W") past cols,
		 * wrapping onto the next line. */
		char a[1024];
		size_t o = 0;

		for (; *s && o < (size_t)cols && o + 1 < sizeof(a); s++) {
			unsigned char c = (unsigned char)*s;

			if (c < 0x80)
				a[o++] = (char)c;
			else if ((c & 0xc0) != 0x80)
				a[o++] = '?';
		}
		a[o] = '\0';
		attron(attr);
		mvaddnstr(y, x, a, cols);
		attroff(attr);
		return;
	}
	w[n] = L'\0';
	for (i = 0; i < n; i++) {
		int cw = wcwidth(w[i]);

		if (cw < 0)
			w[i] = L'?', cw = 1;
		if (used + cw > cols)
			break;
		used += cw;
	}
	attron(attr);
	mvaddnwstr(y, x, w, (int)i);
	attroff(attr);
}

static attr_t pair(struct tui *t, enum pair p)
{
	return t->color ? COLOR_PAIR(p) : 0;
}

static void tb_free(struct tui *t)
{
	size_t i;

	for (i = 0; i < t->ntb; i++)
		free(t->tb[i]);
	free(t->tb);
	t->tb = NULL;
	t->ntb = t->tbcap = t->tb_top = 0;
}

static void tb_add(struct tui *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void tb_add(struct tui *t, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (UTIL_GROW(t->tb, t->tbcap, t->ntb + 1, 16) < 0)
		return;
	t->tb[t->ntb] = strdup(line);
	if (t->tb[t->ntb])
		t->ntb++;
}

/* Open the traceback overlay on row r: its frames, oldest call first,
 * with their source lines (copied: the rows change at each refresh). */
static void tb_open(struct tui *t, const struct live_state *st, const struct live_row *r)
{
	const struct snap_row *row = r->row;
	char esc[1024], src[1024], head[256], sz[32], loc[1024], pid[32];
	uint32_t i;

	snprintf(pid, sizeof(pid), "%d", (int)st->pid);

	tb_free(t);
	snprintf(loc, sizeof(loc), "%s", render_row_loc(row, esc, sizeof(esc)));
	snprintf(head, sizeof(head), "%zu: size %s, count %llu", row->rank,
		 util_format_size((int64_t)row->size, 0, sz, sizeof(sz)),
		 (unsigned long long)row->count);
	tb_add(t, "Traceback of #%s  %s", head, loc);
	tb_add(t, "%s", "");
	for (i = 0; i < row->nframe; i++) {
		const struct snap_loc *l = &row->frames[i];
		char no[32];

		util_escape(esc, sizeof(esc), l->filename, l->filename_len, 0);
		snprintf(no, sizeof(no), "%u", l->lineno);
		tb_add(t, "  File \"%s\", line %s", esc, no);
		if (row->sources && row->sources[i]) {
			util_escape(src, sizeof(src), row->sources[i],
				    strlen(row->sources[i]), 0);
			tb_add(t, "    %s", src);
		}
	}
	if (row->nframe == 0)
		tb_add(t, "  (no frame)");
	if (st->traceback_limit <= 1) {
		tb_add(t, "%s", "");
		if (st->tracing == LIVE_TRACING_VIEW)
			tb_add(t, "The traceback limit is 1 (one frame).  For deeper "
			       "tracebacks, quit and run trmtop --pid %s --frames 25",
			       pid);
		else
			tb_add(t, "The traceback limit is 1, as the %s started tracing: "
			       "deeper tracebacks need tracing restarted with more frames "
			       "(trmtop stop, then trmtop --pid %s --frames 25)",
			       st->tracing == LIVE_TRACING_APP ? "application"
			       : "earlier trmtop start", pid);
	}
	tb_add(t, "%s", "");
	tb_add(t, "Esc, Enter or q: back to the table");
	t->mode = MODE_TRACEBACK;
}

static const char *sort_name(enum live_sort s)
{
	switch (s) {
	case LIVE_SORT_DSIZE:
		return "size difference";
	case LIVE_SORT_COUNT:
		return "count";
	case LIVE_SORT_GROWTH:
		return "growth";
	default:
		return "size";
	}
}

static void draw_sparks(struct tui *t, struct live_state *st, int y)
{
	struct live_sample smp[LIVE_SAMPLES];
	uint64_t tr[LIVE_SAMPLES], rss[LIVE_SAMPLES];
	char a[LIVE_SAMPLES * 3 + 1], b[LIVE_SAMPLES * 3 + 1], line[2 * sizeof(a) + 64];
	int w = (COLS - 20) / 2;
	size_t n, i;

	if (w < 4)
		return;
	if (w > (int)LIVE_SAMPLES)
		w = LIVE_SAMPLES;
	n = live_model_samples(st->model, smp, (size_t)w);
	for (i = 0; i < n; i++) {
		tr[i] = smp[i].traced;
		rss[i] = smp[i].rss;
	}
	live_sparkline(tr, n, t->utf8, a, sizeof(a));
	live_sparkline(rss, n, t->utf8, b, sizeof(b));
	snprintf(line, sizeof(line), "%s %-*s  RSS %s",
		 st->sample_size ? "in use" : "traced", w, a, b);
	put(y, 0, line, COLS, 0);
}

static void draw_status(struct tui *t, struct live_state *st, int y)
{
	char line[1024], n1[32], n2[32];

	if (t->mode == MODE_FILTER) {
		snprintf(line, sizeof(line), "filter (file name glob, Enter to apply, "
			 "Esc to clear): %s", t->filter);
		put(y, 0, line, COLS, A_BOLD);
		return;
	}
	if (st->quit && st->msg[0]) { /* quitting: said over the progress */
		put(y, 0, st->msg, COLS, A_BOLD);
		return;
	}
	if (st->in_flight && (live_model_nrefresh(st->model) == 0 || st->total > 20000)) {
		if (st->total) {
			snprintf(n1, sizeof(n1), "%llu", (unsigned long long)st->total);
			snprintf(n2, sizeof(n2), "%llu", (unsigned long long)st->got);
			snprintf(line, sizeof(line), "snapshot of %s blocks: %s received...",
				 n1, n2);
		} else {
			snprintf(line, sizeof(line), "taking a snapshot of pid %d...",
				 (int)st->pid);
		}
		put(y, 0, line, COLS, A_BOLD);
		return;
	}
	if (st->msg[0]) {
		put(y, 0, st->msg, COLS, A_BOLD);
		return;
	}
	snprintf(line, sizeof(line), "sort: %s  group: %s%s%s%s  h: help  q: quit",
		 sort_name(st->sort), snap_key_name(live_model_key(st->model)),
		 st->suspects_only ? "  leak suspects only" : "",
		 st->glob[0] ? "  filter: " : "", st->glob);
	put(y, 0, line, COLS, 0);
}

/* The table's columns before the location; the location keeps at least
 * LOC_MIN columns: narrow terminals drop the optional columns, in the
 * order of `drop`, first. */
enum col { COL_RANK, COL_FLAG, COL_SIZE, COL_DSIZE, COL_COUNT, COL_DCOUNT,
	   COL_AVG, COL_RATE, COL_TREND, NCOLS };

#define LOC_MIN 32

static const int col_width[NCOLS] = { 4, 1, 9, 10, 8, 8, 9, 13, TREND_CELLS };
static const enum col drop[] = { COL_TREND, COL_AVG, COL_DCOUNT, COL_COUNT,
				 COL_RATE, COL_DSIZE };

/* Which columns fit (shown[c]); returns the location's first column. */
static int layout(int shown[NCOLS])
{
	int c, x = 0;
	size_t d = 0;

	for (c = 0; c < NCOLS; c++) {
		shown[c] = 1;
		x += col_width[c] + 1;
	}
	while (COLS - x < LOC_MIN && d < sizeof(drop) / sizeof(drop[0])) {
		shown[drop[d]] = 0;
		x -= col_width[drop[d]] + 1;
		d++;
	}
	return x;
}

/* Draw cells[c] of the shown columns on line y (right-aligned, the trend
 * left-aligned); returns the next column. */
static int draw_cells(int y, const int shown[NCOLS], const char *const cells[NCOLS],
		      attr_t at, attr_t flag_at)
{
	int c, x = 0;

	for (c = 0; c < NCOLS; c++) {
		char cell[64];

		if (!shown[c])
			continue;
		if (c == COL_TREND)
			snprintf(cell, sizeof(cell), "%s", cells[c]);
		else
			snprintf(cell, sizeof(cell), "%*s", col_width[c] +
				 /* the Greek letter is two bytes */
				 (int)(strlen(cells[c]) - mbstowcs(NULL, cells[c], 0)),
				 cells[c]);
		put(y, x, cell, col_width[c], c == COL_FLAG ? flag_at : at);
		x += col_width[c] + 1;
	}
	return x;
}

static void draw_table(struct tui *t, struct live_state *st)
{
	static const char *const titles[NCOLS] = { "#", "!", "SIZE", "\u0394SIZE",
		"COUNT", "\u0394COUNT", "AVG", "GROWTH", "TREND" };
	static const char *const titles_ascii[NCOLS] = { "#", "!", "SIZE", "DSIZE",
		"COUNT", "DCOUNT", "AVG", "GROWTH", "TREND" };
	const struct live_row *const *rows;
	const char *const *names = t->utf8 ? titles : titles_ascii;
	const char *heads[NCOLS];
	char marked[NCOLS][16];
	struct live_native nat;
	char line[2048];
	int y, h, x, k, shown[NCOLS], body = LINES - HEAD_ROWS;
	size_t n, i;

	for (h = 0; h < 2; h++) {
		live_header_line(st, h, line, sizeof(line));
		put(h, 0, line, COLS, h == 0 ? pair(t, PAIR_HEAD) | A_BOLD : 0);
	}
	draw_sparks(t, st, 2);
	live_header_line(st, 2, line, sizeof(line));
	put(3, 0, line, COLS, st->effective_ms > st->interval_ms ? pair(t, PAIR_WARN) : 0);
	live_header_line(st, 3, line, sizeof(line));
	live_model_native(st->model, &nat);
	put(4, 0, line, COLS, nat.verdict == LIVE_NATIVE_UNTRACED
	    ? pair(t, PAIR_WARN) | A_BOLD : 0);
	draw_status(t, st, 5);
	layout(shown);
	attron(A_REVERSE);
	mvhline(6, 0, ' ', COLS);
	attroff(A_REVERSE);
	/* sampled: the estimated columns' titles say so */
	for (k = 0; k < NCOLS; k++) {
		heads[k] = names[k];
		if (st->sample_size && k >= COL_SIZE && k <= COL_RATE) {
			snprintf(marked[k], sizeof(marked[k]), "%s%s",
				 t->utf8 ? "\u2248" : "~", names[k]);
			heads[k] = marked[k];
		}
	}
	x = draw_cells(6, shown, heads, A_REVERSE, A_REVERSE);
	put(6, x, "LOCATION", COLS - x, A_REVERSE);
	if (!live_model_last(st->model))
		return;
	n = live_model_view(st->model, st->sort, st->suspects_only,
			    st->glob[0] ? st->glob : NULL, &rows);
	t->nrows = n;
	if (n == 0) {
		put(HEAD_ROWS, 0, st->suspects_only ? "no leak suspect (yet): rows that "
		    "grew in most of at least 3 refreshes" : "no rows", COLS, 0);
		return;
	}
	if (t->sel >= n)
		t->sel = n - 1;
	if (body < 1)
		return;
	if (t->sel < t->top)
		t->top = t->sel;
	if (t->sel >= t->top + (size_t)body)
		t->top = t->sel - (size_t)body + 1;
	if (t->top > n - 1)
		t->top = 0;
	for (i = t->top, y = HEAD_ROWS; i < n && y < LINES; i++, y++) {
		struct live_cells c;
		char trend[TREND_CELLS * 3 + 1], loc[1100];
		const struct live_row *r = rows[i];
		unsigned first = r->nhist > TREND_CELLS ? r->nhist - TREND_CELLS : 0;
		const char *cells[NCOLS];
		attr_t at = i == t->sel ? A_REVERSE : 0;
		int room, locw, len;

		live_row_cells(r, &c);
		live_sparkline(r->hist + first, r->nhist - first, t->utf8, trend,
			       sizeof(trend));
		cells[COL_RANK] = c.rank;
		cells[COL_FLAG] = r->suspect ? "!" : " ";
		cells[COL_SIZE] = c.size;
		cells[COL_DSIZE] = c.dsize;
		cells[COL_COUNT] = c.count;
		cells[COL_DCOUNT] = c.dcount;
		cells[COL_AVG] = c.avg;
		cells[COL_RATE] = c.rate;
		cells[COL_TREND] = trend;
		if (at) {
			attron(at);
			mvhline(y, 0, ' ', COLS);
			attroff(at);
		}
		x = draw_cells(y, shown, cells, at, at | A_BOLD |
			       (r->suspect ? pair(t, PAIR_SUSPECT) : 0));
		room = COLS - x;
		if (room <= 0)
			continue;
		len = (int)strlen(c.loc);
		locw = len < room ? len : room;
		live_shorten_left(c.loc, (size_t)locw, loc, sizeof(loc));
		put(y, x, loc, room, at | A_BOLD);
		room -= (int)strlen(loc) + 2;
		if (room > 0 && c.source[0])
			put(y, x + (int)strlen(loc) + 2, c.source, room, at);
	}
}

static void draw_lines(char *const *lines, size_t n, size_t top, const char *title)
{
	size_t i;
	int y = 0;

	if (title)
		put(y++, 0, title, COLS, A_REVERSE);
	for (i = top; i < n && y < LINES; i++, y++)
		put(y, 0, lines[i], COLS, 0);
}

static char *const help[] = {
	"trmtop live view: keys",
	"",
	"  s d c g     sort by size / size difference since the baseline / count / growth rate",
	"  l f t       group by line / file name / traceback",
	"  L           leak suspects only (rows that grew in most refreshes), by growth rate",
	"  b           baseline = now: differences start again from 0",
	"  /           filter rows by file name glob (Enter applies, Esc clears)",
	"  Esc         clear the filter",
	"  Enter       traceback of the selected row, with source lines",
	"  p           pause refreshing (p again to resume)",
	"  + -         longer / shorter refresh interval",
	"  w           write the snapshot shown to a .trm file in the current directory",
	"  Up Down PgUp PgDn Home End, mouse wheel: move and scroll",
	"  h ?         this help",
	"  q           quit (tracing is left as the view found it); with a",
	"              refresh in flight once it ends, q again: at once",
	"",
	"Columns: # rank by size; ! leak suspect; SIZE and COUNT now; \u0394SIZE and",
	"\u0394COUNT since the baseline; AVG block; GROWTH per minute over the last",
	"refreshes; TREND the size over them; LOCATION file:line and source line.",
	"",
	"Any key: back",
};

static void draw(void *arg, struct live_state *st)
{
	struct tui *t = arg;

	erase();
	switch (t->mode) {
	case MODE_TRACEBACK:
		draw_lines(t->tb, t->ntb, t->tb_top, NULL);
		break;
	case MODE_HELP:
		draw_lines(help, sizeof(help) / sizeof(help[0]), 0, NULL);
		break;
	default:
		draw_table(t, st);
		break;
	}
	refresh();
}

static void interval_step(struct live_state *st, int up)
{
	size_t i, n = sizeof(intervals) / sizeof(intervals[0]);

	if (up) {
		for (i = 0; i < n; i++)
			if (intervals[i] > st->interval_ms) {
				st->interval_ms = intervals[i];
				break;
			}
	} else {
		for (i = n; i-- > 0;)
			if (intervals[i] < st->interval_ms) {
				st->interval_ms = intervals[i];
				break;
			}
	}
	snprintf(st->msg, sizeof(st->msg), "refresh interval %s",
		 live_format_ms(st->interval_ms, (char[32]){ 0 }, 32));
}

static void set_key(struct live_state *st, enum snap_key key)
{
	int rc = live_model_set_key(st->model, key);

	if (rc < 0)
		snprintf(st->msg, sizeof(st->msg), "regrouping failed: %s", strerror(-rc));
	else
		snprintf(st->msg, sizeof(st->msg), "grouped by %s", snap_key_name(key));
}

static void move_sel(struct tui *t, long by)
{
	long v = (long)t->sel + by;

	if (v < 0 || t->nrows == 0)
		v = 0;
	else if ((size_t)v >= t->nrows)
		v = (long)t->nrows - 1;
	t->sel = (size_t)v;
}

static void key_table(struct tui *t, struct live_state *st, int ch)
{
	const struct live_row *const *rows;
	long page = LINES - HEAD_ROWS > 1 ? LINES - HEAD_ROWS - 1 : 1;
	MEVENT ev;
	size_t n;

	st->msg[0] = '\0';
	switch (ch) {
	case 'q': case 'Q':
		st->quit++;
		break;
	case 's': st->sort = LIVE_SORT_SIZE; t->sel = 0; break;
	case 'd': st->sort = LIVE_SORT_DSIZE; t->sel = 0; break;
	case 'c': st->sort = LIVE_SORT_COUNT; t->sel = 0; break;
	case 'g': st->sort = LIVE_SORT_GROWTH; t->sel = 0; break;
	case 'l': set_key(st, SNAP_KEY_LINENO); t->sel = 0; break;
	case 'f': set_key(st, SNAP_KEY_FILENAME); t->sel = 0; break;
	case 't': set_key(st, SNAP_KEY_TRACEBACK); t->sel = 0; break;
	case 'L':
		st->suspects_only = !st->suspects_only;
		t->sel = 0;
		break;
	case 'b':
		if (live_model_set_baseline(st->model) == 0)
			snprintf(st->msg, sizeof(st->msg), "baseline set: differences "
				 "start again from now");
		break;
	case '/':
		snprintf(t->filter, sizeof(t->filter), "%s", st->glob);
		t->mode = MODE_FILTER;
		break;
	case 27: /* Esc */
		st->glob[0] = '\0';
		break;
	case '\n': case '\r': case KEY_ENTER:
		n = live_model_view(st->model, st->sort, st->suspects_only,
				    st->glob[0] ? st->glob : NULL, &rows);
		if (t->sel < n)
			tb_open(t, st, rows[t->sel]);
		break;
	case 'p':
		st->paused = !st->paused;
		snprintf(st->msg, sizeof(st->msg), st->paused ? "paused (p resumes)"
			 : "resumed");
		break;
	case '+': case '=':
		interval_step(st, 1);
		break;
	case '-': case '_':
		interval_step(st, 0);
		break;
	case 'w':
		st->want_write = 1;
		break;
	case 'h': case '?':
		t->mode = MODE_HELP;
		break;
	case KEY_UP: move_sel(t, -1); break;
	case KEY_DOWN: move_sel(t, 1); break;
	case KEY_PPAGE: move_sel(t, -page); break;
	case KEY_NPAGE: move_sel(t, page); break;
	case KEY_HOME: t->sel = 0; break;
	case KEY_END: move_sel(t, (long)t->nrows); break;
	case KEY_MOUSE:
		if (getmouse(&ev) == OK) {
			if (ev.bstate & BUTTON4_PRESSED)
				move_sel(t, -3);
#ifdef BUTTON5_PRESSED
			else if (ev.bstate & BUTTON5_PRESSED)
				move_sel(t, 3);
#endif
		}
		break;
	default:
		break;
	}
}

static void key_filter(struct tui *t, struct live_state *st, int ch)
{
	size_t len = strlen(t->filter);

	if (ch == 27) {
		st->glob[0] = '\0';
		t->mode = MODE_TABLE;
	} else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
		snprintf(st->glob, sizeof(st->glob), "%s", t->filter);
		t->sel = 0;
		t->mode = MODE_TABLE;
	} else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
		if (len)
			t->filter[len - 1] = '\0';
	} else if (ch >= 32 && ch < 127 && len + 1 < sizeof(t->filter)) {
		t->filter[len] = (char)ch;
		t->filter[len + 1] = '\0';
	}
}

static void key_traceback(struct tui *t, int ch)
{
	long page = LINES > 2 ? LINES - 1 : 1;

	switch (ch) {
	case KEY_UP:
		if (t->tb_top)
			t->tb_top--;
		break;
	case KEY_DOWN:
		if (t->tb_top + 1 < t->ntb)
			t->tb_top++;
		break;
	case KEY_PPAGE:
		t->tb_top = t->tb_top > (size_t)page ? t->tb_top - (size_t)page : 0;
		break;
	case KEY_NPAGE:
		t->tb_top += (size_t)page;
		if (t->tb_top >= t->ntb)
			t->tb_top = t->ntb ? t->ntb - 1 : 0;
		break;
	case KEY_HOME:
		t->tb_top = 0;
		break;
	case 27: case 'q': case '\n': case '\r': case KEY_ENTER: case KEY_LEFT:
	case KEY_BACKSPACE:
		tb_free(t);
		t->mode = MODE_TABLE;
		break;
	default:
		break;
	}
}

static void tui_input(void *arg, struct live_state *st)
{
	struct tui *t = arg;
	int ch;

	while ((ch = getch()) != ERR) {
		if (ch == KEY_RESIZE)
			continue; /* drawn after the input */
		switch (t->mode) {
		case MODE_HELP:
			t->mode = MODE_TABLE;
			break;
		case MODE_FILTER:
			key_filter(t, st, ch);
			break;
		case MODE_TRACEBACK:
			key_traceback(t, ch);
			break;
		default:
			key_table(t, st, ch);
			break;
		}
		if (st->quit)
			break;
	}
}

static int tui_begin(void *arg, struct live_state *st)
{
	struct tui *t = arg;
	const char *cs;

	(void)st;
	setlocale(LC_ALL, "");
	cs = nl_langinfo(CODESET);
	t->utf8 = cs && strcmp(cs, "UTF-8") == 0;
	/* not initscr: it exits the process when the terminal is unknown */
	if (!newterm(NULL, stdout, stdin))
		return -1;
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	mousemask(BUTTON4_PRESSED
#ifdef BUTTON5_PRESSED
		  | BUTTON5_PRESSED
#endif
		  , NULL);
	if (has_colors() && !getenv("NO_COLOR")) {
		t->color = 1;
		start_color();
		use_default_colors();
		init_pair(PAIR_HEAD, COLOR_CYAN, -1);
		init_pair(PAIR_SUSPECT, COLOR_RED, -1);
		init_pair(PAIR_WARN, COLOR_YELLOW, -1);
		init_pair(PAIR_TITLE, COLOR_GREEN, -1);
	}
	draw(t, st);
	return 0;
}

static int tui_fd(void *arg)
{
	(void)arg;
	return STDIN_FILENO;
}

static int tui_refresh(void *arg, struct live_state *st)
{
	draw(arg, st);
	return 0;
}

static void tui_end(void *arg, struct live_state *st)
{
	struct tui *t = arg;

	(void)st;
	endwin();
	tb_free(t);
	free(t);
}

int live_sink_tui(struct live_sink *sink, struct trm_err *err)
{
	struct tui *t = calloc(1, sizeof(*t));

	if (!t)
		return trm_err_set(err, -ENOMEM, "out of memory");
	sink->begin = tui_begin;
	sink->fd = tui_fd;
	sink->input = tui_input;
	sink->refresh = tui_refresh;
	sink->progress = draw;
	sink->draw = draw;
	sink->end = tui_end;
	sink->arg = t;
	return 0;
}
