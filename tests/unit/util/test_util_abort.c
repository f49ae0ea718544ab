/* test_util_abort.c - the caller's abort (abort.c): the first aborting
 * signal is kept and each is counted, SIGCHLD only wakes, nothing blocks,
 * and no fd or NULL means no abort. */
#include "config.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "trmtop/abort.h"

static int open_abort(struct trm_abort *ab)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	assert_int_equal(sigprocmask(SIG_BLOCK, &set, NULL), 0);
	ab->fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	assert_true(ab->fd >= 0);
	ab->first_sig = ab->count = 0;
	return ab->fd;
}

static void test_first_and_count(void **state)
{
	struct trm_abort ab;

	(void)state;
	open_abort(&ab);
	assert_int_equal(trm_abort_check(&ab), 0); /* nothing: no block */
	assert_int_equal(ab.count, 0);
	assert_int_equal(raise(SIGCHLD), 0);
	assert_int_equal(trm_abort_check(&ab), 0); /* SIGCHLD only wakes */
	assert_int_equal(ab.count, 0);
	assert_int_equal(raise(SIGTERM), 0);
	assert_int_equal(trm_abort_check(&ab), SIGTERM);
	assert_int_equal(raise(SIGINT), 0);
	assert_int_equal(trm_abort_check(&ab), SIGTERM); /* the first stays */
	assert_int_equal(ab.count, 2);
	assert_int_equal(trm_abort_fd(&ab), ab.fd);
	close(ab.fd);
}

static void test_none(void **state)
{
	struct trm_abort ab = TRM_ABORT_INIT;

	(void)state;
	assert_int_equal(trm_abort_check(NULL), 0);
	assert_int_equal(trm_abort_fd(NULL), -1);
	assert_int_equal(trm_abort_check(&ab), 0);
	assert_int_equal(trm_abort_fd(&ab), -1);
	ab.first_sig = SIGHUP; /* read earlier, fd since closed */
	assert_int_equal(trm_abort_check(&ab), SIGHUP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_and_count),
		cmocka_unit_test(test_none),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
