/* inject_int.h - private to the inject module and its unit tests: the
 * state of one attach (struct attach) and the seams between the files
 * that do its jobs:
 *
 *   preflight.c    is pid a supported CPython we may trace; why not
 *   bootstrap.c    the text a bootstrap runs, and writing it into the page
 *   resources.c    what an attach makes in the target (private page, memfd,
 *                  pipes, the PEP 768 script) and takes back (the undo
 *                  path of a held thread, reclaim after giving up)
 *   frames.c       a held thread's native stack: safe to run Python here?
 *                  a bootstrap running here?
 *   pending.c      attach path: Py_AddPendingCall on the main thread
 *   hijack.c       attach path: a thread parked in a syscall runs it
 *   pep768_path.c  attach path: CPython 3.14's remote exec (pep768.c
 *                  writes the request)
 *   attach.c       symbols and gadgets, seizing, stages, the attach loop
 *                  over the paths and its retry (inject_attach)
 *   conn.c         the connection once attached: HELLO, requests, close
 *   wait.c         every wait, and how an aborting signal ends it */
#ifndef TRMTOP_INJECT_INT_H
#define TRMTOP_INJECT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "trmtop/inject.h"
#include "trmtop/ptrace.h"

/* ---- the bootstrap text (bootstrap.c) --------------------------------- */

/* What one run of the bootstrap is told: the fds trmtop created in the
 * target (-1: none), the pipes' inodes, the session token and the private
 * page holding the text (0: none). */
struct inject_boot {
	int memfd;          /* the agent's bytes */
	int script_fd;      /* the memfd holding this text (PEP 768) */
	int ctl_r, ctl_w;   /* trmtop -> agent */
	int data_r, data_w; /* agent -> trmtop */
	unsigned long ctl_ino, data_ino;
	uint64_t token;
	uint64_t page, page_len;
};

/* Write the bootstrap script for one run into buf (NUL-terminated): it
 * loads the agent from b->memfd if not loaded yet (after checking it is
 * still ours) and calls the agent's start(), which closes the memfds and
 * the target's copies of trmtop's pipe ends and unmaps the page.  Returns
 * its length, or -ENOSPC. */
int inject_bootstrap_text(char *buf, size_t cap, const struct inject_boot *b);

/* The text trmtop leaves to a pending call it queued and then gave up on,
 * once it has closed the fds the call was told about: it names no fd (the
 * numbers may be the application's by the time it runs) and only asks the
 * agent, if loaded, to unmap [page, page + page_len), the page holding the
 * text itself.  Returns its length, or -ENOSPC. */
int inject_bootstrap_void_text(char *buf, size_t cap, uint64_t token,
			       uint64_t page, uint64_t page_len);

/* ---- one attach ---------------------------------------------------------- */

#define PAGE_LEN 32768u         /* private page: call stack, then text */
#define PAGE_TEXT_OFF 24576u    /* bootstrap text and scratch from here:
				   below, room for a call and its signal
				   frame with the largest XSAVE state */
#define PAGE_SCRATCH_OFF 31744u /* pipe fds, memfd name */
#define SEIZE_TIMEOUT_MS 2000
#define CALL_TIMEOUT_MS 1000
#define GIL_TIMEOUT_MS 60000

struct syms {
	raddr_t add_pending, run_simple, gil_ensure, gil_release, gil_check;
	raddr_t libc_syscall;
	/* for the undo steps of a held thread (0: not found, no undo) */
	raddr_t libc_munmap, libc_close, libc_wmemcpy;
	/* pthread_spin_init(p, 0) stores a 32-bit 0 at p: the undo step
	 * that withdraws a PEP 768 request (pep768_path.c) */
	raddr_t libc_spin_init;
};

