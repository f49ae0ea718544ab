/* sample.c - the sampler: PEP 445 hooks on the raw, mem and object
 * domains that record one allocation per ~SIZE bytes allocated, with its
 * Python traceback, and keep per-traceback estimates (docs/DESIGN.md §4.8).
 *
 * Each domain's hooks chain to the allocator found at install (base[d]:
 * pymalloc, libc, tracemalloc's, the raw-allocator guard ...).  The fast
 * path of an allocation is a thread-local byte countdown, drawn from an
 * exponential distribution of mean SIZE (a Poisson process over bytes):
 * no lock, no syscall, no Python call.  When it runs out, that allocation
 * is sampled: its traceback is walked (only when the thread holds the
 * GIL: its thread state is the current one; otherwise, and without a
 * Python frame, it counts under "<no Python frame>"), and the
 * block goes into a table of sampled
 * pointers with its weight: a block of s bytes is sampled with
 * probability p = 1 - e^(-s/SIZE), so it stands for s / p bytes and 1 / p
 * blocks (unbiased, as tcmalloc; s / p is about SIZE for small blocks,
 * s for big ones).  The
 * traceback's totals (in use and allocated, bytes and blocks) are kept up
 * to date as samples come and go.
 *
 * The fast path of a free is one byte of a counting filter (2^20 slots of
 * hashed pointers, counts kept under the lock, read without it); only a
 * pointer whose slot is non-zero takes the lock and looks in the table.
 * A sampled block is removed before the block is freed (its address can
 * then not be sampled again in between).  realloc removes the old block
 * if sampled, then counts the new size like an allocation; calloc counts
 * nelem * elsize.  A realloc that fails after its old block was removed
 * loses that sample (the block stays, unaccounted).
 *
 * The walk: on 3.11-3.14 pyframes.c reads the interpreter's frames
 * directly (no object created, no Python code run, no lock taken), so
 * every domain is walked, the raw one too.  On 3.8-3.10 the frame API
 * (frame objects exist there: it creates nothing); on an unknown 3.11+
 * the frame API too, which materialises frame objects: there the cyclic
 * GC is paused for the walk and raw-domain samples are not walked (see
 * walk_api() and record()).
 *
 * Re-entrancy: a thread-local flag is set while a sample is recorded; an
 * allocation made meanwhile (the frame objects of the frame-API walk of
 * an unknown 3.11+) goes straight to the base allocator, unsampled.
 * Frees are always looked at, and the lock is never held while Python is
 * called.  Filenames are borrowed during a walk and referenced by the
 * interned traceback (Py_INCREF, which allocates nothing); they are only
 * released by clear(), never inside an allocator hook, where a
 * deallocator must not run.
 * The sampler's own memory comes from libc (malloc is not hooked by PEP
 * 445) and is capped; past the cap new samples are dropped and STATS
 * says so.
 *
 * Install and remove go in the steps of rawguard.c, where any mix of an
 * old and a new field is valid for a thread that allocates without the
 * GIL: {X, fB} -> {X, ours} -> {&base, ours}, and back.  Our functions
 * ignore their context and forward to base[d], which is written only
 * while not installed and never cleared.  When something was put on top
 * of our hooks (tracemalloc started after the sampler), remove leaves
 * them in the chain, switched off (the countdown runs, nothing is
 * recorded), and a later start reuses them rather than stacking a second
 * copy whose base would point at the first.
 *
 * Fork: the lock is taken around fork(), so the child has consistent
 * tables and working hooks; the child's forking thread draws a new seed.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent_int.h"
#include "trmtop/util.h"

#ifdef AGENT_GLIBC_BASE
/* log got a new version in glibc 2.29 (agent_int.h) */
__asm__(".symver log,log@" AGENT_GLIBC_BASE);
#endif

#define NDOMAIN 3        /* PYMEM_DOMAIN_RAW, _MEM, _OBJ */
#define FILTER_BITS 20
#define FILTER_SLOTS (1u << FILTER_BITS)
#define DEFAULT_SIZE (512u << 10)
#define DEFAULT_MAX_MEMORY (64ull << 20)
#define MAX_FRAMES 128u

