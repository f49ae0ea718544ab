/* pep768.c - CPython 3.14+ remote execution (PEP 768) without ptrace.
 *
 * Mirrors send_exec_to_proc_handle() of CPython 3.14 Python/remote_debugging.c.
 * The version-specific part is reading _Py_DebugOffsets: each supported minor
 * version has its own copy of the table's layout (struct dbg_offsets_314)
 * and a decoder into the version-neutral struct pep_layout that the rest of
 * this file uses. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "trmtop/elf.h"
#include "trmtop/err.h"
#include "trmtop/target.h"

#include "pep768.h"

#define DEBUG_COOKIE "xdebugpy"
/* Bounds on list walks in a live process (lists may change under us). */
#define MAX_INTERPS 4096
#define MAX_TSTATES 65536

/* _Py_DebugOffsets of CPython 3.14 (Include/internal/pycore_debug_offsets.h
 * at v3.14.x), field for field; every field is a uint64_t.  Groups trmtop
 * does not use are kept as arrays of the right length so that the offsets
 * of the groups after them stay right.  The values of 3.14.7 (x86_64, GIL
 * build) are in the comments. */
struct dbg_offsets_314 {
	char cookie[8];          /* "xdebugpy" */
	uint64_t version;        /* PY_VERSION_HEX */
	uint64_t free_threaded;
	struct {
		uint64_t size;              /* sizeof(_PyRuntimeState) 316824 */
		uint64_t finalizing;        /* 784 */
		uint64_t interpreters_head; /* 808 */
	} runtime_state;
	struct {
		uint64_t size;         /* sizeof(PyInterpreterState) 226072 */
		uint64_t id;           /* 7280 */
		uint64_t next;         /* 7272 */
		uint64_t threads_head; /* 7344 */
		uint64_t threads_main; /* 7360 */
		uint64_t gc, imports_modules, sysdict, builtins, ceval_gil,
			gil_runtime_state, gil_runtime_state_enabled,
			gil_runtime_state_locked, gil_runtime_state_holder,
			code_object_generation, tlbc_generation;
	} interpreter_state;
	struct {
		uint64_t size;             /* sizeof(PyThreadState) 832 */
		uint64_t prev;             /* 0 */
		uint64_t next;             /* 8 */
		uint64_t interp;           /* 16 */
		uint64_t current_frame;    /* 72 */
		uint64_t thread_id;        /* 152 */
		uint64_t native_thread_id; /* 160 */
		uint64_t datastack_chunk;
		uint64_t status;
	} thread_state;
	uint64_t interpreter_frame[8];
	uint64_t code_object[11];
	uint64_t pyobject[2];
	uint64_t type_object[4];
	uint64_t tuple_object[3];
	uint64_t list_object[3];
	uint64_t set_object[4];
	uint64_t dict_object[3];
	uint64_t float_object[2];
	uint64_t long_object[3];
	uint64_t bytes_object[3];
	uint64_t unicode_object[4];
	uint64_t gc[2];
	uint64_t gen_object[4];
	uint64_t llist_node[2];
	struct {
		/* in PyThreadState: uintptr_t eval_breaker, 24 */
		uint64_t eval_breaker;
		/* in PyThreadState: _PyRemoteDebuggerSupport, 304 */
		uint64_t remote_debugger_support;
		/* in PyInterpreterState: int config.remote_debug, 8076 */
		uint64_t remote_debugging_enabled;
		/* in _PyRemoteDebuggerSupport: int32_t, 0 */
		uint64_t debugger_pending_call;
		/* in _PyRemoteDebuggerSupport: char[], 4 */
		uint64_t debugger_script_path;
		/* _Py_MAX_SCRIPT_PATH_SIZE, 512 */
		uint64_t debugger_script_path_size;
	} debugger_support;
};

_Static_assert(sizeof(struct dbg_offsets_314) == 760,
	       "3.14 _Py_DebugOffsets is 95 uint64_t after the cookie");
_Static_assert(offsetof(struct dbg_offsets_314, thread_state) == 176,
	       "3.14 thread_state group");
_Static_assert(offsetof(struct dbg_offsets_314, debugger_support) == 712,
	       "3.14 debugger_support group");

