/* pyframes.c - the Python stack of the thread that holds the GIL, read for
 * the sampler (docs/DESIGN.md §4.8) without creating an object or calling
 * into the interpreter.
 *
 * On 3.11-3.14 it reads the interpreter's own frames (_PyInterpreterFrame)
 * as tracemalloc's traceback_get_frames() does, in C with the GIL held:
 * the thread state's current frame (3.11/3.12 tstate->cframe->
 * current_frame, 3.13+ tstate->current_frame), then for each frame its
 * code object (3.11/3.12 f_code, 3.13 f_executable, 3.14 f_executable as
 * a tagged _PyStackRef), previous, the instruction pointer (3.11/3.12
 * prev_instr, 3.13+ instr_ptr) and owner.  Frames owned by the C stack or
 * the interpreter (3.12+ entry frames, 3.14 FRAME_OWNED_BY_INTERPRETER)
 * and incomplete frames (not a generator's, before the code's first
 * traceable instruction) are skipped.  The line is
 * PyCode_Addr2Line(code, lasti * sizeof(_Py_CODEUNIT)), as the
 * interpreter computes it; the filename is co_filename, borrowed.
 *
 * Offsets: on 3.13+ read once, at start, from the running interpreter's
 * _Py_DebugOffsets (the first member of _PyRuntime, the table PEP 768 and
 * remote debuggers read: src/inject/pep768.c); only the table's layout is
 * per minor version.  On 3.11 and 3.12 they are constants of that minor
 * version (offsetof over its headers; the same in 3.11.2 and 3.11.7, and
 * these structures did not change within 3.11 or 3.12).  Either way they
 * are checked against what start can see (PyCode_Type's basic and item
 * size, the calling thread's frame-less thread state), and an unexpected
 * version or a failed check leaves the frame-API walk of sample.c.
 * A walk stops at anything unexpected (a code object that is not one, an
 * instruction pointer outside its code, too many frames skipped).
 */
#include "config.h"

#include <string.h>

#include "agent_int.h"

/* 3.11+ (its absence: 3.8-3.10) */
extern const unsigned long Py_Version __attribute__((weak));
/* 3.13+: its first member is _Py_DebugOffsets */
extern const char _PyRuntime[] __attribute__((weak));
/* Not in the limited API; stable since 3.x, allocate nothing. */
extern PyTypeObject PyCode_Type;
int PyCode_Addr2Line(PyObject *code, int addrq);

#define OWNER_GENERATOR 1 /* FRAME_OWNED_BY_GENERATOR, 3.11-3.14 */
#define OWNER_NOT_PY 3    /* 3.12/3.13 CSTACK, 3.14 INTERPRETER and CSTACK;
			     3.11 has no owner past 2 */
#define CODEUNIT 2        /* sizeof(_Py_CODEUNIT) */
/* _co_firsttraceable is an int 16 bytes before co_code_adaptive (then
 * void *co_extra) in 3.11-3.14 GIL builds */
#define FIRSTTRACEABLE_BACK 16

struct layout {
	size_t ts_cframe;  /* PyThreadState.cframe (3.11/3.12), or 0 */
	size_t ts_frame;   /* _PyCFrame.current_frame, or (3.13+)
			      PyThreadState.current_frame */
	size_t ts_root;    /* PyThreadState.root_cframe (3.11/3.12) */
	size_t fr_code, fr_previous, fr_instr, fr_owner;
	size_t co_filename, co_code;
	uintptr_t code_mask; /* clears a _PyStackRef's tag (3.14) */
};

static struct layout lay;
static int mode = -1; /* AGENT_FRAMES_*, -1 before agent_frames_init */

/* offsetof over each version's headers (x86_64 and aarch64 alike: LP64) */
static const struct layout lay_311 = {
	.ts_cframe = 56, .ts_frame = 8, .ts_root = 336,
	.fr_code = 32, .fr_previous = 48, .fr_instr = 56, .fr_owner = 69,
	.co_filename = 112, .co_code = 184, .code_mask = ~(uintptr_t)0,
};
static const struct layout lay_312 = {
	.ts_cframe = 56, .ts_frame = 0, .ts_root = 272,
	.fr_code = 0, .fr_previous = 8, .fr_instr = 56, .fr_owner = 70,
	.co_filename = 112, .co_code = 192, .code_mask = ~(uintptr_t)0,
};