struct attach {
	pid_t pid;
	const struct inject_opts *opts;
	struct trm_abort *abort; /* opts->abort */
	struct elf_proc *ep;
	struct inject_target *tgt;
	struct syms sym;
	uint64_t token;
	uint64_t t0;         /* when this attach started */
	uint64_t deadline;   /* when it gives up (opts->attach_timeout_ms) */
	/* resources created in the target */
	int have_res;
	int t_memfd, t_ctl_r, t_ctl_w, t_data_r, t_data_w;
	int t_script;        /* memfd holding the script (PEP 768), or -1 */
	unsigned long ctl_ino, data_ino;
	int ctl_fd, data_fd; /* ours */
	int queued;          /* a pending call is queued */
	raddr_t queued_page; /* ... its text is in this page (PAGE_LEN) */
	int script_taken;    /* a PEP 768 run of the bootstrap may be under way */
	uint64_t ns_held;    /* threads held by ptrace, in all */
	int reader;          /* c->rd is set up on data_fd */
	int hello;           /* the agent's HELLO has been read */
	int hijack_tried;    /* threads the last hijack round stopped */
	char why[256];       /* why no thread could be hijacked ("" none) */
	struct ptrace_gadgets gadgets; /* what remote calls return through */
	int have_gadgets;
};

/* ---- attach.c: what the paths share ------------------------------------ */