/* What this file needs, whatever the version: offsets in bytes. */
struct pep_layout {
	unsigned hexversion;
	uint64_t runtime_size;      /* sizeof(_PyRuntimeState) */
	uint64_t interpreters_head; /* in _PyRuntimeState */
	uint64_t interp_size;
	uint64_t interp_id;         /* int64_t */
	uint64_t interp_next;       /* pointer */
	uint64_t interp_threads_head;
	uint64_t interp_remote_debug; /* int config.remote_debug */
	uint64_t ts_size;
	uint64_t ts_next;
	uint64_t ts_native_id;      /* unsigned long */
	uint64_t ts_eval_breaker;   /* uintptr_t */
	uint64_t ts_pending_call;   /* int32_t, from the thread state */
	uint64_t ts_script_path;    /* char[], from the thread state */
	uint64_t script_path_size;
};

static void decode_314(const void *raw, struct pep_layout *l)
{
	const struct dbg_offsets_314 *d = raw;
	uint64_t rds = d->debugger_support.remote_debugger_support;

	l->hexversion = (unsigned)d->version;
	l->runtime_size = d->runtime_state.size;
	l->interpreters_head = d->runtime_state.interpreters_head;
	l->interp_size = d->interpreter_state.size;
	l->interp_id = d->interpreter_state.id;
	l->interp_next = d->interpreter_state.next;
	l->interp_threads_head = d->interpreter_state.threads_head;
	l->interp_remote_debug =
		d->debugger_support.remote_debugging_enabled;
	l->ts_size = d->thread_state.size;
	l->ts_next = d->thread_state.next;
	l->ts_native_id = d->thread_state.native_thread_id;
	l->ts_eval_breaker = d->debugger_support.eval_breaker;
	l->ts_pending_call = rds + d->debugger_support.debugger_pending_call;
	l->ts_script_path = rds + d->debugger_support.debugger_script_path;
	l->script_path_size = d->debugger_support.debugger_script_path_size;
}

struct pep_version {
	unsigned minor;
	size_t table_size;
	void (*decode)(const void *raw, struct pep_layout *l);
};

static const struct pep_version versions[] = {
	{ 14, sizeof(struct dbg_offsets_314), decode_314 },
};

#define TABLE_MAX sizeof(struct dbg_offsets_314)

/* One attached view: the layout and where the main interpreter is. */
struct pep_ctx {
	struct pep_layout l;
	raddr_t runtime;
	raddr_t interp; /* main interpreter (id 0) */
};

static int field_fits(uint64_t off, uint64_t len, uint64_t size)
{
	return off < size && len <= size - off;
}

/* The table must describe structures that hold the fields we touch. */
static int plausible(const struct pep_layout *l, size_t section_size)
{
	return l->runtime_size >= TABLE_MAX && l->runtime_size <= section_size &&
	       field_fits(l->interpreters_head, 8, l->runtime_size) &&
	       l->interp_size <= (1u << 24) &&
	       field_fits(l->interp_id, 8, l->interp_size) &&
	       field_fits(l->interp_next, 8, l->interp_size) &&
	       field_fits(l->interp_threads_head, 8, l->interp_size) &&
	       field_fits(l->interp_remote_debug, 4, l->interp_size) &&
	       l->ts_size <= (1u << 20) &&
	       field_fits(l->ts_next, 8, l->ts_size) &&
	       field_fits(l->ts_native_id, 8, l->ts_size) &&
	       field_fits(l->ts_eval_breaker, 8, l->ts_size) &&
	       field_fits(l->ts_pending_call, 4, l->ts_size) &&
	       l->script_path_size >= 2 && l->script_path_size <= 65536 &&
	       field_fits(l->ts_script_path, l->script_path_size, l->ts_size);
}

static int read_u64(pid_t pid, raddr_t addr, uint64_t *v)
{
	return target_read_mem(pid, addr, v, sizeof(*v));
}

/* len bytes of the target at addr into buf; on error "pid N: read WHAT"
 * in err. */
static int peek(pid_t pid, raddr_t addr, void *buf, size_t len,
		const char *what, struct trm_err *err)
{
	int rc = target_read_mem(pid, addr, buf, len);

	if (rc < 0)
		return trm_err_set(err, rc, "pid %d: read %s", (int)pid, what);
	return 0;
}

/* len bytes of buf into the target at addr; on error "pid N: write
 * WHAT" in err. */
