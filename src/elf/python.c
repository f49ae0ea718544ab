/* python.c - the module that holds the Python C API (the one defining
 * Py_AddPendingCall; Py_InitModule4* names Python 2) and its version, by
 * the first of these that works: _Py_DebugOffsets at the start of
 * .PyRuntime (3.13+), the Py_Version symbol (3.11+), Py_GetVersion()'s
 * buffer in the target's memory, PY_VERSION among the read-only strings,
 * the soname (no micro version).  The first and the third also tell a
 * free-threaded build.  Knows nothing else of Python. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf_int.h"

#define DEBUG_COOKIE "xdebugpy"
#define SCAN_CHUNK (64 * 1024)
#define SCAN_OVERLAP 64

/* Digits at s (1..max of them); returns the count, 0 if none or too many. */
static size_t digits(const char *s, size_t avail, size_t max, unsigned *v)
{
	size_t i = 0;
	unsigned x = 0;

	while (i < avail && isdigit((unsigned char)s[i])) {
		if (i == max)
			return 0;
		x = x * 10 + (unsigned)(s[i] - '0');
		i++;
	}
	*v = x;
	return i;
}

size_t elf_parse_version(const char *s, size_t avail, unsigned *major,
			 unsigned *minor, unsigned *micro, unsigned *level,
			 unsigned *serial)
{
	/* "M.mm.uu": at most 1, 2 and 2 digits */
	unsigned *const part[3] = { major, minor, micro };
	size_t i = 0, k, n;

	*level = 0xF;
	*serial = 0;
	for (n = 0; n < 3; n++) {
		if (n > 0 && (i >= avail || s[i++] != '.'))
			return 0;
		k = digits(s + i, avail - i, n ? 2 : 1, part[n]);
		if (!k)
			return 0;
		i += k;
	}
	if (i < avail && (s[i] == 'a' || s[i] == 'b' || s[i] == 'r')) {
		size_t j = i;
		unsigned lv = s[i] == 'a' ? 0xA : s[i] == 'b' ? 0xB : 0xC;

		if (s[j] == 'r') {
			if (j + 1 >= avail || s[j + 1] != 'c')
				return i;
			j++;
		}
		j++;
		k = digits(s + j, avail - j, 2, serial);
		if (!k)
			return i;
		*level = lv;
		i = j + k;
	}
	if (i < avail && s[i] == '+')
		i++;
	return i;
}

static unsigned make_hex(unsigned major, unsigned minor, unsigned micro,
			 unsigned level, unsigned serial)
{
	return (major & 0xff) << 24 | (minor & 0xff) << 16 |
	       (micro & 0xff) << 8 | (level & 0xf) << 4 | (serial & 0xf);
}

static void set_version(struct elf_pyinfo *out, unsigned hex, const char *how)
{
	unsigned level = (hex >> 4) & 0xf, serial = hex & 0xf;
	int n;

	out->hexversion = hex;
	out->major = (hex >> 24) & 0xff;
	out->minor = (hex >> 16) & 0xff;
	out->micro = (hex >> 8) & 0xff;
	n = snprintf(out->version, sizeof(out->version), "%u.%u.%u",
		     out->major, out->minor, out->micro);
	if (level != 0xF && n > 0 && (size_t)n < sizeof(out->version))
		snprintf(out->version + n, sizeof(out->version) - (size_t)n,
			 "%s%u",
			 level == 0xA ? "a" : level == 0xB ? "b" : "rc",
			 serial);
	snprintf(out->how, sizeof(out->how), "%s", how);
}

/* 3.13+: the _Py_DebugOffsets header at the start of .PyRuntime. */
static int from_debug_offsets(struct elf_proc *ep, pid_t pid, int mod,
			      struct elf_pyinfo *out)
{
	struct {
		char cookie[8];
		uint64_t version;
		uint64_t free_threaded;
	} hdr;
	raddr_t addr;
	size_t size;
	unsigned hex;
	int rc;

	rc = elf_find_section(ep, mod, ".PyRuntime", &addr, &size);
	if (rc < 0 || size < sizeof(hdr))
		goto out;
	rc = target_read_mem(pid, addr, &hdr, sizeof(hdr));
	if (rc < 0)
		goto out;
	hex = (unsigned)hdr.version;
	if (memcmp(hdr.cookie, DEBUG_COOKIE, 8) != 0 || (hex >> 24) != 3 ||
	    ((hex >> 16) & 0xff) < 13) {
		rc = -TRM_ENOSYM;
		goto out;
	}
	set_version(out, hex, "Py_DebugOffsets");
	out->free_threaded = hdr.free_threaded != 0;
out:
	return rc;
}

/* 3.11+: const unsigned long Py_Version = PY_VERSION_HEX. */
static int from_py_version(struct elf_proc *ep, pid_t pid, int mod,
			   struct elf_pyinfo *out)
{
	raddr_t addr;
	uint32_t hex;
	int rc;

