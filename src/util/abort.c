/* abort.c - reading the caller's signalfd of aborting signals
 * (trmtop/abort.h): the first one and how many came. */
#include "config.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "trmtop/abort.h"

int trm_abort_check(struct trm_abort *ab)
{
	struct signalfd_siginfo si;

	if (!ab)
		return 0;
	if (ab->fd < 0)
		return ab->first_sig;
	while (read(ab->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue;
		if (!ab->first_sig)
			ab->first_sig = (int)si.ssi_signo;
		ab->count++;
	}
	return ab->first_sig;
}

int trm_abort_fd(const struct trm_abort *ab)
{
	return ab ? ab->fd : -1;
}
