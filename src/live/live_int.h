/* live_int.h - shared by the parts of src/live/: the text of the header
 * lines and of a row's cells (view.c), for the batch text sink and the
 * terminal view. */
#ifndef TRMTOP_LIVE_INT_H
#define TRMTOP_LIVE_INT_H

#include "trmtop/live.h"

#define LIVE_HEADER_LINES 4 /* target, memory, refresh, native memory */

const char *live_tracing_name(enum live_tracing t);
const char *live_format_ms(uint64_t ms, char *buf, size_t cap);

/* Header line 0..LIVE_HEADER_LINES-1 as text (escaped) into buf. */
void live_header_line(const struct live_state *st, int line, char *buf,
		      size_t cap);

struct live_cells {
	char rank[24], size[32], dsize[32], count[24], dcount[24], avg[32];
	char rate[48];
	char loc[1024];    /* FILE:LINE, escaped (render_row_loc) */
	char source[512];  /* escaped; "" for none */
};

void live_row_cells(const struct live_row *r, struct live_cells *c);

/* loc cut from the left to width columns (bytes of an escaped text). */
const char *live_shorten_left(const char *loc, size_t width, char *buf,
			      size_t cap);

/* Rows the batch sinks show. */
#define LIVE_BATCH_ROWS 20

#endif
