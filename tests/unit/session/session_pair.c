/* session_pair.c - two sessions to two live targets at once, in one
 * process, driven by one poll loop (session.h, non-blocking requests).
 * Run by tests/e2e/test_session.py, which compares the snapshots with the
 * targets' own tracemalloc.
 *
 *   session_pair [--start N] PID1 OUT1.trm PID2 OUT2.trm
 *
 * Opens a session to each target (one after the other: attaching
 * blocks), then, with both requests in flight each time and one poll
 * loop stepping whichever session is readable:
 *   1. STATS on both;
 *   2. with --start N: START (N frames, KEEP: tracing stays on after the
 *      sessions end) on both;
 *   3. SNAPSHOT_REQ on both, into two snapshots written to OUT1, OUT2.
 * For the snapshots, the loop steps neither session until both agents
 * have begun to answer, and each step reads one frame (step_frames 1),
 * so that the steps interleave whatever the timing.  Prints one JSON object on stdout: per session its pid, the
 * tracing found, the steps each request took, the snapshot's traces and
 * total size; and "interleaved": the snapshot steps of one session came
 * between those of the other while both were in flight.  Exit 0, or 1
 * with a message on stderr. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trmtop/session.h"
#include "trmtop/snapshot.h"
#include "trmtop/wire.h"

#define N 2
#define LOOP_TIMEOUT_MS 120000

struct pair {
	pid_t pid;
	const char *out;
	struct session *s;
	struct snapshot *snap;
	int steps[4]; /* per stage */
	struct wire_stats stats;
	struct wire_state state;
};

static int fail(const struct pair *p, const struct trm_err *err)
{
	fprintf(stderr, "session_pair: pid %d: %s\n", p ? (int)p->pid : 0,
		err->msg[0] ? err->msg : trm_strerror(err->code));
	return 1;
}

/* Send req to every session, then step them in one poll loop until all
 * are done.  gate: step none until every fd is readable. *switches:
 * how often the step sequence passed from one session to the other while
 * both were in flight. */
static int run_all(struct pair *p, const struct session_req *req, int stage,
		   int gate, int *switches)
{
	struct trm_err err = { 0 };
	int done[N] = { 0 }, again[N] = { 0 }, seen[N] = { 0 };
	int left = N, last = -1, i, rc;

	for (i = 0; i < N; i++) {
		struct session_req r = *req;

		if (r.op == SESSION_OP_SNAPSHOT)
			r.into = p[i].snap;
		if (session_request_async(p[i].s, &r, &err) < 0)
			return fail(&p[i], &err);
	}
	if (switches)
		*switches = 0;
	while (left) {
		struct pollfd pfd[N];
		int wait = LOOP_TIMEOUT_MS, n;

		for (i = 0; i < N; i++) {
			pfd[i].fd = done[i] || (gate && seen[i]) ? -1
				    : session_fd(p[i].s);
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
			if (again[i])
				wait = 0;
		}
		n = poll(pfd, N, wait);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("session_pair: poll");
			return 1;
		}
		if (n == 0 && wait) {
			fprintf(stderr, "session_pair: no reply within %d s\n",
				LOOP_TIMEOUT_MS / 1000);
			return 1;
		}
		if (gate) {
			/* wait for the others; what is readable stays so */
			for (i = 0, n = 0; i < N; i++) {
				seen[i] |= pfd[i].revents != 0;
				n += seen[i];
			}
			if (n < N)
				continue;
			gate = 0;
			for (i = 0; i < N; i++)
				pfd[i].revents = POLLIN;
		}
		for (i = 0; i < N; i++) {
			if (done[i] || (!pfd[i].revents && !again[i]))
				continue;
			rc = session_step(p[i].s, &err);
			if (rc < 0)
				return fail(&p[i], &err);
			p[i].steps[stage]++;
			if (switches && last >= 0 && last != i && !done[last])
				++*switches;
			last = i;
			again[i] = rc == SESSION_AGAIN;
			if (rc == SESSION_DONE) {
				done[i] = 1;
				left--;
			}
		}
	}
	return 0;
}