static int poke(pid_t pid, raddr_t addr, const void *buf, size_t len,
		const char *what, struct trm_err *err)
{
	int rc = target_write_mem(pid, addr, buf, len);

	if (rc < 0)
		return trm_err_set(err, rc, "pid %d: write %s", (int)pid, what);
	return 0;
}

/* Read and check the offsets table, find the main interpreter. */
static int ctx_open(pid_t pid, struct elf_proc *ep,
		    const struct elf_pyinfo *py, struct pep_ctx *c,
		    struct trm_err *err)
{
	union {
		struct dbg_offsets_314 v314;
		unsigned char raw[TABLE_MAX];
	} tab;
	const struct pep_version *ver = NULL;
	size_t secsize, i;
	unsigned hex, minor, level;
	uint64_t head, id;
	raddr_t interp;
	int rc;

	memset(c, 0, sizeof(*c));
	if (py->free_threaded)
		return trm_err_set(err, -TRM_EFREETHREAD,
				   "pid %d: free-threaded build", (int)pid);
	rc = elf_find_section(ep, py->module, ".PyRuntime", &c->runtime,
			      &secsize);
	if (rc == -TRM_ENOSYM)
		return trm_err_set(err, -TRM_EPYVER,
				   "pid %d: Python %s has no .PyRuntime section "
				   "(PEP 768 needs 3.14+)",
				   (int)pid, py->version);
	if (rc < 0)
		return trm_err_set(err, rc, "pid %d: .PyRuntime", (int)pid);
	if (secsize < 24)
		return trm_err_set(err, -TRM_EPYVER,
				   "pid %d: .PyRuntime too small (%zu bytes)",
				   (int)pid, secsize);
	/* Cookie and version first: the table's length depends on them. */
	rc = target_read_mem(pid, c->runtime, tab.raw, 24);
	if (rc < 0)
		return trm_err_set(err, rc, "pid %d: read _Py_DebugOffsets at "
				   "%#llx", (int)pid,
				   (unsigned long long)c->runtime);
	if (memcmp(tab.v314.cookie, DEBUG_COOKIE, 8) != 0)
		return trm_err_set(err, -TRM_EPYVER,
				   "pid %d: no _Py_DebugOffsets cookie in "
				   ".PyRuntime", (int)pid);
	hex = (unsigned)tab.v314.version;
	minor = (hex >> 16) & 0xff;
	level = (hex >> 4) & 0xf;
	if (tab.v314.free_threaded != 0)
		return trm_err_set(err, -TRM_EFREETHREAD,
				   "pid %d: free-threaded build", (int)pid);
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if ((hex >> 24) == 3 && versions[i].minor == minor)
			ver = &versions[i];
	if (!ver)
		return trm_err_set(err, -TRM_EPYVER,
				   "pid %d: no PEP 768 layout for Python "
				   "%u.%u (version %#x)",
				   (int)pid, hex >> 24, minor, hex);
	/* Offsets may change between pre-releases (CPython itself refuses to
	 * mix them); trust the layout from the release candidates on. */
	if (level != 0xc && level != 0xf)
		return trm_err_set(err, -TRM_EPYVER,
				   "pid %d: Python pre-release %#x: PEP 768 "
				   "layout not known", (int)pid, hex);
	if (secsize < ver->table_size)
		return trm_err_set(err, -TRM_EPYVER,
				   "pid %d: .PyRuntime (%zu bytes) smaller than "
				   "the 3.%u offsets table", (int)pid, secsize,
				   minor);
	/* The whole table in one read. */
	rc = peek(pid, c->runtime, tab.raw, ver->table_size,
		  "_Py_DebugOffsets", err);
	if (rc < 0)
		return rc;
	ver->decode(tab.raw, &c->l);
	if (c->l.hexversion != hex || !plausible(&c->l, secsize))
		return trm_err_set(err, -TRM_EPYVER,
				   "pid %d: implausible _Py_DebugOffsets for "
				   "%#x (runtime size %llu, section %zu)",
				   (int)pid, hex,
				   (unsigned long long)c->l.runtime_size,
				   secsize);