	rc = elf_find_symbol(ep, mod, "Py_Version", &addr, NULL, NULL);
	if (rc < 0)
		goto out;
	rc = target_read_mem(pid, addr, &hex, sizeof(hex));
	if (rc < 0)
		goto out;
	if ((hex >> 24) != 3 || ((hex >> 16) & 0xff) < 11) {
		rc = -TRM_ENOSYM;
		goto out;
	}
	set_version(out, hex, "Py_Version");
out:
	return rc;
}

/* Major and minor from a name like libpython3.8.so.1.0, libpython3.7m.so,
 * python3.11.  0 if found. */
static int hint_from_name(const char *name, unsigned *major, unsigned *minor)
{
	const char *p = name, *q;
	unsigned s;

	while ((q = strstr(p, "python")) != NULL) {
		size_t avail;

		q += 6;
		avail = strlen(q);
		if (avail >= 3 && isdigit((unsigned char)q[0]) && q[1] == '.' &&
		    digits(q + 2, avail - 2, 2, &s) > 0) {
			*major = (unsigned)(q[0] - '0');
			*minor = s;
			return 0;
		}
		p = q;
	}
	return -1;
}

static int version_hint(struct elf_proc *ep, int mod, unsigned *major,
			unsigned *minor)
{
	struct elf_mod *m = &ep->mods[mod];
	const char *base = strrchr(m->map.path, '/');

	/* the file name first: the soname means reading section headers */
	if (hint_from_name(base ? base + 1 : m->map.path, major, minor) == 0)
		return 0;
	elf_mod_ids(m);
	if (m->soname[0])
		return hint_from_name(m->soname, major, minor);
	return -TRM_ENOSYM;
}

/* A version at buf[i], preceded by neither a digit nor a dot. */
static size_t version_at(const char *buf, size_t len, size_t i, unsigned v[5])
{
	size_t k;

	if (buf[i] != '2' && buf[i] != '3')
		return 0;
	if (i > 0 && (isdigit((unsigned char)buf[i - 1]) || buf[i - 1] == '.'))
		return 0;
	k = elf_parse_version(buf + i, len - i, &v[0], &v[1], &v[2], &v[3],
			      &v[4]);
	return k;
}

/* Py_GetVersion() fills a static buffer with "3.8.18 (default, ...) ..."
 * (free-threaded builds: "3.14.7 free-threading build (main, ...) ...")
 * during start-up; look for it in the module's writable segments. */
static int from_version_buffer(struct elf_proc *ep, pid_t pid, int mod,
			       unsigned hint_major, unsigned hint_minor,
			       struct elf_pyinfo *out)
{
	struct elf_mod *m = &ep->mods[mod];
	char *buf = NULL;
	size_t nph, p;
	int rc = -TRM_ENOSYM;

	if (elf_getphdrnum(m->elf, &nph) != 0)
		goto out;
	buf = malloc(SCAN_CHUNK + SCAN_OVERLAP);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (p = 0; p < nph && rc < 0; p++) {
		GElf_Phdr ph;
		raddr_t a, end;

		if (!gelf_getphdr(m->elf, (int)p, &ph) || ph.p_type != PT_LOAD ||
		    !(ph.p_flags & PF_W))
			continue;
		a = ph.p_vaddr + m->bias;
		end = a + ph.p_memsz;
		while (a < end && rc < 0) {
			size_t len = end - a > SCAN_CHUNK + SCAN_OVERLAP ?
					     SCAN_CHUNK + SCAN_OVERLAP :
					     (size_t)(end - a);
			size_t i;

			if (target_read_mem(pid, a, buf, len) < 0)
				break;
			for (i = 0; i + 8 < len && i < SCAN_CHUNK; i++) {
				unsigned v[5];
				size_t k = version_at(buf, len, i, v);

				static const char ft[] = " free-threading build (";
				int is_ft = 0;

				if (k && i + k + sizeof(ft) < len &&
				    memcmp(buf + i + k, ft, sizeof(ft) - 1) == 0)
					is_ft = 1;
				else if (!k || i + k + 2 >= len ||
					 buf[i + k] != ' ' || buf[i + k + 1] != '(')
					continue;
				if (hint_major &&
				    (v[0] != hint_major || v[1] != hint_minor))
					continue;
				set_version(out,
					    make_hex(v[0], v[1], v[2], v[3], v[4]),
					    "version string");
				if (is_ft)
					out->free_threaded = 1;
				rc = 0;
				break;
			}
			a += SCAN_CHUNK;
		}
	}
out:
	free(buf);
	return rc;
}

/* PY_VERSION in the read-only data: often tail-merged into a longer string
 * ("/opt/python/3.8.18"), so take NUL-terminated suffixes too and vote. */
