/* wait.c - every wait of trmtop on a target and its agent, and the one
 * way they end early: an aborting signal (SIGINT, SIGTERM, SIGHUP) read
 * from the caller's signalfd (struct trm_abort, abort.h), polled
 * alongside whatever is waited for.  Also how a cancelled session
 * ends (bounded) and how a vanished agent is reported.  inject.h,
 * "Waiting". */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "trmtop/abort.h"
#include "trmtop/inject.h"
#include "trmtop/target.h"
#include "trmtop/util.h"
#include "trmtop/wire.h"

/* Has an aborting signal arrived (after `seen` of them)?  Reads the
 * signalfd: a SIGCHLD it holds is consumed, nothing else is lost. */
static int aborted(struct trm_abort *ab, int seen)
{
	(void)trm_abort_check(ab);
	return ab && ab->count > seen;
}

/* inject_wait_fd, ending on the (seen+1)-th aborting signal. */
static int wait_fd(struct trm_abort *ab, int fd, short events, int timeout_ms,
		   int seen)
{
	uint64_t deadline = timeout_ms < 0 ? 0
		: util_now_ns() + (uint64_t)timeout_ms * 1000000u;
	int sfd = trm_abort_fd(ab);

	for (;;) {
		struct pollfd p[2] = { { fd, events, 0 }, { sfd, POLLIN, 0 } };
		int wait = -1, n;

		if (aborted(ab, seen))
			return -TRM_EINTR;
		if (timeout_ms >= 0) {
			uint64_t now = util_now_ns();

			if (now >= deadline)
				return 0;
			wait = (int)((deadline - now + 999999u) / 1000000u);
		}
		n = poll(p, 2, wait);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0 || p[1].revents)
			continue; /* the signal first: checked at the top */
		if (p[0].revents)
			return 1;
	}
}

int inject_wait_fd(struct trm_abort *ab, int fd, short events, int timeout_ms)
{
	return wait_fd(ab, fd, events, timeout_ms, 0);
}

int inject_sleep(struct trm_abort *ab, int ms)
{
	int rc = wait_fd(ab, -1, 0, ms, 0);

	return rc < 0 ? rc : 0;
}

int inject_wake_on_signal(void *ab)
{
	return trm_abort_check(ab) != 0;
}

int inject_agent_gone(pid_t pid, struct trm_err *err)
{
	if (target_exited(pid, 500))
		return trm_err_set(err, -TRM_EAGENT,
				   "pid %d: the agent went away: the target exited",
				   (int)pid);
	return trm_err_set(err, -TRM_EAGENT,
			   "pid %d: the agent went away (the target may have exited)",
			   (int)pid);
}

int inject_cancel(struct inject_conn *c, int timeout_ms)
{
	uint64_t deadline = util_now_ns() + (uint64_t)timeout_ms * 1000000u;
	int seen = c->abort ? c->abort->count : 0;
	uint8_t hdr[WIRE_HDR_SIZE];
	char junk[16384];
	int rc = 0, n;

	if (c->ctl_fd >= 0) {
		/* DETACH, so the agent ends the session even if some process
		 * of the target still holds a copy of the pipe's write end */
		n = wire_enc_empty(hdr, sizeof(hdr), WIRE_DETACH);
		if (n > 0 && wire_write_all(c->ctl_fd, hdr, (size_t)n) == -EPIPE)
			rc = -TRM_EAGENT;
		close(c->ctl_fd);
		c->ctl_fd = -1;
	}
	/* what the agent still sends is dropped; its end of the data pipe
	 * closes when the session has ended (tracing undone) */
	while (rc == 0 && c->data_fd >= 0) {
		uint64_t now = util_now_ns();
		ssize_t r;

		if (now >= deadline) {
			rc = -TRM_ETIMEOUT;
			break;
		}
		rc = wait_fd(c->abort, c->data_fd, POLLIN,
			     (int)((deadline - now) / 1000000u) + 1, seen);
		if (rc < 0)
			break; /* a second signal: no more waiting */
		if (rc == 0)
			continue;
		rc = 0;
		r = read(c->data_fd, junk, sizeof(junk));
		if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
			break;
	}
	if (c->data_fd >= 0) {
		close(c->data_fd);
		wire_reader_fini(&c->rd);
		c->data_fd = -1;
	}
	return rc;
}
