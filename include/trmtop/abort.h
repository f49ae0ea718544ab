/* abort.h - how a wait of trmtop learns that it should stop: a signalfd
 * owned by the caller (the CLI), read without blocking, and what it has
 * said so far.
 *
 * The caller blocks the aborting signals (SIGINT, SIGTERM, SIGHUP) and
 * SIGCHLD, opens one signalfd for them (non-blocking) and puts it in a
 * struct trm_abort it owns; it passes a pointer down to every layer that
 * waits (inject_opts.abort, ptrace_seize, inject_wait_fd ...).  Those poll
 * ab->fd alongside what they wait for and read it only through
 * trm_abort_check, so the first aborting signal and how many came are
 * known to all of them.  No process-wide state: two conversations in one
 * process may share one trm_abort, or have one each. */
#ifndef TRMTOP_ABORT_H
#define TRMTOP_ABORT_H

struct trm_abort {
	int fd;        /* the signalfd (SFD_NONBLOCK); -1: none, only what
			  was read already counts */
	int first_sig; /* the first aborting signal read; 0: none yet */
	int count;     /* how many aborting signals have been read */
};

#define TRM_ABORT_INIT { -1, 0, 0 }

/* Read ab->fd until it is empty, without blocking: a SIGCHLD it holds is
 * consumed (it only wakes a poll), any other signal is an aborting one
 * (the first is kept, each is counted).  Returns ab->first_sig (0: no
 * aborting signal so far).  ab may be NULL: 0. */
int trm_abort_check(struct trm_abort *ab);

/* The fd to poll alongside a wait: ab->fd, or -1 (also for NULL). */
int trm_abort_fd(const struct trm_abort *ab);

#endif