static void fill_meta(struct pair *p)
{
	const struct inject_conn *c = session_conn(p->s);
	struct snapshot_meta *m = snapshot_meta(p->snap);
	struct timespec ts;

	m->pid = (int32_t)p->pid;
	/* truncation is fine for metadata */
	memcpy(m->executable, c->target.exe, sizeof(m->executable) - 1);
	m->executable[sizeof(m->executable) - 1] = '\0';
	memcpy(m->python_version, c->target.py.version,
	       sizeof(m->python_version) - 1);
	m->python_version[sizeof(m->python_version) - 1] = '\0';
	if (gethostname(m->host, sizeof(m->host)) < 0)
		m->host[0] = '\0';
	m->host[sizeof(m->host) - 1] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	m->time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int save(const struct pair *p)
{
	struct trm_err err = { 0 };
	FILE *f = fopen(p->out, "wb");
	int rc;

	if (!f) {
		fprintf(stderr, "session_pair: %s: %s\n", p->out, strerror(errno));
		return 1;
	}
	rc = snapshot_write_trm(p->snap, f, &err);
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc < 0) {
		fprintf(stderr, "session_pair: %s: %s\n", p->out,
			err.msg[0] ? err.msg : strerror(-rc));
		return 1;
	}
	return 0;
}

static const char *tracing_word(unsigned t)
{
	return t == WIRE_TRACING_TRMTOP ? "trmtop"
	       : t == WIRE_TRACING_APPLICATION ? "application" : "off";
}

int main(int argc, char **argv)
{
	/* one frame a step: a reply of a few frames already takes several
	 * steps, and the two sessions' steps interleave */
	struct session_opts so = { .attach_timeout_ms = 5000, .step_frames = 1 };
	struct pair p[N];
	struct trm_err err = { 0 };
	struct session_req req;
	unsigned start = 0;
	int switches = 0, rc = 1, i, a = 1;

	memset(p, 0, sizeof(p));
	if (argc > 2 && strcmp(argv[1], "--start") == 0) {
		start = (unsigned)atoi(argv[2]);
		a = 3;
	}
	if (argc - a != 2 * N) {
		fprintf(stderr, "usage: session_pair [--start N] PID1 OUT1.trm "
			"PID2 OUT2.trm\n");
		return 2;
	}
	for (i = 0; i < N; i++) {
		p[i].pid = (pid_t)atoi(argv[a + 2 * i]);
		p[i].out = argv[a + 2 * i + 1];
	}
	for (i = 0; i < N; i++) {
		trm_err_clear(&err);
		if (session_open(p[i].pid, &so, &p[i].s, &err) < 0) {
			fail(&p[i], &err);
			goto out;
		}
		p[i].snap = snapshot_new();
		if (!p[i].snap) {
			fprintf(stderr, "session_pair: out of memory\n");
			goto out;
		}
	}

	memset(&req, 0, sizeof(req));
	req.op = SESSION_OP_STATS;
	if (run_all(p, &req, 0, 0, NULL))
		goto out;
	for (i = 0; i < N; i++)
		session_last_stats(p[i].s, &p[i].stats);
	if (start) {
		memset(&req, 0, sizeof(req));
		req.op = SESSION_OP_START;
		req.start.nframe = start;
		req.start.flags = WIRE_START_KEEP;
		if (run_all(p, &req, 1, 0, NULL))
			goto out;
		for (i = 0; i < N; i++)
			session_last_state(p[i].s, &p[i].state);
	}
	memset(&req, 0, sizeof(req));
	req.op = SESSION_OP_SNAPSHOT;
	if (run_all(p, &req, 2, 1, &switches))
		goto out;
	for (i = 0; i < N; i++) {
		fill_meta(&p[i]);
		if (save(&p[i]))
			goto out;
	}

	printf("{\"interleaved\": %s, \"switches\": %d, \"sessions\": [",
	       switches >= 2 ? "true" : "false", switches);
	for (i = 0; i < N; i++) {
		printf("%s{\"pid\": %d, \"tracing\": \"%s\", \"limit\": %u, "
		       "\"started\": \"%s\", \"stats_steps\": %d, "
		       "\"start_steps\": %d, \"snapshot_steps\": %d, "
		       "\"ntraces\": %zu, \"total\": %llu}",
		       i ? ", " : "", (int)p[i].pid,
		       tracing_word(p[i].stats.tracing), p[i].stats.traceback_limit,
		       start ? tracing_word(p[i].state.tracing) : "",
		       p[i].steps[0], p[i].steps[1], p[i].steps[2],
		       snapshot_ntraces(p[i].snap),
		       (unsigned long long)snapshot_total_size(p[i].snap));
	}
	printf("]}\n");
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	for (i = 0; i < N; i++) {
		snapshot_free(p[i].snap);
		session_close(p[i].s);
	}
	return rc;
}