static int from_rodata(struct elf_proc *ep, int mod, unsigned hint_major,
		       unsigned hint_minor, struct elf_pyinfo *out)
{
	struct elf_mod *m = &ep->mods[mod];
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	struct cand {
		unsigned hex;
		unsigned count;
	} c[16];
	size_t nc = 0, i, best = 0;
	int rc = -TRM_ENOSYM;

	while ((scn = elf_nextscn(m->elf, scn)) != NULL) {
		Elf_Data *d;
		const char *b;
		size_t len;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_ALLOC) ||
		    (sh.sh_flags & (SHF_WRITE | SHF_EXECINSTR)))
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			continue;
		b = d->d_buf;
		len = d->d_size;
		for (i = 0; i + 5 < len; i++) {
			unsigned v[5], hex;
			size_t k = version_at(b, len, i, v), j;

			if (!k || i + k >= len || b[i + k] != '\0')
				continue;
			if (hint_major && (v[0] != hint_major || v[1] != hint_minor))
				continue;
			hex = make_hex(v[0], v[1], v[2], v[3], v[4]);
			for (j = 0; j < nc && c[j].hex != hex; j++)
				;
			if (j == nc) {
				if (nc == sizeof(c) / sizeof(c[0]))
					continue;
				c[nc].hex = hex;
				c[nc].count = 0;
				nc++;
			}
			c[j].count++;
		}
	}
	for (i = 0; i < nc; i++)
		if (c[i].count > c[best].count)
			best = i;
	if (nc) {
		set_version(out, c[best].hex, "version string");
		rc = 0;
	}
	return rc;
}

/* Module holding the C API, and the shared/pie flags. */
static int find_api(struct elf_proc *ep, pid_t pid, struct elf_pyinfo *out,
		    struct trm_err *err)
{
	static const char *const api[] = {"Py_AddPendingCall",
					  "Py_InitModule4_64",
					  "Py_InitModule4"};
	size_t i;
	int mod = -1, rc = -TRM_ENOSYM;

	for (i = 0; i < sizeof(api) / sizeof(api[0]) && rc < 0; i++)
		rc = elf_find_symbol(ep, -1, api[i], NULL, NULL, &mod);
	if (rc < 0) {
		rc = trm_err_set(err, -TRM_ENOTPY,
				 "pid %d: no module defines Py_AddPendingCall",
				 (int)pid);
		goto out;
	}
	out->module = mod;
	(void)elf_mod_ensure(ep, 0);
	out->shared = !ep->mods[mod].is_exe;
	out->pie = ep->n > 0 && ep->mods[0].is_exe ? ep->mods[0].pie
						   : ep->mods[mod].pie;
out:
	return rc;
}

int elf_python_version_by(struct elf_proc *ep, pid_t pid, int method,
			  struct elf_pyinfo *out)
{
	unsigned hmaj = 0, hmin = 0;
	int mod = out->module, rc = -TRM_ENOSYM;

	if (version_hint(ep, mod, &hmaj, &hmin) < 0)
		hmaj = hmin = 0;
	switch (method) {
	case ELF_PYVER_DEBUG_OFFSETS:
		rc = from_debug_offsets(ep, pid, mod, out);
		break;
	case ELF_PYVER_PY_VERSION:
		rc = from_py_version(ep, pid, mod, out);
		break;
	case ELF_PYVER_BUFFER:
		rc = from_version_buffer(ep, pid, mod, hmaj, hmin, out);
		break;
	case ELF_PYVER_RODATA:
		rc = from_rodata(ep, mod, hmaj, hmin, out);
		break;
	case ELF_PYVER_SONAME:
		if (hmaj) {
			set_version(out, make_hex(hmaj, hmin, 0, 0xF, 0),
				    "soname");
			rc = 0;
		}
		break;
	default:
		rc = -EINVAL;
		break;
	}
	return rc;
}

int elf_find_python(struct elf_proc *ep, pid_t pid, struct elf_pyinfo *out,
		    struct trm_err *err)
{
	unsigned hmaj = 0, hmin = 0;
	int method, rc;

	memset(out, 0, sizeof(*out));
	out->module = -1;
	if (!ep) {
		rc = trm_err_set(err, -EINVAL, "elf_find_python: no process");
		goto out;
	}
	rc = find_api(ep, pid, out, err);
	if (rc < 0)
		goto out;
	if (version_hint(ep, out->module, &hmaj, &hmin) < 0)
		hmaj = hmin = 0;
	rc = -TRM_ENOSYM;
	for (method = 0; method < ELF_PYVER_NMETHODS && rc < 0; method++) {
		/* _Py_DebugOffsets exist from 3.13 on: when the name says older,
		 * do not look for the section (the section headers sit at the
		 * end of the file: page faults on the attach path) */
		if (method == ELF_PYVER_DEBUG_OFFSETS && hmaj == 3 && hmin < 13)
			continue;
		rc = elf_python_version_by(ep, pid, method, out);
	}
	if (rc < 0)
		rc = trm_err_set(err, -TRM_EPYVER,
				 "pid %d: cannot tell the Python version of %s",
				 (int)pid, ep->mods[out->module].map.path);
out:
	return rc;
}
