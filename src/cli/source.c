#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source.h"

#define MAX_SOURCE (8u << 20)
#define MAX_FILES 512

struct source_file {
	char *name;
	char *text;     /* NUL-terminated copy, lines split in place */
	char **lines;   /* lines[i] is line i + 1 */
	size_t nlines;
};

struct source_cache {
	pid_t pid;
	struct source_file files[MAX_FILES];
	size_t n;
};

struct source_cache *source_cache_new(pid_t pid)
{
	struct source_cache *sc = calloc(1, sizeof(*sc));

	if (sc)
		sc->pid = pid;
	return sc;
}

void source_cache_free(struct source_cache *sc)
{
	size_t i;

	if (!sc)
		return;
	for (i = 0; i < sc->n; i++) {
		free(sc->files[i].name);
		free(sc->files[i].text);
		free(sc->files[i].lines);
	}
	free(sc);
}

static void load(struct source_cache *sc, struct source_file *sf)
{
	char path[4200];
	struct stat sb;
	ssize_t got;
	size_t len = 0, i, n = 0;
	char *text = NULL, *p;
	int fd;

	if (sf->name[0] == '/')
		snprintf(path, sizeof(path), "/proc/%d/root%s", (int)sc->pid, sf->name);
	else
		snprintf(path, sizeof(path), "/proc/%d/cwd/%s", (int)sc->pid, sf->name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > MAX_SOURCE)
		goto out;
	text = malloc((size_t)sb.st_size + 1);
	if (!text)
		goto out;
	while (len < (size_t)sb.st_size) {
		got = read(fd, text + len, (size_t)sb.st_size - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	text[len] = '\0';
	if (memchr(text, '\0', len))
		goto out; /* binary */
	for (i = 0; i < len; i++)
		n += text[i] == '\n';
	sf->lines = calloc(n + 1, sizeof(char *));
	if (!sf->lines)
		goto out;
	p = text;
	for (i = 0; i <= n && p; i++) {
		char *nl = strchr(p, '\n');

		sf->lines[i] = p;
		if (nl)
			*nl = '\0';
		p = nl ? nl + 1 : NULL;
	}
	sf->nlines = i;
	sf->text = text;
	text = NULL;
out:
	free(text);
	close(fd);
}

const char *source_line(struct source_cache *sc, const char *filename,
			uint32_t lineno)
{
	struct source_file *sf = NULL;
	char *line, *end;
	size_t i;

	if (!sc || !filename || !*filename || filename[0] == '<' || lineno == 0)
		return NULL;
	for (i = 0; i < sc->n; i++)
		if (strcmp(sc->files[i].name, filename) == 0)
			sf = &sc->files[i];
	if (!sf) {
		if (sc->n >= MAX_FILES)
			return NULL;
		sf = &sc->files[sc->n];
		sf->name = strdup(filename);
		if (!sf->name)
			return NULL;
		sc->n++;
		load(sc, sf);
	}
	if (!sf->lines || lineno > sf->nlines)
		return NULL;
	line = sf->lines[lineno - 1];
	/* strip in place, like linecache.getline(...).strip() */
	while (*line && isspace((unsigned char)*line))
		line++;
	end = line + strlen(line);
	while (end > line && isspace((unsigned char)end[-1]))
		*--end = '\0';
	sf->lines[lineno - 1] = line;
	return line;
}