/* A progress line (opts->verbose) up to opts->progress. */
void inject_progress(const struct attach *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The time since a->t0 and stage, up to opts->progress (opts->trace). */
void inject_trace(const struct attach *a, const char *stage);
/* Stage `stage` of the attach is reached: trace it, hold there when a
 * test asks (TRMTOP_TEST_PAUSE), and stop on an aborting signal.
 * 0, or -TRM_EINTR with err set. */
int inject_stage(struct attach *a, const char *stage, struct trm_err *err);
/* -TRM_EINTR with "interrupted by SIGx" when an aborting signal came. */
int inject_check_abort(struct attach *a, struct trm_err *err);
/* For tests: TRMTOP_TEST_PAUSE=<stage> holds the attach at that stage
 * after announcing it on TRMTOP_TEST_PAUSE_FIFO, until an aborting
 * signal (-TRM_EINTR).  0 at any other stage. */
int inject_test_pause(struct trm_abort *ab, const char *stage);
/* Seize thread tid and hold it, with the refusals explained: -TRM_EUNSAFE
 * for a thread that is exiting or gone (another may do), -EPERM with the
 * kernel's reasons, -TRM_EEXITED.  Its remote calls are guarded when the
 * gadgets were found. */
int inject_seize(struct ptrace_thread *t, struct attach *a, pid_t tid,
		 struct trm_err *err);
/* Milliseconds left until deadline (0 when past). */
int inject_remaining_ms(uint64_t deadline);
/* Set up c->rd on our end of the data pipe, once there is one. */
void inject_ensure_reader(struct attach *a, struct inject_conn *c);

/* ---- the attach paths (pending.c, hijack.c, pep768_path.c) -------------
 *
 * Each gets the bootstrap to run in the target its own way, with the
 * resources of a (made on first use: inject_map_and_create).  One
 * contract for all:
 *
 *   INJECT_QUEUED     the bootstrap runs at the target's next safe point:
 *                     wait for the HELLO
 *   INJECT_RAN        it has run: the HELLO is in the pipe
 *   INJECT_CONNECTED  the path waited for the HELLO itself, and read it
 *   -TRM_EUNSAFE      not now (no thread fit, or it did not run in time
 *                     and was withdrawn): another path, or this one later
 *   other < 0         the attach fails (err says why)
 *
 * Each sets c->path (and c->via_tid) once it has got the bootstrap going.
 * On every return the threads it held are released and what it made and
 * did not hand over is taken back (inject_let_go). */
enum { INJECT_QUEUED = 0, INJECT_RAN = 1, INJECT_CONNECTED = 2 };

typedef int inject_path_fn(struct attach *a, struct inject_conn *c,
			   struct trm_err *err);
inject_path_fn inject_path_pep768;  /* 3.14+, when pep768_probe says so */
inject_path_fn inject_path_pending; /* when the main thread runs */
inject_path_fn inject_path_hijack;  /* one round over the parked threads
				       (sets a->hijack_tried, a->why) */

/* ---- preflight.c ---------------------------------------------------------- */

/* Check that pid is a supported CPython (no attach, no stop).  Fills t
 * and hands the opened ELF view of the process to the caller (*epp).
 * Errors: -ESRCH, -TRM_EEXITED, -TRM_ENOTPY, -TRM_EPYVER,
 * -TRM_EFREETHREAD, -TRM_ESTOPPED, -TRM_ETRACED, -EPERM (err->msg says
 * why). */
int inject_preflight(pid_t pid, struct inject_target *t, struct elf_proc **epp,
		     struct trm_err *err);
/* Why the kernel refused pid (EPERM or EACCES from ptrace or /proc), as
 * far as /proc shows: returns code with err set. */
int inject_explain_eperm(pid_t pid, int code, struct trm_err *err);

/* ---- bootstrap.c ---------------------------------------------------------- */

/* The bootstrap text for a's resources and page into buf. */
int inject_bootstrap_for(const struct attach *a, raddr_t page,
			 uint64_t page_len, char *buf, size_t cap);
/* Through the held thread t: the page and resources
 * (inject_map_and_create: *page, *created), stage "remote", then the
 * bootstrap text written into the page (at PAGE_TEXT_OFF: *text).  0 or
 * the error; what was made is taken back by inject_let_go. */
int inject_place_bootstrap(struct ptrace_thread *t, struct attach *a,
			   raddr_t *page, int *created, raddr_t *text,
			   struct trm_err *err);

/* ---- resources.c ------------------------------------------------------------ */

/* A syscall in the held thread t (libc's syscall()). */
int inject_rsys(struct ptrace_thread *t, struct attach *a, long nr,
		uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		uint64_t a5, int64_t *ret, struct trm_err *err);
/* Map a private page (PAGE_LEN) in the target through thread t, with an
 * undo step that unmaps it. */
int inject_map_page(struct ptrace_thread *t, struct attach *a, raddr_t *page,
		    struct trm_err *err);
/* Create the memfd holding the agent and the two pipes in the target, and
 * open our ends.  Thread t is held; page is the private page. */
int inject_setup_resources(struct ptrace_thread *t, struct attach *a,
			   raddr_t page, struct trm_err *err);
/* Put the bootstrap into a memfd of its own in the target (PEP 768 runs
 * a script from a path, /proc/self/fd/N). */
int inject_setup_script(struct ptrace_thread *t, struct attach *a, raddr_t page,
			struct trm_err *err);
/* Through the held thread t: the bootstrap's private page, and the memfd
 * and pipes if this attach has none yet (*created then says so). */
int inject_map_and_create(struct ptrace_thread *t, struct attach *a,
			  raddr_t *page, int *created, struct trm_err *err);
/* The one way a path lets go of its held thread t: when take_back, what
 * it made and did not hand over is taken back first (page, and the fds
 * when it created them: by the thread's own undo steps once released, or
 * else by remote calls now); then t is released (its registers restored)
 * and the time it was held added to a->ns_held. */
void inject_let_go(struct ptrace_thread *t, struct attach *a, int take_back,
		   int created, raddr_t page);
/* The attach gives up having made the memfd and pipes in the target: take
 * them back if no bootstrap can be using them (best effort). */
void inject_reclaim(struct attach *a);

/* ---- frames.c ---------------------------------------------------------------- */

/* Is pc in code where running Python would deadlock or corrupt (the
 * allocator, the loader, the GIL, locks, fork, finalisation)? */
int inject_unsafe_pc(struct attach *a, raddr_t pc);
/* Is the held thread t, parked in a syscall, safe to run Python on: it
 * runs Python code, and nothing on its stack is unsafe?  1, or 0 with
 * why (whylen bytes) saying why not. */
int inject_safe_stack(struct attach *a, struct ptrace_thread *t, char *why,
		      size_t whylen);
/* Is a bootstrap running on the held thread t (also 1 when we cannot
 * tell)? */
int inject_bootstrap_running(struct attach *a, struct ptrace_thread *t);

/* ---- conn.c ---------------------------------------------------------------- */

/* Read the agent's HELLO (at most timeout_ms): 0 (a->hello set),
 * -TRM_ETIMEOUT (err untouched), -EAGAIN (the previous session is still
 * ending), -TRM_EINTR, -TRM_EAGENT, -TRM_EPROTO. */
int inject_wait_hello(struct attach *a, struct inject_conn *c, int timeout_ms,
		      struct trm_err *err);

#endif