	/* The main interpreter is the one with id 0, last in the list. */
	rc = peek(pid, c->runtime + c->l.interpreters_head, &head, sizeof(head),
		  "interpreters.head", err);
	if (rc < 0)
		return rc;
	interp = head;
	for (i = 0; interp != 0 && i < MAX_INTERPS; i++) {
		rc = read_u64(pid, interp + c->l.interp_id, &id);
		if (rc < 0)
			return trm_err_set(err, rc, "pid %d: read interpreter "
					   "at %#llx", (int)pid,
					   (unsigned long long)interp);
		if (id == 0)
			break;
		rc = peek(pid, interp + c->l.interp_next, &interp,
			  sizeof(interp), "interpreter list", err);
		if (rc < 0)
			return rc;
	}
	if (interp == 0 || i == MAX_INTERPS)
		return trm_err_set(err, -TRM_EBUSY,
				   "pid %d: no main interpreter (not "
				   "initialised yet or finalising)", (int)pid);
	c->interp = interp;
	return 0;
}

static int check_enabled(pid_t pid, const struct pep_ctx *c,
			 struct trm_err *err)
{
	int32_t on;
	int rc;

	rc = peek(pid, c->interp + c->l.interp_remote_debug, &on, sizeof(on),
		  "config.remote_debug", err);
	if (rc < 0)
		return rc;
	if (on != 1)
		return trm_err_set(err, -EPERM,
				   "pid %d: remote debugging is disabled "
				   "(PYTHON_DISABLE_REMOTE_DEBUG, -X "
				   "disable-remote-debug or a build "
				   "--without-remote-debug)", (int)pid);
	return 0;
}

/* Walk the main interpreter's thread states.  With want > 0, stop at the
 * one whose native id is want (*found = its address, 0 if none).  Else
 * collect native ids into tids. */
static int walk_threads(pid_t pid, const struct pep_ctx *c, pid_t want,
			raddr_t *found, pid_t *tids, size_t max, size_t *n,
			struct trm_err *err)
{
	raddr_t ts;
	uint64_t native;
	size_t i, got = 0;
	int rc, more = 0;

	if (found)
		*found = 0;
	rc = peek(pid, c->interp + c->l.interp_threads_head, &ts, sizeof(ts),
		  "threads.head", err);
	if (rc < 0)
		return rc;
	for (i = 0; ts != 0 && i < MAX_TSTATES; i++) {
		rc = read_u64(pid, ts + c->l.ts_native_id, &native);
		if (rc < 0)
			return trm_err_set(err, rc, "pid %d: read thread state "
					   "at %#llx", (int)pid,
					   (unsigned long long)ts);
		if (want > 0 && native == (uint64_t)want) {
			*found = ts;
			return 0;
		}
		if (want <= 0 && native != 0) {
			if (got < max)
				tids[got++] = (pid_t)native;
			else
				more = 1;
		}
		rc = peek(pid, ts + c->l.ts_next, &ts, sizeof(ts),
			  "thread list", err);
		if (rc < 0)
			return rc;
	}
	if (n)
		*n = got;
	if (more)
		return trm_err_set(err, -ENOSPC, "pid %d: more than %zu "
				   "thread states", (int)pid, max);
	return 0;
}

static int find_tstate(pid_t pid, const struct pep_ctx *c, pid_t tid,
		       raddr_t *ts, struct trm_err *err)
{
	int rc;

	if (tid <= 0)
		return trm_err_set(err, -EINVAL, "bad thread id %d", (int)tid);
	rc = walk_threads(pid, c, tid, ts, NULL, 0, NULL, err);
	if (rc < 0)
		return rc;
	if (*ts == 0)
		return trm_err_set(err, -ESRCH, "pid %d: thread %d has no "
				   "Python thread state in the main "
				   "interpreter", (int)pid, (int)tid);
	return 0;
}

int pep768_probe(pid_t pid, struct elf_proc *ep, const struct elf_pyinfo *py,
		 struct trm_err *err)
{
	struct pep_ctx c;
	int rc;

	rc = ctx_open(pid, ep, py, &c, err);
	if (rc < 0)
		return rc;
	return check_enabled(pid, &c, err);
}

int pep768_list_threads(pid_t pid, struct elf_proc *ep,
			const struct elf_pyinfo *py, pid_t *tids, size_t max,
			size_t *n, struct trm_err *err)
{
	struct pep_ctx c;
	int rc;

	*n = 0;
	rc = ctx_open(pid, ep, py, &c, err);
	if (rc < 0)
		return rc;
	return walk_threads(pid, &c, 0, NULL, tids, max, n, err);
}