/* Where the fields used here sit in _Py_DebugOffsets (every field a
 * uint64_t): its 3.13 and 3.14 layouts, Include/internal/
 * pycore_runtime.h (3.13) and pycore_debug_offsets.h (3.14). */
struct dbg_pos {
	size_t ts_size, ts_frame;
	size_t fr_size, fr_previous, fr_executable, fr_instr, fr_owner;
	size_t co_size, co_filename, co_code;
};
static const struct dbg_pos dbg_313 = {
	.ts_size = 152, .ts_frame = 184, .fr_size = 224, .fr_previous = 232,
	.fr_executable = 240, .fr_instr = 248, .fr_owner = 264,
	.co_size = 272, .co_filename = 280, .co_code = 344,
};
static const struct dbg_pos dbg_314 = {
	.ts_size = 176, .ts_frame = 208, .fr_size = 248, .fr_previous = 256,
	.fr_executable = 264, .fr_instr = 272, .fr_owner = 288,
	.co_size = 312, .co_filename = 320, .co_code = 384,
};

static uint64_t u64_at(const char *p, size_t off)
{
	uint64_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static const void *ptr_at(const void *p, size_t off)
{
	const void *v;

	memcpy(&v, (const char *)p + off, sizeof(v));
	return v;
}

/* The layout of 3.13+ from _Py_DebugOffsets.  0, or -1 when the table is
 * not what this file knows. */
static int from_debug_offsets(unsigned long minor, struct layout *l)
{
	const struct dbg_pos *d = minor == 13 ? &dbg_313 : &dbg_314;
	const char *t = _PyRuntime;
	uint64_t v;

	if (!t || memcmp(t, "xdebugpy", 8) != 0)
		return -1;
	v = u64_at(t, 8); /* PY_VERSION_HEX */
	if ((v >> 16) != (Py_Version >> 16) || u64_at(t, 16) != 0)
		return -1; /* another minor, or free-threaded */
	l->ts_cframe = 0;
	l->ts_frame = u64_at(t, d->ts_frame);
	l->fr_code = u64_at(t, d->fr_executable);
	l->fr_previous = u64_at(t, d->fr_previous);
	l->fr_instr = u64_at(t, d->fr_instr);
	l->fr_owner = u64_at(t, d->fr_owner);
	l->co_filename = u64_at(t, d->co_filename);
	l->co_code = u64_at(t, d->co_code);
	/* 3.14: a _PyStackRef's tag bit (Py_TAG_REFCNT; a tagged int has
	 * both low bits set and is refused by the walk before any read) */
	l->code_mask = minor == 13 ? ~(uintptr_t)0 : ~(uintptr_t)1;
	if (l->ts_frame + 8 > u64_at(t, d->ts_size) ||
	    l->fr_code + 8 > u64_at(t, d->fr_size) ||
	    l->fr_previous + 8 > u64_at(t, d->fr_size) ||
	    l->fr_instr + 8 > u64_at(t, d->fr_size) ||
	    l->fr_owner + 1 > u64_at(t, d->fr_size) ||
	    l->co_filename + 8 > u64_at(t, d->co_size) ||
	    l->co_code > u64_at(t, d->co_size))
		return -1;
	return 0;
}

/* What start can check of l: PyCode_Type's basic size is the offset of
 * co_code_adaptive and its item size a code unit (tp_basicsize and
 * tp_itemsize follow ob_size and tp_name in every PyTypeObject of a GIL
 * build), and the calling thread, which runs no Python (the control
 * thread), has no current frame (3.11/3.12: its cframe is its
 * root_cframe).  GIL held. */
static bool check(const struct layout *l)
{
	const char *ty = (const char *)&PyCode_Type;
	const char *ts = (const char *)PyGILState_GetThisThreadState();
	Py_ssize_t basic, item;

	memcpy(&basic, ty + 4 * sizeof(void *), sizeof(basic));
	memcpy(&item, ty + 5 * sizeof(void *), sizeof(item));
	if (basic < 0 || (size_t)basic != l->co_code || item != CODEUNIT ||
	    l->co_code < FIRSTTRACEABLE_BACK || !ts)
		return false;
	if (l->ts_cframe) {
		const char *cf = ptr_at(ts, l->ts_cframe);

		return cf == ts + l->ts_root && !ptr_at(cf, l->ts_frame);
	}
	return !ptr_at(ts, l->ts_frame);
}

int agent_frames_init(void)
{
	unsigned long minor;
	struct layout l;

	if (mode >= 0)
		return mode;
	if (!&Py_Version) {
		mode = AGENT_FRAMES_API; /* 3.8-3.10: frame objects exist */
		return mode;
	}
	mode = AGENT_FRAMES_API_NEW; /* unless known and checked */
	minor = (Py_Version >> 16) & 0xff;
	if ((Py_Version >> 24) != 3)
		return mode;
	/* 3.11.0 and 3.11.1 cleared a returning frame while it was still
	 * the current one (GH-99729): a weakref callback of its code object
	 * could allocate with the frame's code freed.  The frame API
	 * there. */
	if (minor == 11 && (Py_Version & 0xff00) < 0x0200)
		return mode;
	if (minor == 11)
		l = lay_311;
	else if (minor == 12)
		l = lay_312;
	else if (minor != 13 && minor != 14)
		return mode;
	else if (from_debug_offsets(minor, &l) < 0)
		return mode;
	if (!check(&l))
		return mode;
	lay = l;
	mode = AGENT_FRAMES_DIRECT;
	return mode;
}

uint32_t agent_frames_walk(PyThreadState *ts, struct agent_sframe *f,
			   uint32_t max)
{
	const char *fr;
	uint32_t n = 0, skips = 0;

	fr = ptr_at(ts, lay.ts_cframe);
	if (lay.ts_cframe)
		fr = fr ? ptr_at(fr, lay.ts_frame) : NULL;
	else
		fr = ptr_at(ts, lay.ts_frame);
	for (; fr && n < max; fr = ptr_at(fr, lay.fr_previous)) {
		uint8_t owner = (uint8_t)fr[lay.fr_owner];
		const char *code;
		uintptr_t raw;
		PyObject *fn;
		intptr_t lasti;
		int first, line;

		if (owner >= OWNER_NOT_PY) {
			if (++skips > max + 256)
				break;
			continue;
		}
		raw = (uintptr_t)ptr_at(fr, lay.fr_code);
		code = (const char *)(raw & lay.code_mask);
		/* a tagged int (both low bits) or anything misaligned is no
		 * code object: refused before it is read through */
		if (!code || (raw & 3) == 3 || ((uintptr_t)code & 7) ||
		    Py_TYPE((PyObject *)code) != &PyCode_Type)
			break;
		lasti = (intptr_t)((uintptr_t)ptr_at(fr, lay.fr_instr) -
				   ((uintptr_t)code + lay.co_code));
		if (lasti % CODEUNIT != 0)
			break;
		lasti /= CODEUNIT;
		if (lasti < -1 || lasti >= Py_SIZE((PyObject *)code))
			break;
		memcpy(&first, code + lay.co_code - FIRSTTRACEABLE_BACK,
		       sizeof(first));
		if (owner != OWNER_GENERATOR && lasti < first) {
			if (++skips > max + 256)
				break;
			continue; /* incomplete */
		}
		fn = (PyObject *)ptr_at(code, lay.co_filename);
		if (!fn || Py_TYPE(fn) != &PyUnicode_Type)
			continue;
		line = PyCode_Addr2Line((PyObject *)code,
					(int)(lasti * CODEUNIT));
		f[n].filename = fn;
		f[n].lineno = line < 0 ? 0 : (uint32_t)line;
		n++;
	}
	return n;
}
