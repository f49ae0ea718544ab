/* agent_int.h - private to the agent: session state shared between the
 * module code (agent.c, on the thread that runs the bootstrap, GIL held)
 * and the control thread (ctl.c, GIL taken only around Python calls). */
#ifndef TRMTOP_AGENT_INT_H
#define TRMTOP_AGENT_INT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "trmtop/wire.h"

/* The agent loads into targets whose glibc may be older than the build
 * machine's (containers).  Bind the few symbols that got new versions in
 * glibc 2.32-2.34 to their original versions (libpthread's before 2.34,
 * always loaded in a CPython process); fstat is done with a raw syscall
 * (agent_fstat) because fstat64@GLIBC_2.33 has no old version. */
#if defined(__GLIBC__) && defined(__x86_64__)
#define AGENT_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__GLIBC__) && defined(__aarch64__)
#define AGENT_GLIBC_BASE "GLIBC_2.17"
#endif
#ifdef AGENT_GLIBC_BASE
__asm__(".symver pthread_create,pthread_create@" AGENT_GLIBC_BASE);
__asm__(".symver pthread_sigmask,pthread_sigmask@" AGENT_GLIBC_BASE);
#endif

/* One connection to one trmtop.  Owned by its control thread; published
 * in agent_cur (under agent_lock) while it is active. */
struct agent_sess {
	int ctl_fd, data_fd;
	uint64_t token;
	bool owns; /* this session started tracing without WIRE_START_KEEP */
	bool owns_sample; /* ... and the sampler */
	struct wire_reader rd;
	struct wire_intern *tables; /* what this connection has sent; NULL
				       until the first snapshot */
	struct agent_tab *tab; /* the rows of its table replies; NULL until
				  the first */
	uint32_t py_hexversion;
};

/* agent_lock guards agent_cur; it is held only for a few instructions and
 * never while taking the GIL or blocking. */
extern pthread_mutex_t agent_lock;
extern struct agent_sess *agent_cur;

/* Tracing is on and trmtop started it (in this or an earlier session).
 * Read and written with the GIL held only. */
extern bool agent_trm_started;

/* Set by the Py_AtExit hook, at the very end of finalization. */
extern atomic_bool agent_exiting;

/* The _tracemalloc functions the agent calls.  Their names are interned
 * once (agent_names_init, at module init) and the module is imported once
 * (on first use, by start() on the bootstrap's thread): a request makes
 * no import and no name string of its own, so a session leaves no new
 * objects behind in the interpreter's caches (the type attribute cache
 * keeps a reference to the last name string looked up). */
enum agent_tm_fn {
	AGENT_TM_IS_TRACING,
	AGENT_TM_GET_TRACEBACK_LIMIT,
	AGENT_TM_GET_TRACED_MEMORY,
	AGENT_TM_GET_TRACEMALLOC_MEMORY,
	AGENT_TM_GET_TRACES,
	AGENT_TM_START,
	AGENT_TM_STOP,
	AGENT_TM_NFN,
};

/* Intern the names of agent_tm_fn.  0, or -1 with an exception set. */
int agent_names_init(void);

/* _tracemalloc.<fn>(arg) (arg may be NULL: no argument): a new reference,
 * or NULL with a Python exception set.  GIL held. */
PyObject *agent_tm_call(enum agent_tm_fn fn, PyObject *arg);

/* _tracemalloc.<fn>() as an unsigned long long.  GIL held; 0, or -1 with
 * a Python exception set. */
int agent_tm_ull(enum agent_tm_fn fn, unsigned long long *out);

/* True when the control thread must not take the GIL any more: the
 * interpreter is finalizing (or has finalized).  No GIL needed. */
bool agent_py_gone(void);

/* Current tracemalloc state: *tracing is a wire_tracing value.  GIL held.
 * 0, or -1 with a Python exception set. */
int agent_tm_state(uint8_t *tracing, uint32_t *limit);

/* Describe and clear the current Python exception as "what: Type: text",
 * NUL-terminated and cut at a UTF-8 boundary to fit cap.  GIL held. */
void agent_py_error(const char *what, char *buf, size_t cap);

/* Resident set size of this process in bytes (0 if unknown); no GIL. */
uint64_t agent_read_rss(void);

/* Answer SNAPSHOT_REQ on s (snap.c) with its frame flags
 * (WIRE_SNAPSHOT_SAMPLED: the sampler's estimates, with
 * WIRE_SNAPSHOT_ESTIMATES all four of them): called on the control thread
 * without the GIL, takes it to copy the traces, writes the reply stream
 * without it.  0 to go on (also after an ERROR reply), 1 to detach,
 * -errno when the data pipe failed. */
int agent_snapshot(struct agent_sess *s, uint16_t flags);

/* Put the raw-allocator guard (rawguard.c) under tracemalloc before
 * trmtop starts it, and take it away after trmtop has stopped it.  GIL
 * held. */
void agent_rawguard_install(void);
void agent_rawguard_remove(void);

/* PyMemAllocatorEx and PyMem_{Get,Set}Allocator (PEP 445): stable since
 * 3.5 but outside the limited API, so declared here. */
typedef struct {
	void *ctx;
	void *(*malloc)(void *ctx, size_t size);
	void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
	void *(*realloc)(void *ctx, void *ptr, size_t new_size);
	void (*free)(void *ctx, void *ptr);
} pem_alloc;