/* The 3.9+ frame accessors (new references); on 3.8 the attributes. */
extern PyFrameObject *PyFrame_GetBack(PyFrameObject *) __attribute__((weak));
extern PyCodeObject *PyFrame_GetCode(PyFrameObject *) __attribute__((weak));
int PyGILState_Check(void);
/* The thread state holding the GIL (3.8-3.11: the runtime's; 3.12+:
 * this thread's when attached): 3.13 renamed it. */
extern PyThreadState *_PyThreadState_UncheckedGet(void) __attribute__((weak));
extern PyThreadState *PyThreadState_GetUnchecked(void) __attribute__((weak));
/* 3.9+ (its interpreter: the main one is walked) */
extern PyInterpreterState *PyThreadState_GetInterpreter(PyThreadState *)
	__attribute__((weak));
extern PyInterpreterState *PyInterpreterState_Main(void) __attribute__((weak));
/* 3.10+; weak as in snap.c */
extern int PyGC_Enable(void) __attribute__((weak));
extern int PyGC_Disable(void) __attribute__((weak));

/* ---- state ---- */

static pem_alloc base[NDOMAIN];   /* what our hooks forward to */
static bool in_chain[NDOMAIN];    /* our hooks are installed (maybe under
				     someone else's); GIL held */
static atomic_bool recording;     /* samples are recorded */
static bool atfork_done;
static int walker = AGENT_FRAMES_API; /* agent_frames_init's answer, set
					 before the first install */

/* Read by the slow path without the lock (written under it, with the GIL,
 * while recording is false). */
static _Atomic uint64_t size_mean = DEFAULT_SIZE;
static _Atomic uint32_t nframe_max = 1;
static _Atomic uint32_t seed_gen = 1;
static _Atomic uint64_t seed_base;
static _Atomic uint64_t thread_seq;

struct tls {
	int64_t left;  /* bytes before the next sample */
	uint64_t rng;  /* splitmix64 state */
	uint32_t gen;  /* seed_gen it was seeded for */
	uint8_t busy;  /* in one of our hooks: nested allocations (pymalloc
			  falling back on the raw domain, the frame walk) pass
			  through uncounted */
	uint8_t probe; /* agent_sample_start's probe: mark, do not count */
	uint8_t seen;  /* domains the probe went through, a bit each */
};
static __thread struct tls tl __attribute__((tls_model("initial-exec")));

/* The counting filter: slot counts of sampled pointers (255 sticks). */
static _Atomic uint8_t filter[FILTER_SLOTS];

struct sent {
	uintptr_t key;       /* 0 empty, 1 removed */
	uint64_t bytes;      /* estimated bytes this sample stands for */
	uint64_t blocks;     /* estimated blocks, 16.16 fixed point */
	struct agent_stb *tb;
};

/* Everything below is guarded by lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct sent *ptrs;
static size_t ptrs_mask, ptrs_live, ptrs_used; /* used: live + removed */
static struct agent_stb **tbs;
static size_t tbs_mask, tbs_n;
static uint64_t mem_tb;       /* bytes of traceback structs */
static uint64_t max_memory = DEFAULT_MAX_MEMORY;
static uint64_t dropped;
static bool capped;
/* The change list: every traceback counted in this run, the most
 * recently changed first, each stamped with ++seq when it changes (a
 * table reply sends those changed since the last: snap.c). */
static struct agent_stb *changed;
static uint64_t seq;
static uint64_t epoch; /* the run: 1 for the first start, +1 each start */

static PyObject *no_frame_name; /* "<no Python frame>" */
static PyObject *co_filename_name, *f_back_name, *f_code_name;
static union {
	struct agent_stb tb;
	char room[sizeof(struct agent_stb) + sizeof(struct agent_sframe)];
} no_frame;

/* ---- randomness ---- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Bytes to the next sample: exponential of mean size_mean, >= 1. */
static int64_t draw(void)
{
	double u = (double)((splitmix(&tl.rng) >> 11) + 1) * 0x1p-53;
	double d = -log(u) * (double)atomic_load_explicit(&size_mean,
							  memory_order_relaxed);

	return d < 1.0 ? 1 : d > 0x1p62 ? (int64_t)1 << 62 : (int64_t)d;
}

static void seed_thread(void)
{
	uint64_t s = atomic_load_explicit(&seed_base, memory_order_relaxed) ^
		     (atomic_fetch_add(&thread_seq, 1) * 0xd1b54a32d192ed03ull);

	tl.rng = splitmix(&s);
	tl.gen = atomic_load_explicit(&seed_gen, memory_order_relaxed);
}

