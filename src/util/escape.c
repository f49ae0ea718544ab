/* escape.c - the escaping of text that came from a target (file names,
 * source lines, messages): the one escaper for every text sink (a
 * terminal, a text file, collapsed stacks, a future ncurses view), the one
 * JSON string writer (util.h, "Escaping"), and the strict UTF-8 decoder
 * both share. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "trmtop/util.h"

size_t util_utf8_seq(const void *s, size_t len, uint32_t *cp)
{
	const unsigned char *p = s;
	unsigned c, lo = 0x80, hi = 0xBF;
	size_t need, j;
	uint32_t v;

	if (!len)
		return 0;
	c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		v = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0; /* no overlong form */
		else if (c == 0xED)
			hi = 0x9F; /* no surrogate */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		v = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F; /* nothing above U+10FFFF */
	} else {
		return 0;
	}
	if (len <= need)
		return 0;
	for (j = 1; j <= need; j++) {
		if (p[j] < lo || p[j] > hi)
			return 0;
		lo = 0x80;
		hi = 0xBF;
		v = (v << 6) | (p[j] & 0x3F);
	}
	*cp = v;
	return need + 1;
}

/* Bidirectional formatting characters: they reorder what the terminal
 * shows around them ("Trojan Source": a name whose text runs backwards),
 * so they are escaped like controls.  LRM, RLM, ALM, the embeddings and
 * overrides (U+202A..U+202E) and the isolates (U+2066..U+2069). */
static int is_bidi(uint32_t cp)
{
	return cp == 0x200E || cp == 0x200F || cp == 0x061C ||
	       (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The next unit of s[*i..len): either a run of bytes kept as they are
 * (returned through *run, its length the result) or one escape written
 * into esc (NUL-terminated, *run = NULL).  Advances *i. */
static size_t next_unit(const unsigned char *p, size_t len, size_t *i,
			unsigned flags, const char **run, char esc[8])
{
	static const char hex[] = "0123456789abcdef";
	size_t k = *i, n;
	uint32_t cp;

	*run = (const char *)p + k;
	while (k < len) {
		unsigned c = p[k];

		if (c >= 0x20 && c < 0x7f) {
			if ((flags & UTIL_ESC_COLLAPSED) &&
			    (c == ';' || c == ' ' || c == '\\'))
				break;
			k++;
			continue;
		}
		if (c < 0x80)
			break; /* C0 or DEL */
		n = util_utf8_seq(p + k, len - k, &cp);
		if (!n || cp < 0xA0 || is_bidi(cp))
			break; /* an invalid byte, C1, or bidi */
		k += n;
	}
	if (k > *i) {
		n = k - *i;
		*i = k;
		return n;
	}
	/* p[k] starts something to escape */
	*run = NULL;
	n = util_utf8_seq(p + k, len - k, &cp);
	if (n > 1) { /* C1 (U+0080..U+009F) or bidi: \uXXXX */
		esc[0] = '\\';
		esc[1] = 'u';
		esc[2] = hex[(cp >> 12) & 15];
		esc[3] = hex[(cp >> 8) & 15];
		esc[4] = hex[(cp >> 4) & 15];
		esc[5] = hex[cp & 15];
		esc[6] = '\0';
		*i = k + n;
		return 6;
	}
	esc[0] = '\\';
	esc[1] = 'x';
	esc[2] = hex[p[k] >> 4];
	esc[3] = hex[p[k] & 15];
	esc[4] = '\0';
	*i = k + 1;
	return 4;
}

size_t util_escape(char *out, size_t cap, const void *s, size_t len,
		   unsigned flags)
{
	const unsigned char *p = s;
	size_t i = 0, total = 0, used = 0;
	int full = 0;

	while (p && i < len) {
		const char *run;
		char esc[8];
		size_t at = i, n = next_unit(p, len, &i, flags, &run, esc);

		if (!full && cap && used + n < cap) {
			memcpy(out + used, run ? run : esc, n);
			used += n;
		} else if (!full && cap && run) {
			/* a run is cut only between two of its sequences */
			size_t k = at, end = at + n;

			while (k < end) {
				uint32_t cp;
				size_t m = util_utf8_seq(p + k, end - k, &cp);

				if (used + m >= cap)
					break;
				memcpy(out + used, p + k, m);
				used += m;
				k += m;
			}
			full = 1;
		} else {
			full = 1;
		}
		total += n;
	}
	if (cap)
		out[used] = '\0';
	return total;
}

int util_fputs_escaped(FILE *f, const void *s, size_t len, unsigned flags)
{
	const unsigned char *p = s;
	size_t i = 0;

	while (p && i < len) {
		const char *run;
		char esc[8];
		size_t n = next_unit(p, len, &i, flags, &run, esc);

		if (fwrite(run ? run : esc, 1, n, f) != n)
			return -1;
	}
	return 0;
}

int util_fprint_escaped(FILE *f, const char *s)
{
	return s ? util_fputs_escaped(f, s, strlen(s), 0) : 0;
}

/* fputs that reports a failure as -1. */
static int put(FILE *f, const char *s)
{
	return fputs(s, f) < 0 ? -1 : 0;
}

int util_fputs_json(FILE *f, const void *s, size_t len)
{
	const unsigned char *p = s;
	size_t i = 0;
	int rc = fputc('"', f) == EOF ? -1 : 0;

	while (p && i < len) {
		uint32_t cp;
		size_t n = util_utf8_seq(p + i, len - i, &cp);

		if (n == 0) /* a byte of no valid sequence: Python's name for it */
			rc |= fprintf(f, "\\u%04x", 0xDC00u + p[i]) < 0 ? -1 : 0;
		else if (cp == '"')
			rc |= put(f, "\\\"");
		else if (cp == '\\')
			rc |= put(f, "\\\\");
		else if (cp == '\n')
			rc |= put(f, "\\n");
		else if (cp == '\t')
			rc |= put(f, "\\t");
		else if (cp == '\r')
			rc |= put(f, "\\r");
		else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
			rc |= fprintf(f, "\\u%04x", cp) < 0 ? -1 : 0; /* C0, DEL, C1 */
		else if (fwrite(p + i, 1, n, f) != n)
			rc = -1;
		i += n ? n : 1;
	}
	if (fputc('"', f) == EOF)
		rc = -1;
	return rc;
}
