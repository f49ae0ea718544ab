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
	struct wire_reader rd;
	struct wire_intern *tables; /* what this connection has sent; NULL
				       until the first snapshot */
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

/* Answer SNAPSHOT_REQ on s (snap.c): called on the control thread without
 * the GIL, takes it to copy the traces, writes the reply stream without
 * it.  0 to go on (also after an ERROR reply), 1 to detach, -errno when
 * the data pipe failed. */
int agent_snapshot(struct agent_sess *s);

/* Put the raw-allocator guard (rawguard.c) under tracemalloc before
 * trmtop starts it, and take it away after trmtop has stopped it.  GIL
 * held. */
void agent_rawguard_install(void);
void agent_rawguard_remove(void);

/* Start the control thread for s with every signal blocked.  0 or
 * -errno (then the caller still owns s). */
int agent_ctl_spawn(struct agent_sess *s);

#endif