void PyMem_GetAllocator(int domain, pem_alloc *allocator);
void PyMem_SetAllocator(int domain, pem_alloc *allocator);

/* ---- the sampler (sample.c, docs/DESIGN.md §4.8) ---- */

/* One frame of a sampled traceback: a reference to its filename. */
struct agent_sframe {
	PyObject *filename;
	uint32_t lineno;
};

/* An interned sampled traceback and its estimates (bytes; blocks in
 * 16.16 fixed point).  Alive while the sampler runs; read the totals
 * through agent_sample_rows. */
struct agent_stb {
	uint64_t hash;
	uint64_t inuse_bytes, inuse_blocks, alloc_bytes, alloc_blocks;
	uint64_t mod; /* the sampler's change count at its last change (0:
			 never counted) */
	struct agent_stb *newer, *older; /* the change list, most recently
					    changed first */
	uint32_t idx; /* dense for a sampler run: 0 "<no Python frame>",
			 1.. the others in the order they were made */
	uint32_t n;
	struct agent_sframe f[]; /* most recent call first */
};

struct agent_sample_stats {
	uint64_t size;     /* 0: the sampler does not run */
	uint32_t nframe;
	uint64_t samples;  /* sampled blocks held */
	uint64_t memory;   /* the sampler's own */
	uint64_t dropped;  /* samples dropped at the cap */
	bool capped;
};

struct agent_sample_row {
	const struct agent_stb *tb;
	uint64_t inuse_bytes, inuse_blocks, alloc_bytes, alloc_blocks;
};

/* Start sampling one allocation per size bytes (0: 512 KiB) with nframe
 * frames, the sampler's memory capped at max_memory (0: 64 MiB); a
 * running sampler is left as it is.  GIL held; 0 or -1 with an
 * exception set. */
int agent_sample_start(uint64_t size, uint32_t nframe, uint64_t max_memory);
/* Stop it, restore the allocators (unless something sits on top of the
 * hooks: a later call, once it has gone, does) and forget every sample.
 * GIL held. */
void agent_sample_stop(void);
/* Is the sampler recording?  Any thread. */
bool agent_sample_on(void);
/* Its settings and counters (all 0 when it does not run).  Any thread. */
void agent_sample_stats(struct agent_sample_stats *st);
/* The tracebacks with a non-zero allocated estimate (in use or not any
 * more), the "<no Python frame>" one included, in *rows (malloc'd, the
 * caller frees; blocks rounded to the nearest whole block, at least 1
 * for a non-zero estimate of bytes).  The tracebacks stay valid while
 * the caller holds the GIL.  0 or -ENOMEM. */
int agent_sample_rows(struct agent_sample_row **rows, size_t *n);

/* Where the sampler stood for a table reply (snap.c): its run (epoch,
 * from 1; a restart makes a new one) and its change count. */
struct agent_sample_mark {
	uint64_t epoch, seq;
	uint32_t nidx; /* tracebacks' idx are below this */
};

/* The rows changed since *since, most recently changed first: when
 * since->epoch is the running sampler's, those changed after since->seq,
 * else all of them (the tracebacks with a non-zero allocated estimate).
 * Blocks stay in 16.16 fixed point (agent_sample_whole_blocks).  At most
 * cap rows go to rows (the caller's buffer: nothing is allocated); *n is
 * how many changed, *now where the sampler stands.  0, or -ENOSPC when
 * *n > cap (rows unspecified: grow it and call again), -ESRCH when the
 * sampler does not run.  The tracebacks stay valid while the caller holds
 * the GIL.  Any thread; takes the sampler's lock for O(changed rows). */
int agent_sample_changed(const struct agent_sample_mark *since,
			 struct agent_sample_row *rows, size_t cap, size_t *n,
			 struct agent_sample_mark *now);
/* 16.16 fixed-point blocks to whole ones, to the nearest (a non-zero
 * estimate stays non-zero: every sample counts at least one block). */
uint64_t agent_sample_whole_blocks(uint64_t fixed);

/* The table replies of one connection (snap.c); freed with it.  NULL
 * accepted. */
struct agent_tab;
void agent_tab_free(struct agent_tab *t);

/* ---- the Python stack for the sampler (pyframes.c) ---- */

enum {
	AGENT_FRAMES_API,     /* 3.8-3.10: the frame API, which creates
				 nothing there */
	AGENT_FRAMES_API_NEW, /* the frame API, creating frame objects (an
				 unknown 3.11+, or a check failed) */
	AGENT_FRAMES_DIRECT,  /* the interpreter's frames read directly */
};

/* How this interpreter's stack is walked: decided at the first call
 * (GIL held, on a thread that runs no Python: the control thread), the
 * same afterwards.  Returns an AGENT_FRAMES_* value. */
int agent_frames_init(void);

/* Up to max frames of the stack of ts, most recent first, into f; the
 * filenames are borrowed (alive while the frames are: until the caller's
 * allocator hook returns).  Only for AGENT_FRAMES_DIRECT; ts is this
 * thread's thread state and the current one (it holds the GIL).  Reads
 * only: creates no object, calls no Python code, takes no lock. */
uint32_t agent_frames_walk(PyThreadState *ts, struct agent_sframe *f,
			   uint32_t max);

/* Start the control thread for s with every signal blocked.  0 or
 * -errno (then the caller still owns s). */
int agent_ctl_spawn(struct agent_sess *s);

#endif