/* ---- tables (lock held) ---- */

/* The filter's slot of p: the high bits of a multiplicative hash (one
 * multiplication: it runs on every free). */
static size_t filter_slot(uintptr_t p)
{
	return (size_t)(((uint64_t)p * 0x9e3779b97f4a7c15ull) >> (64 - FILTER_BITS));
}

static size_t ptr_hash(uintptr_t p)
{
	return (size_t)util_mix64((uint64_t)p);
}

static uint64_t memory_locked(void)
{
	return sizeof(filter) + (ptrs ? (ptrs_mask + 1) * sizeof(*ptrs) : 0) +
	       (tbs ? (tbs_mask + 1) * sizeof(*tbs) : 0) + mem_tb;
}

static struct sent *ptr_find(uintptr_t p)
{
	if (!ptrs)
		return NULL;
	for (size_t i = ptr_hash(p) & ptrs_mask; ptrs[i].key;
	     i = (i + 1) & ptrs_mask)
		if (ptrs[i].key == p)
			return &ptrs[i];
	return NULL;
}

/* Make room for one more entry.  0, or -1 (no memory or over the cap). */
static int ptrs_reserve(void)
{
	size_t slots, old;
	struct sent *n;

	if (ptrs && (ptrs_used + 1) * 2 <= ptrs_mask + 1)
		return 0;
	for (slots = 1024; slots < (ptrs_live + 1) * 4; slots *= 2)
		;
	old = ptrs ? (ptrs_mask + 1) * sizeof(*ptrs) : 0;
	if (memory_locked() - old + slots * sizeof(*n) > max_memory)
		return -1;
	n = calloc(slots, sizeof(*n));
	if (!n)
		return -1;
	for (size_t i = 0; ptrs && i <= ptrs_mask; i++) {
		size_t j;

		if (ptrs[i].key <= 1)
			continue;
		for (j = ptr_hash(ptrs[i].key) & (slots - 1); n[j].key;
		     j = (j + 1) & (slots - 1))
			;
		n[j] = ptrs[i];
	}
	free(ptrs);
	ptrs = n;
	ptrs_mask = slots - 1;
	ptrs_used = ptrs_live;
	return 0;
}

static void filter_add(uintptr_t p)
{
	_Atomic uint8_t *c = &filter[filter_slot(p)];
	uint8_t v = atomic_load_explicit(c, memory_order_relaxed);

	if (v < 255)
		atomic_store_explicit(c, v + 1, memory_order_relaxed);
}

static void filter_del(uintptr_t p)
{
	_Atomic uint8_t *c = &filter[filter_slot(p)];
	uint8_t v = atomic_load_explicit(c, memory_order_relaxed);

	if (v > 0 && v < 255)
		atomic_store_explicit(c, v - 1, memory_order_relaxed);
}

/* tb's figures changed: stamp it and move it to the front of the
 * change list.  A few stores; no allocation. */
static void touch(struct agent_stb *tb)
{
	bool listed = tb->mod != 0;

	tb->mod = ++seq;
	if (changed == tb)
		return;
	if (listed) {
		/* not the first: it has a newer one */
		tb->newer->older = tb->older;
		if (tb->older)
			tb->older->newer = tb->newer;
	}
	tb->newer = NULL;
	tb->older = changed;
	if (changed)
		changed->newer = tb;
	changed = tb;
}

static void unaccount(struct sent *e)
{
	touch(e->tb);
	e->tb->inuse_bytes -= e->bytes;
	e->tb->inuse_blocks -= e->blocks;
	filter_del(e->key);
	e->key = 1;
	ptrs_live--;
}

static uint64_t tb_hash(const struct agent_sframe *f, uint32_t n)
{
	uint64_t h = n;

	for (uint32_t i = 0; i < n; i++)
		h = util_mix64(h ^ (uint64_t)(uintptr_t)f[i].filename) ^
		    f[i].lineno;
	return util_mix64(h);
}

/* The interned traceback of f[0..n) (borrowed filenames), taking
 * references to its filenames when new (GIL held; Py_INCREF allocates
 * nothing, and the references are dropped by clear(), outside any
 * allocator hook).  NULL when out of memory or over the cap. */
static struct agent_stb *tb_intern(const struct agent_sframe *f, uint32_t n)
{
	uint64_t h = tb_hash(f, n);
	size_t i, sz = sizeof(struct agent_stb) + n * sizeof(*f);
	struct agent_stb *tb;

