/* conn.c - the connection to the agent once the bootstrap has run: its
 * greeting (HELLO, checked against this session), the one mapping of a failed read of the agent's replies to an
 * error (inject_read_error), and closing. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "inject_int.h"

int inject_read_error(const struct inject_conn *c, int rc, const char *what,
		      struct trm_err *err)
{
	int pid = (int)c->target.pid;

	if (rc == 0)
		return inject_agent_gone(c->target.pid, err);
	if (rc == -EINTR)
		return trm_err_set(err, -TRM_EINTR, "pid %d: interrupted waiting for "
				   "the agent's %s", pid, what);
	if (rc == -ETIMEDOUT)
		return trm_err_set(err, -TRM_ETIMEOUT, "pid %d: no %s from the agent",
				   pid, what);
	return trm_err_set(err, rc == -EPROTO ? -TRM_EPROTO : rc,
			   "pid %d: reading from the agent: %s", pid, strerror(-rc));
}

/* The agent's ERROR frame e as an error: code, "pid N: agent: <text>". */
static int agent_said(const struct inject_conn *c, int code,
		      const struct wire_error *e, struct trm_err *err)
{
	return trm_err_set(err, code, "pid %d: agent: %s", (int)c->target.pid,
			   e->text);
}

int inject_wait_hello(struct attach *a, struct inject_conn *c, int timeout_ms,
		      struct trm_err *err)
{
	struct wire_msg msg;
	struct wire_error e;
	int rc;

	rc = wire_read_frame(&c->rd, &msg, timeout_ms);
	if (rc == -ETIMEDOUT)
		return -TRM_ETIMEOUT; /* no error: the caller waits on */
	if (rc != 1)
		return inject_read_error(c, rc, "greeting", err);
	if (msg.type == WIRE_ERROR && wire_dec_error(&msg, &e) == 0) {
		if (e.code == WIRE_ERR_ENDING)
			return agent_said(c, -EAGAIN, &e, err);
		rc = agent_said(c, -TRM_EAGENT, &e, err);
		if (e.code == WIRE_ERR_BUSY)
			trm_err_hint(err, "another trmtop is connected to this process");
		return rc;
	}
	if (msg.type != WIRE_HELLO || wire_dec_hello(&msg, &c->hello) < 0)
		return trm_err_set(err, -TRM_EPROTO, "pid %d: bad greeting from the agent",
				   (int)a->pid);
	if ((c->hello.proto >> 16) != (WIRE_PROTO_VERSION >> 16))
		return trm_err_set(err, -TRM_EPROTO,
				   "pid %d: agent speaks protocol %#x, trmtop %#x",
				   (int)a->pid, c->hello.proto, WIRE_PROTO_VERSION);
	if (c->hello.token != a->token)
		return trm_err_set(err, -TRM_EPROTO, "pid %d: greeting for another session",
				   (int)a->pid);
	a->hello = 1;
	return 0;
}

void inject_close(struct inject_conn *c)
{
	uint8_t buf[WIRE_HDR_SIZE];
	int n;

	if (c->ctl_fd >= 0) {
		n = wire_enc_empty(buf, sizeof(buf), WIRE_DETACH);
		if (n > 0)
			(void)wire_write_all(c->ctl_fd, buf, (size_t)n);
		close(c->ctl_fd);
	}
	if (c->data_fd >= 0) {
		close(c->data_fd);
		wire_reader_fini(&c->rd);
	}
	c->ctl_fd = c->data_fd = -1;
}
