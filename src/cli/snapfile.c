/* snapfile.c - snapshot files for every command (cli.h): loading one of
 * either format with its message and exit status, and saving a .trm
 * through the one file writer (outfile.h) with the mode its source lines
 * call for.  Shared by snapshot (save) and the reports (load; import
 * saves). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "outfile.h"
#include "trmtop/snapshot.h"

struct snapshot *cli_load_snapshot(const char *path, int *exit_code)
{
	struct trm_err err = { 0 };
	struct snapshot *s;

	s = snapshot_load(path, &err);
	if (!s) {
		/* unreadable, not a snapshot, corrupt: all bad input */
		cli_errorf("%s: %s", path, err.msg);
		*exit_code = EXIT_BADINPUT;
	}
	return s;
}

mode_t cli_snapshot_mode(const struct snapshot *s)
{
	return snapshot_nsources(s) ? 0600 : 0666;
}

int cli_save_snapshot(const struct snapshot *s, const char *path)
{
	struct trm_err err = { 0 };
	struct outfile of;
	int ec;

	ec = outfile_start(&of, path, cli_snapshot_mode(s));
	if (ec)
		return ec;
	return outfile_finish(&of, snapshot_write_trm(s, of.f, &err), &err);
}

const char *cli_default_output(pid_t pid, char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	snprintf(buf, len, "trmtop-%d-%04d%02d%02d-%02d%02d%02d.trm", (int)pid,
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
	return buf;
}
