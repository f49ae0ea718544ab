/* rawguard.c - make tracemalloc's switch of the raw allocator safe for
 * threads that allocate at that very moment.
 *
 * tracemalloc.start() and stop() replace the PYMEM_DOMAIN_RAW allocator,
 * a {ctx, malloc, calloc, realloc, free} struct, with one plain struct copy,
 * while other threads call PyMem_RawMalloc/PyMem_RawFree without the GIL
 * or any lock.  Such a thread can read the new function with the old
 * context: stop() turns {&tm_ctx, tracemalloc_raw_free} back into
 * {NULL, _PyMem_RawFree}, and a thread starting up (pythread_wrapper frees
 * its boot struct with PyMem_RawFree) may call tracemalloc_raw_free(NULL,
 * p), which dereferences its context: SIGSEGV.  (CPython gh-128679 and
 * gh-131566 call the race benign; it is not, and is as old as PEP 445.
 * Seen here once in about 5000 start/stop cycles on a target whose
 * threads come and go.)
 *
 * The guard puts an allocator of ours between the original one B and
 * tracemalloc, and changes the struct only in steps where every mix of an
 * old and a new field is valid:
 *
 *   B = {X, fB}  ->  {X, g}  ->  {&base, g}  ->  tracemalloc: {&tm, t}
 *
 * g ignores its context and forwards to B; base is a copy of B.  Step 1
 * changes only the functions (g and fB both take X); step 2 only the
 * context (g ignores it); tracemalloc's own switch then mixes {&base, t}
 * (t forwards to base, i.e. B) or {&tm, g} (g forwards to B).  After
 * tracemalloc.stop() has put {&base, g} back, the same steps in reverse
 * restore B.  The struct layout and PyMem_{Get,Set}Allocator have been
 * stable since 3.5 but are outside the limited API: declared in
 * agent_int.h. */
#include "config.h"

#include <string.h>

#include "agent_int.h"

typedef pem_alloc raw_alloc;

#define DOMAIN_RAW 0 /* PYMEM_DOMAIN_RAW */

/* B, the allocator found at install; written only while not installed,
 * and the guard functions may still run on it afterwards (a thread that
 * read them just before the uninstall), so it is never cleared. */
static raw_alloc base;
static bool installed;

static void *g_malloc(void *ctx, size_t size)
{
	(void)ctx;
	return base.malloc(base.ctx, size);
}

static void *g_calloc(void *ctx, size_t nelem, size_t elsize)
{
	(void)ctx;
	return base.calloc(base.ctx, nelem, elsize);
}

static void *g_realloc(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	return base.realloc(base.ctx, ptr, size);
}

static void g_free(void *ctx, void *ptr)
{
	(void)ctx;
	base.free(base.ctx, ptr);
}

static void set_raw(void *ctx, bool guard)
{
	raw_alloc a = base;

	a.ctx = ctx;
	if (guard) {
		a.malloc = g_malloc;
		a.calloc = g_calloc;
		a.realloc = g_realloc;
		a.free = g_free;
	}
	PyMem_SetAllocator(DOMAIN_RAW, &a);
}

void agent_rawguard_install(void)
{
	raw_alloc cur;

	if (installed)
		return;
	PyMem_GetAllocator(DOMAIN_RAW, &cur);
	if (cur.malloc == g_malloc)
		return; /* still ours from an earlier session */
	base = cur;
	set_raw(base.ctx, true);  /* functions only */
	set_raw(&base, true);     /* context only */
	installed = true;
}

void agent_rawguard_remove(void)
{
	raw_alloc cur;

	if (!installed)
		return;
	PyMem_GetAllocator(DOMAIN_RAW, &cur);
	/* someone put an allocator on top of ours: it stays, harmlessly */
	if (cur.ctx != &base || cur.free != g_free)
		return;
	set_raw(base.ctx, true);  /* context only */
	set_raw(base.ctx, false); /* functions only */
	installed = false;
}