	for (i = tbs ? h & tbs_mask : 0; tbs && tbs[i]; i = (i + 1) & tbs_mask) {
		tb = tbs[i];
		if (tb->hash == h && tb->n == n &&
		    memcmp(tb->f, f, n * sizeof(*f)) == 0)
			return tb;
	}
	if (!tbs || (tbs_n + 1) * 2 > tbs_mask + 1) {
		size_t slots = tbs ? (tbs_mask + 1) * 2 : 1024;
		size_t old = tbs ? (tbs_mask + 1) * sizeof(*tbs) : 0;
		struct agent_stb **nt;

		if (memory_locked() - old + slots * sizeof(*nt) + sz > max_memory)
			return NULL;
		nt = calloc(slots, sizeof(*nt));
		if (!nt)
			return NULL;
		for (size_t k = 0; tbs && k <= tbs_mask; k++) {
			size_t j;

			if (!tbs[k])
				continue;
			for (j = tbs[k]->hash & (slots - 1); nt[j];
			     j = (j + 1) & (slots - 1))
				;
			nt[j] = tbs[k];
		}
		free(tbs);
		tbs = nt;
		tbs_mask = slots - 1;
	}
	if (memory_locked() + sz > max_memory)
		return NULL;
	tb = calloc(1, sz);
	if (!tb)
		return NULL;
	tb->hash = h;
	tb->n = n;
	tb->idx = (uint32_t)tbs_n + 1; /* tbs_n < 2^32: the cap */
	memcpy(tb->f, f, n * sizeof(*f));
	for (uint32_t k = 0; k < n; k++)
		Py_INCREF(f[k].filename);
	for (i = h & tbs_mask; tbs[i]; i = (i + 1) & tbs_mask)
		;
	tbs[i] = tb;
	tbs_n++;
	mem_tb += sz;
	return tb;
}

/* Forget every sample and traceback.  GIL held.  The tracebacks are
 * released after the lock (a filename freed by it goes through our free
 * hook, which may take the lock). */
static void clear(void)
{
	struct agent_stb **old;
	size_t old_mask;

	pthread_mutex_lock(&lock);
	old = tbs;
	old_mask = tbs_mask;
	free(ptrs);
	tbs = NULL;
	ptrs = NULL;
	tbs_mask = tbs_n = ptrs_mask = ptrs_live = ptrs_used = 0;
	mem_tb = 0;
	dropped = 0;
	capped = false;
	no_frame.tb.inuse_bytes = no_frame.tb.inuse_blocks = 0;
	no_frame.tb.alloc_bytes = no_frame.tb.alloc_blocks = 0;
	no_frame.tb.mod = 0;
	no_frame.tb.newer = no_frame.tb.older = NULL;
	changed = NULL;
	for (size_t i = 0; i < FILTER_SLOTS; i++)
		atomic_store_explicit(&filter[i], 0, memory_order_relaxed);
	pthread_mutex_unlock(&lock);
	for (size_t i = 0; old && i <= old_mask; i++) {
		struct agent_stb *tb = old[i];

		if (!tb)
			continue;
		for (uint32_t k = 0; k < tb->n; k++)
			Py_DECREF(tb->f[k].filename);
		free(tb);
	}
	free(old);
}

/* ---- recording ---- */

/* This thread's thread state if it holds the GIL with it, of the main
 * interpreter; NULL otherwise.  Compared with the current thread state
 * rather than asked of PyGILState_Check(), which says yes to every
 * thread once a subinterpreter exists (3.8-3.11) or its check is off.
 * A thread started in a subinterpreter has that interpreter's thread
 * state as its own on 3.12+ (its GIL, its obmalloc): its file names
 * must not be referenced from the main interpreter (a DECREF there
 * freed them through the wrong allocator: the target aborted), so its
 * samples count under <no Python frame>.  3.8 (no
 * PyThreadState_GetInterpreter) shares one GIL and one obmalloc. */