/* The thread state of tid and its debugger_pending_call. */
static int read_pending(pid_t pid, struct pep_ctx *c, pid_t tid, raddr_t *ts,
			int32_t *pending, struct trm_err *err)
{
	int rc = find_tstate(pid, c, tid, ts, err);

	if (rc < 0)
		return rc;
	return peek(pid, *ts + c->l.ts_pending_call, pending, sizeof(*pending),
		    "debugger_pending_call", err);
}

int pep768_prepare(pid_t pid, struct elf_proc *ep, const struct elf_pyinfo *py,
		   pid_t tid, const char *script_path, struct pep768_req *rq,
		   struct trm_err *err)
{
	struct pep_ctx c;
	raddr_t ts;
	int32_t pending;
	size_t len;
	int rc;

	memset(rq, 0, sizeof(*rq));
	rc = ctx_open(pid, ep, py, &c, err);
	if (rc < 0)
		return rc;
	rc = check_enabled(pid, &c, err);
	if (rc < 0)
		return rc;
	len = strlen(script_path);
	if (len == 0 || len >= c.l.script_path_size || len >= sizeof(rq->path))
		return trm_err_set(err, -ENAMETOOLONG,
				   "script path of %zu bytes (1 to %llu "
				   "allowed)", len,
				   (unsigned long long)c.l.script_path_size - 1);
	rc = read_pending(pid, &c, tid, &ts, &pending, err);
	if (rc < 0)
		return rc;
	if (pending != 0)
		return trm_err_set(err, -TRM_EBUSY,
				   "pid %d: a remote-exec request is already "
				   "pending on thread %d", (int)pid, (int)tid);
	rq->pid = pid;
	rq->path_at = ts + c.l.ts_script_path;
	rq->pending_at = ts + c.l.ts_pending_call;
	rq->breaker_at = ts + c.l.ts_eval_breaker;
	memcpy(rq->path, script_path, len + 1);
	rq->len = len;
	return 0;
}

int pep768_commit(const struct pep768_req *rq, struct trm_err *err)
{
	int32_t pending = 1;
	uint64_t breaker;
	int rc;

	/* Path first: the thread reads it only once pending_call is 1. */
	rc = poke(rq->pid, rq->path_at, rq->path, rq->len + 1,
		  "debugger_script_path", err);
	if (rc < 0)
		return rc;
	rc = poke(rq->pid, rq->pending_at, &pending, sizeof(pending),
		  "debugger_pending_call", err);
	if (rc < 0)
		return rc;
	/* No remote atomic OR: read, OR, write back, as CPython does.  Keep
	 * the window short and skip the write when the bit is already set. */
	rc = peek(rq->pid, rq->breaker_at, &breaker, sizeof(breaker),
		  "eval_breaker", err);
	if (rc < 0)
		return rc;
	if (breaker & PEP768_EVAL_PLEASE_STOP_BIT)
		return 0;
	breaker |= PEP768_EVAL_PLEASE_STOP_BIT;
	return poke(rq->pid, rq->breaker_at, &breaker, sizeof(breaker),
		    "eval_breaker", err);
}

int pep768_request(pid_t pid, struct elf_proc *ep, const struct elf_pyinfo *py,
		   pid_t tid, const char *script_path, struct trm_err *err)
{
	struct pep768_req rq;
	int rc = pep768_prepare(pid, ep, py, tid, script_path, &rq, err);

	return rc < 0 ? rc : pep768_commit(&rq, err);
}

int pep768_cancel(pid_t pid, struct elf_proc *ep, const struct elf_pyinfo *py,
		  pid_t tid, struct trm_err *err)
{
	struct pep_ctx c;
	raddr_t ts;
	int32_t pending;
	int rc;

	rc = ctx_open(pid, ep, py, &c, err);
	if (rc < 0)
		return rc;
	rc = read_pending(pid, &c, tid, &ts, &pending, err);
	if (rc < 0)
		return rc;
	if (pending != 1)
		return trm_err_set(err, -EALREADY,
				   "pid %d: no request pending on thread %d",
				   (int)pid, (int)tid);
	pending = 0;
	return poke(pid, ts + c.l.ts_pending_call, &pending, sizeof(pending),
		    "debugger_pending_call", err);
}