static PyThreadState *holds_gil(void)
{
	PyThreadState *mine, *cur;

	if (atomic_load_explicit(&agent_exiting, memory_order_relaxed))
		return NULL;
	mine = PyGILState_GetThisThreadState();
	if (!mine)
		return NULL;
	if (PyThreadState_GetUnchecked)
		cur = PyThreadState_GetUnchecked();
	else if (_PyThreadState_UncheckedGet)
		cur = _PyThreadState_UncheckedGet();
	else
		return PyGILState_Check() ? mine : NULL;
	if (cur != mine)
		return NULL;
	if (PyThreadState_GetInterpreter && PyInterpreterState_Main &&
	    PyThreadState_GetInterpreter(mine) != PyInterpreterState_Main())
		return NULL;
	return mine;
}

/* Walk up to max frames of this thread's Python stack into f with the
 * frame API (filenames borrowed: their code objects stay referenced by
 * the frames).  GIL held; the thread's exception, if any, is kept.
 *
 * Used where pyframes.c cannot read the frames: on 3.8-3.10, where the
 * frame objects exist already and this creates nothing, and on an
 * unknown 3.11+, where the frame API materialises frame objects.  There,
 * on 3.11, the allocation of a GC object can run a collection there and
 * then: its finalizers, inside an allocation that may hold interpreter
 * locks (a thread state is allocated under the runtime's HEAD_LOCK on
 * 3.11.2; a stress run deadlocked on it).  The cyclic GC is therefore
 * switched off for such a walk (PyGC_Disable, 3.10+: a flag). */
static uint32_t walk_api(struct agent_sframe *f, uint32_t max)
{
	PyObject *type, *value, *tb;
	PyFrameObject *fr, *back;
	uint32_t n = 0;
	bool gc_was = walker == AGENT_FRAMES_API_NEW && PyGC_Disable &&
		      PyGC_Enable && PyGC_Disable() == 1;

	PyErr_Fetch(&type, &value, &tb);
	fr = PyEval_GetFrame();
	Py_XINCREF(fr);
	while (fr && n < max) {
		PyObject *code, *fn = NULL;

		code = PyFrame_GetCode ? (PyObject *)PyFrame_GetCode(fr)
				       : PyObject_GetAttr((PyObject *)fr,
							  f_code_name);
		if (code)
			fn = PyObject_GetAttr(code, co_filename_name);
		if (fn && PyUnicode_Check(fn)) {
			int ln = PyFrame_GetLineNumber(fr);

			f[n].filename = fn;
			f[n].lineno = ln < 0 ? 0 : (uint32_t)ln;
			n++;
		}
		/* never the last references: the frame holds its code,
		 * the code its filename */
		Py_XDECREF(fn);
		Py_XDECREF(code);
		back = PyFrame_GetBack ? PyFrame_GetBack(fr)
				       : (PyFrameObject *)PyObject_GetAttr(
						 (PyObject *)fr, f_back_name);
		if (back == (PyFrameObject *)Py_None) {
			Py_DECREF(back);
			back = NULL;
		}
		Py_DECREF(fr);
		fr = back;
	}
	Py_XDECREF(fr);
	PyErr_Clear();
	PyErr_Restore(type, value, tb);
	if (gc_was)
		PyGC_Enable();
	return n;
}

static void record(int d, uintptr_t p, size_t size)
{
	struct agent_sframe f[MAX_FRAMES];
	uint32_t n = 0, max = atomic_load_explicit(&nframe_max,
						   memory_order_relaxed);
	/* Only the thread that holds the GIL walks its stack: no other
	 * thread changes its frames meanwhile.  A raw-domain allocation may
	 * come in the middle of the interpreter's own work (a thread state
	 * made under HEAD_LOCK, tracemalloc's tables under its lock): the
	 * direct walk only reads, so it walks those too.  The frame API
	 * walk of an unknown 3.11+ creates objects, and a new object takes
	 * tracemalloc's lock (_PyTraceMalloc_NewReference) when tracemalloc
	 * runs over the sampler: a stress run deadlocked on it.  There a
	 * raw-domain sample counts under <no Python frame>. */
	PyThreadState *ts = d == 0 && walker == AGENT_FRAMES_API_NEW
				    ? NULL
				    : holds_gil();
	double s = size ? (double)size : 1.0;
	double mean = (double)atomic_load_explicit(&size_mean,
						   memory_order_relaxed);
	double w = s / -expm1(-s / mean);
	uint64_t bytes = (uint64_t)(w + 0.5);
	uint64_t blocks = (uint64_t)(w / s * 65536.0 + 0.5);
	struct agent_stb *tb;
	struct sent *e;

	if (max > MAX_FRAMES)
		max = MAX_FRAMES;
	if (ts && walker == AGENT_FRAMES_DIRECT)
		n = agent_frames_walk(ts, f, max);
	else if (ts)
		n = walk_api(f, max);
	pthread_mutex_lock(&lock);
	if (!atomic_load(&recording))
		goto out;
	tb = n ? tb_intern(f, n) : &no_frame.tb;
	if (!tb || ptrs_reserve() < 0) {
		capped = true;
		dropped++;
		goto out;
	}
	e = ptr_find(p);
	if (e) /* freed where we did not see it: the address came back */
		unaccount(e);
	for (size_t i = ptr_hash(p) & ptrs_mask;; i = (i + 1) & ptrs_mask) {
		if (ptrs[i].key <= 1) {
			e = &ptrs[i];
			break;
		}
	}
	if (!e->key)
		ptrs_used++;
	ptrs_live++;
	e->key = p;
	e->bytes = bytes;
	e->blocks = blocks;
	e->tb = tb;
	filter_add(p);
	touch(tb);
	tb->inuse_bytes += bytes;
	tb->inuse_blocks += blocks;
	tb->alloc_bytes += bytes;
	tb->alloc_blocks += blocks;
out:
	pthread_mutex_unlock(&lock);
}

/* The countdown ran out on p (size bytes, domain d; p may be NULL). */
static __attribute__((noinline)) void slow_alloc(int d, void *p, size_t size)
{
	if (tl.probe) {
		tl.seen |= (uint8_t)(1u << d);
		return;
	}
	tl.busy = 1;
	if (tl.gen != atomic_load_explicit(&seed_gen, memory_order_relaxed)) {
		/* first allocation of this thread (or of this start) */
		seed_thread();
		tl.left = draw() - (int64_t)size;
		if (tl.left > 0)
			goto out;
	}
	tl.left = draw();
	if (p && atomic_load_explicit(&recording, memory_order_relaxed))
		record(d, (uintptr_t)p, size);
out:
	tl.busy = 0;
}

static __attribute__((noinline)) void slow_free(void *p)
{
	struct sent *e;

	pthread_mutex_lock(&lock);
	e = ptr_find((uintptr_t)p);
	if (e)
		unaccount(e);
	pthread_mutex_unlock(&lock);
}

static inline void count(int d, void *p, size_t size)
{
	if ((tl.left -= (int64_t)size) <= 0)
		slow_alloc(d, p, size);
}

static inline void forget(void *p)
{
	if (p && atomic_load_explicit(&filter[filter_slot((uintptr_t)p)],
				      memory_order_relaxed))
		slow_free(p);
}

/* ---- the hooks, one set per domain ---- */

/* Nested calls (tl.busy) go straight to the base allocator; the others
 * call it with busy set, then count. */
#define HOOKS(D)                                                           \
	static void *h_malloc_##D(void *ctx, size_t size)                  \
	{                                                                  \
		void *p;                                                   \
		(void)ctx;                                                 \
		if (tl.busy)                                               \
			return base[D].malloc(base[D].ctx, size);          \
		tl.busy = 1;                                               \
		p = base[D].malloc(base[D].ctx, size);                     \
		tl.busy = 0;                                               \
		count(D, p, size);                                         \
		return p;                                                  \
	}                                                                  \
	static void *h_calloc_##D(void *ctx, size_t nelem, size_t elsize)  \
	{                                                                  \
		void *p;                                                   \
		size_t size;                                               \
		(void)ctx;                                                 \
		if (tl.busy)                                               \
			return base[D].calloc(base[D].ctx, nelem, elsize); \
		tl.busy = 1;                                               \
		p = base[D].calloc(base[D].ctx, nelem, elsize);            \
		tl.busy = 0;                                               \
		if (!__builtin_mul_overflow(nelem, elsize, &size))         \
			count(D, p, size);                                 \
		return p;                                                  \
	}                                                                  \
	static void *h_realloc_##D(void *ctx, void *ptr, size_t size)      \
	{                                                                  \
		void *p;                                                   \
		(void)ctx;                                                 \
		forget(ptr);                                               \
		if (tl.busy)                                               \
			return base[D].realloc(base[D].ctx, ptr, size);    \
		tl.busy = 1;                                               \
		p = base[D].realloc(base[D].ctx, ptr, size);               \
		tl.busy = 0;                                               \
		if (p)                                                     \
			count(D, p, size);                                 \
		return p;                                                  \
	}                                                                  \
	static void h_free_##D(void *ctx, void *ptr)                       \
	{                                                                  \
		(void)ctx;                                                 \
		forget(ptr);                                               \
		base[D].free(base[D].ctx, ptr);                            \
	}

HOOKS(0)
HOOKS(1)
HOOKS(2)

static const pem_alloc hooks[NDOMAIN] = {
	{ NULL, h_malloc_0, h_calloc_0, h_realloc_0, h_free_0 },
	{ NULL, h_malloc_1, h_calloc_1, h_realloc_1, h_free_1 },
	{ NULL, h_malloc_2, h_calloc_2, h_realloc_2, h_free_2 },
};

/* Set domain d to ctx with our functions or base[d]'s. */
static void set_domain(int d, void *ctx, bool ours)
{
	pem_alloc a = ours ? hooks[d] : base[d];

	a.ctx = ctx;
	PyMem_SetAllocator(d, &a);
}

/* ---- fork ---- */

static void on_fork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

static void on_fork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

static void on_fork_child(void)
{
	pthread_mutex_unlock(&lock);
	tl.rng ^= (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
	tl.left = draw();
}

/* ---- the interface ---- */

static int names_init(void)
{
	if (!no_frame_name) {
		no_frame_name = PyUnicode_InternFromString("<no Python frame>");
		co_filename_name = PyUnicode_InternFromString("co_filename");
		f_back_name = PyUnicode_InternFromString("f_back");
		f_code_name = PyUnicode_InternFromString("f_code");
		if (!no_frame_name || !co_filename_name || !f_back_name ||
		    !f_code_name)
			return -1;
		no_frame.tb.n = 1;
		no_frame.tb.f[0].filename = no_frame_name;
	}
	return 0;
}

void *PyMem_RawMalloc(size_t size);
void PyMem_RawFree(void *ptr);

/* Which domains have our hooks somewhere in their chain: one allocation
 * of each, marked, not counted.  GIL held. */
static uint8_t probe(void)
{
	int64_t left = tl.left;
	void *p;

	tl.probe = 1;
	tl.seen = 0;
	tl.left = 0;
	p = PyMem_RawMalloc(1);
	PyMem_RawFree(p);
	tl.left = 0;
	p = PyMem_Malloc(1);
	PyMem_Free(p);
	tl.left = 0;
	p = PyObject_Malloc(1);
	PyObject_Free(p);
	tl.probe = 0;
	tl.left = left;
	return tl.seen;
}

int agent_sample_start(uint64_t size, uint32_t nframe, uint64_t max_mem)
{
	const char *env = getenv("TRMTOP_SAMPLE_SEED");
	uint64_t seed = 0;
	uint8_t seen;

	if (atomic_load(&recording))
		return 0;
	if (names_init() < 0)
		return -1;
	if (!atfork_done) {
		if (pthread_atfork(on_fork_prepare, on_fork_parent,
				   on_fork_child) != 0) {
			PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
			return -1;
		}
		atfork_done = true;
	}
	if (env && *env) {
		seed = strtoull(env, NULL, 0);
	} else if (syscall(SYS_getrandom, &seed, sizeof(seed), 0) !=
		   (long)sizeof(seed)) {
		seed = (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&seed;
	}

	if (walker != agent_frames_init())
		walker = agent_frames_init(); /* once: the same afterwards */
	clear();
	pthread_mutex_lock(&lock);
	max_memory = max_mem ? max_mem : DEFAULT_MAX_MEMORY;
	atomic_store(&size_mean, size ? size : DEFAULT_SIZE);
	atomic_store(&nframe_max, nframe ? nframe : 1);
	atomic_store(&seed_base, seed);
	atomic_store(&thread_seq, 0);
	atomic_fetch_add(&seed_gen, 1);
	epoch++;
	pthread_mutex_unlock(&lock);
	atomic_store(&recording, true);

	seen = probe();
	for (int d = 0; d < NDOMAIN; d++) {
		pem_alloc cur;

		PyMem_GetAllocator(d, &cur);
		/* still ours from an earlier start, maybe under someone
		 * else's (then base[d] must not change: we forward to it) */
		in_chain[d] = (seen >> d) & 1;
		if (in_chain[d])
			continue;
		base[d] = cur;
		atomic_thread_fence(memory_order_seq_cst); /* base, then hooks */
		set_domain(d, cur.ctx, true); /* functions only */
		set_domain(d, &base[d], true); /* context only */
		in_chain[d] = true;
	}
	return 0;
}

void agent_sample_stop(void)
{
	bool was = atomic_exchange(&recording, false);
	uint8_t seen;

	if (!in_chain[0] && !in_chain[1] && !in_chain[2])
		goto out;
	seen = probe();
	for (int d = 0; d < NDOMAIN; d++) {
		pem_alloc cur;

		in_chain[d] = (seen >> d) & 1; /* tracemalloc.stop() under
						  us puts back what it found:
						  ours are gone then */
		if (!in_chain[d])
			continue;
		PyMem_GetAllocator(d, &cur);
		/* someone put an allocator on top of ours: ours stays in
		 * the chain, recording nothing */
		if (cur.ctx != &base[d] || cur.free != hooks[d].free)
			continue;
		set_domain(d, base[d].ctx, true);  /* context only */
		set_domain(d, base[d].ctx, false); /* functions only */
		in_chain[d] = false;
	}
out:
	if (was)
		clear();
}

bool agent_sample_on(void)
{
	return atomic_load(&recording);
}

void agent_sample_stats(struct agent_sample_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!atomic_load(&recording))
		return;
	pthread_mutex_lock(&lock);
	st->size = atomic_load(&size_mean);
	st->nframe = atomic_load(&nframe_max);
	st->samples = ptrs_live;
	st->memory = memory_locked();
	st->dropped = dropped;
	st->capped = capped;
	pthread_mutex_unlock(&lock);
}

/* 16.16 fixed-point blocks to whole ones, to the nearest (each sample
 * stands for at least one block: a non-zero estimate stays non-zero). */
static uint64_t whole_blocks(uint64_t fixed)
{
	return (fixed >> 16) + ((fixed & 0xffff) >= 0x8000);
}

uint64_t agent_sample_whole_blocks(uint64_t fixed)
{
	return whole_blocks(fixed);
}

static void row_of(struct agent_sample_row *r, const struct agent_stb *tb)
{
	r->tb = tb;
	r->inuse_bytes = tb->inuse_bytes;
	r->inuse_blocks = whole_blocks(tb->inuse_blocks);
	r->alloc_bytes = tb->alloc_bytes;
	r->alloc_blocks = whole_blocks(tb->alloc_blocks);
}

int agent_sample_rows(struct agent_sample_row **rows, size_t *n)
{
	struct agent_sample_row *r;
	size_t k = 0;

	*rows = NULL;
	*n = 0;
	pthread_mutex_lock(&lock);
	r = malloc((tbs_n + 1) * sizeof(*r));
	if (!r) {
		pthread_mutex_unlock(&lock);
		return -ENOMEM;
	}
	for (size_t i = 0; tbs && i <= tbs_mask; i++)
		if (tbs[i] && tbs[i]->alloc_bytes)
			row_of(&r[k++], tbs[i]);
	if (no_frame.tb.alloc_bytes)
		row_of(&r[k++], &no_frame.tb);
	pthread_mutex_unlock(&lock);
	*rows = r;
	*n = k;
	return 0;
}

int agent_sample_changed(const struct agent_sample_mark *since,
			 struct agent_sample_row *rows, size_t cap, size_t *n,
			 struct agent_sample_mark *now)
{
	size_t k = 0;
	uint64_t after;

	*n = 0;
	pthread_mutex_lock(&lock);
	if (!atomic_load(&recording)) {
		pthread_mutex_unlock(&lock);
		return -ESRCH;
	}
	after = since->epoch == epoch ? since->seq : 0;
	for (const struct agent_stb *tb = changed; tb && tb->mod > after;
	     tb = tb->older, k++) {
		if (k >= cap)
			continue;
		rows[k].tb = tb;
		rows[k].inuse_bytes = tb->inuse_bytes;
		rows[k].inuse_blocks = tb->inuse_blocks;
		rows[k].alloc_bytes = tb->alloc_bytes;
		rows[k].alloc_blocks = tb->alloc_blocks;
	}
	now->epoch = epoch;
	now->seq = seq;
	now->nidx = (uint32_t)tbs_n + 1;
	pthread_mutex_unlock(&lock);
	*n = k;
	return k > cap ? -ENOSPC : 0;
}
