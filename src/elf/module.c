/* module.c - the ELF objects mapped into one process (struct elf_proc).
 * A module is one load of a file: its mappings at increasing addresses
 * and offsets, so that a process's own mmap of a library file is not
 * taken for the library.  The executable's module is found by the
 * identity target gives it (target_stat_exe) and put first: this file
 * reads no /proc itself.  Modules are opened lazily, as the target sees
 * them (target_open_mapped); for each: load bias, soname and build id,
 * the bytes of its executable segment, sections, and symbols (raw views
 * of .dynsym and .symtab: name lookups scan them, and the first
 * SCAN_QUERIES address lookups of a module too, before a sorted table is
 * built). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elf_int.h"

static int lib_init(struct trm_err *err)
{
	static int done;

	if (done)
		return 0;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return trm_err_set(err, -TRM_EBADELF, "libelf: %s",
				   elf_errmsg(-1));
	done = 1;
	return 0;
}

/* A mapping that may hold an ELF object. */
static int file_backed(const struct target_map *m)
{
	if (m->path[0] != '/')
		return 0;
	if (strncmp(m->path, "/dev/", 5) == 0 || strncmp(m->path, "/SYSV", 5) == 0)
		return 0;
	return 1;
}

static int same_object(const struct target_map *a, const struct target_map *b)
{
	return a->inode == b->inode && a->dev_major == b->dev_major &&
	       a->dev_minor == b->dev_minor && a->deleted == b->deleted &&
	       strcmp(a->path, b->path) == 0;
}

static void mod_release(struct elf_mod *m)
{
	free(m->syms);
	m->syms = NULL;
	if (m->elf)
		elf_end(m->elf);
	m->elf = NULL;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

/* DT_SONAME and the GNU build-id note. */
void elf_mod_ids(struct elf_mod *m)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	if (m->ids_loaded || !m->elf)
		return;
	m->ids_loaded = 1;
	while ((scn = elf_nextscn(m->elf, scn)) != NULL) {
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_DYNAMIC) {
			size_t i, cnt;

			d = elf_getdata(scn, NULL);
			if (!d || sh.sh_entsize == 0)
				continue;
			cnt = sh.sh_size / sh.sh_entsize;
			for (i = 0; i < cnt; i++) {
				GElf_Dyn dyn;
				const char *s;

				if (!gelf_getdyn(d, (int)i, &dyn))
					break;
				if (dyn.d_tag == DT_NULL)
					break;
				if (dyn.d_tag != DT_SONAME)
					continue;
				s = elf_strptr(m->elf, sh.sh_link, dyn.d_un.d_val);
				if (s)
					snprintf(m->soname, sizeof(m->soname),
						 "%s", s);
			}
		} else if (sh.sh_type == SHT_NOTE && !m->build_id[0]) {
			size_t off = 0, noff, doff;
			GElf_Nhdr nh;

			d = elf_getdata(scn, NULL);
			if (!d)
				continue;
			while ((off = gelf_getnote(d, off, &nh, &noff, &doff)) >
			       0) {
				const unsigned char *p;
				size_t i, len;

				if (nh.n_type != NT_GNU_BUILD_ID ||
				    nh.n_namesz != 4 ||
				    memcmp((const char *)d->d_buf + noff, "GNU",
					   4) != 0)
					continue;
				p = (const unsigned char *)d->d_buf + doff;
				len = nh.n_descsz;
				if (len > 20)
					len = 20;
				for (i = 0; i < len; i++)
					snprintf(m->build_id + 2 * i, 3, "%02x",
						 p[i]);
				break;
			}
		}
	}
}

/* Open the object through the target and compute its bias.  0, or < 0 when
 * the file is not a usable ELF object (not an error for the process). */
static int mod_load(pid_t pid, struct elf_mod *m)
{
	GElf_Ehdr eh;
	size_t i, nph;
	int found = 0, rc = 0;

	m->fd = target_open_mapped(pid, &m->map, NULL);
	if (m->fd < 0) {
		rc = m->fd;
		m->fd = -1;
		goto out;
	}
	m->elf = elf_begin(m->fd, ELF_C_READ_MMAP, NULL);
	if (!m->elf || elf_kind(m->elf) != ELF_K_ELF || !gelf_getehdr(m->elf, &eh) ||
	    (eh.e_type != ET_DYN && eh.e_type != ET_EXEC) ||
	    elf_getphdrnum(m->elf, &nph) != 0) {
		rc = -TRM_EBADELF;
		goto out;
	}
	m->pie = eh.e_type == ET_DYN;
	for (i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(m->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (!found) {
			uint64_t align = ph.p_align > 1 ? ph.p_align : 1;
			m->vaddr0 = ph.p_vaddr & ~(align - 1);
			m->bias = m->map.start - (ph.p_vaddr - ph.p_offset +
						  m->map.offset);
			found = 1;
		}
		/* The segment holding the mapped offset gives the bias. */
		if ((ph.p_offset & ~(uint64_t)0xfff) <= m->map.offset &&
		    m->map.offset < ph.p_offset + ph.p_filesz) {
			m->bias = m->map.start - (ph.p_vaddr - ph.p_offset +
						  m->map.offset);
			break;
		}
	}
	if (!found) {
		rc = -TRM_EBADELF;
		goto out;
	}
	if (eh.e_type == ET_EXEC)
		m->bias = 0;
out:
	if (rc < 0)
		mod_release(m);
	return rc;
}

/* Is the group m the process's executable? */
static int is_exe_map(const struct target_map *map,
		      const struct target_file_id *exe_id, const char *exe_path)
{
	if (exe_id && map->inode == exe_id->inode) {
		if (map->dev_major == exe_id->dev_major &&
		    map->dev_minor == exe_id->dev_minor)
			return 1;
		/* overlayfs shows another device in maps than in stat */
		if (exe_path && strcmp(map->path, exe_path) == 0)
			return 1;
	}
	return 0;
}

struct elf_proc *elf_proc_open(pid_t pid, struct trm_err *err)
{
	struct target_maps *mapsp;
	struct elf_proc *ep = NULL;
	char exe_path[TARGET_PATH_MAX];
	struct target_file_id exe_id;
	int have_id, have_path, exe_idx = -1;
	size_t i, j, alloc = 0;
	int rc;

	rc = lib_init(err);
	if (rc < 0)
		goto out;
	ep = calloc(1, sizeof(*ep));
	if (!ep) {
		rc = trm_err_set(err, -ENOMEM, "elf_proc_open: %s",
				 strerror(ENOMEM));
		goto out;
	}
	ep->pid = pid;
	mapsp = &ep->maps;
	rc = target_read_maps(pid, mapsp, err);
	if (rc < 0)
		goto out;

	have_id = target_stat_exe(pid, &exe_id) == 0;
	have_path = target_read_exe(pid, exe_path, sizeof(exe_path), NULL) == 0;
	if (have_path) {
		size_t l = strlen(exe_path);
		const char *suf = " (deleted)";
		size_t sl = strlen(suf);
		if (l > sl && strcmp(exe_path + l - sl, suf) == 0)
			exe_path[l - sl] = '\0';
	}

	/* Group the file-backed mappings by load of an object: a loader maps
	 * a file's segments at increasing addresses and file offsets, so a
	 * mapping joins the newest group of its file that it continues; any
	 * other (the process's own mmap of a library file, say: seen with
	 * libelf, whose read-only view of libc came first and gave every
	 * libc symbol a wrong address) starts a group of its own, which is
	 * not executable and is never opened. */
	for (i = 0; i < mapsp->n; i++) {
		const struct target_map *mp = &mapsp->v[i];
		struct elf_mod *m = NULL;

		if (!file_backed(mp))
			continue;
		for (j = ep->n; j-- > 0;) {
			if (same_object(&ep->mods[j].map, mp)) {
				if (mp->offset > ep->mods[j].last_off &&
				    mp->start >= ep->mods[j].hi)
					m = &ep->mods[j];
				break;
			}
		}
		if (m) {
			m->exec |= mp->perms[2] == 'x';
			m->hi = mp->end;
			m->last_off = mp->offset;
			continue;
		}
		if (ep->n == alloc) {
			size_t na = alloc ? alloc * 2 : 32;
			struct elf_mod *nv = realloc(ep->mods, na * sizeof(*nv));
			if (!nv) {
				rc = trm_err_set(err, -ENOMEM,
						 "elf_proc_open: %s",
						 strerror(ENOMEM));
				goto out;
			}
			ep->mods = nv;
			alloc = na;
		}
		m = &ep->mods[ep->n++];
		memset(m, 0, sizeof(*m));
		m->fd = -1;
		m->map = *mp;
		m->lo = mp->start;
		m->hi = mp->end;
		m->last_off = mp->offset;
		m->exec = mp->perms[2] == 'x';
	}

	/* Objects are opened lazily (elf_mod_ensure): find the executable
	 * by its inode only. */
	for (i = 0; i < ep->n && exe_idx < 0; i++)
		if (is_exe_map(&ep->mods[i].map, have_id ? &exe_id : NULL,
			       have_path ? exe_path : NULL))
			exe_idx = (int)i;
	if (exe_idx < 0 && have_path) {
		for (i = 0; i < ep->n; i++) {
			if (strcmp(ep->mods[i].map.path, exe_path) == 0) {
				exe_idx = (int)i;
				break;
			}
		}
	}
	/* The executable goes first. */
	if (exe_idx >= 0) {
		struct elf_mod tmp = ep->mods[exe_idx];

		memmove(ep->mods + 1, ep->mods, (size_t)exe_idx * sizeof(tmp));
		ep->mods[0] = tmp;
		ep->mods[0].is_exe = 1;
	}
	if (ep->n == 0) {
		rc = trm_err_set(err, -TRM_EBADELF,
				 "pid %d: no ELF object could be opened",
				 (int)pid);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0) {
		elf_proc_close(ep);
		ep = NULL;
		errno = -rc > 4095 ? EINVAL : -rc;
	}
	return ep;
}

void elf_proc_close(struct elf_proc *ep)
{
	size_t i;

	if (!ep)
		return;
	elf_unwinder_free(ep->uw);
	for (i = 0; i < ep->n; i++)
		mod_release(&ep->mods[i]);
	free(ep->mods);
	target_maps_fini(&ep->maps);
	free(ep);
}

size_t elf_proc_nmodules(const struct elf_proc *ep)
{
	return ep ? ep->n : 0;
}

int elf_mod_ensure(struct elf_proc *ep, size_t i)
{
	struct elf_mod *m = &ep->mods[i];

	if (m->state == 0)
		m->state = m->exec && mod_load(ep->pid, m) == 0 ? 1 : -1;
	return m->state == 1 ? 0 : -TRM_EBADELF;
}

int elf_proc_module(struct elf_proc *ep, size_t i, struct elf_module_info *out)
{
	struct elf_mod *m;

	if (!ep || i >= ep->n)
		return -EINVAL;
	if (elf_mod_ensure(ep, i) < 0)
		return -TRM_EBADELF;
	m = &ep->mods[i];
	elf_mod_ids(m);
	out->path = m->map.path;
	out->bias = m->bias;
	out->lo = m->lo;
	out->hi = m->hi;
	out->is_exe = m->is_exe;
	out->pie = m->pie;
	memcpy(out->soname, m->soname, sizeof(out->soname));
	memcpy(out->build_id, m->build_id, sizeof(out->build_id));
	return 0;
}

int elf_module_code(struct elf_proc *ep, size_t i, const uint8_t **bytes,
		    size_t *len, raddr_t *addr)
{
	struct elf_mod *m;
	const char *raw;
	size_t rawsz = 0, nph, p;

	if (!ep || i >= ep->n || elf_mod_ensure(ep, i) < 0)
		return -TRM_EBADELF;
	m = &ep->mods[i];
	raw = elf_rawfile(m->elf, &rawsz);
	if (!raw || elf_getphdrnum(m->elf, &nph) != 0)
		return -TRM_EBADELF;
	for (p = 0; p < nph; p++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(m->elf, (int)p, &ph) || ph.p_type != PT_LOAD ||
		    !(ph.p_flags & PF_X))
			continue;
		if (ph.p_offset > rawsz || ph.p_filesz > rawsz - ph.p_offset)
			return -TRM_EBADELF;
		*bytes = (const uint8_t *)raw + ph.p_offset;
		*len = (size_t)ph.p_filesz;
		*addr = ph.p_vaddr + m->bias;
		return 0;
	}
	return -TRM_EBADELF;
}

const char *elf_proc_module_path(const struct elf_proc *ep, size_t i)
{
	return ep && i < ep->n ? ep->mods[i].map.path : "";
}

int elf_mod_at(const struct elf_proc *ep, raddr_t addr)
{
	size_t i;

	for (i = 0; i < ep->n; i++)
		if (addr >= ep->mods[i].lo && addr < ep->mods[i].hi)
			return (int)i;
	return -1;
}

/* Find the raw .dynsym and .symtab of m (ELF64, native byte order: the
 * views are the mapped file itself). */
static void load_secs(struct elf_mod *m)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	if (m->secs_loaded)
		return;
	m->secs_loaded = 1;
	if (gelf_getclass(m->elf) != ELFCLASS64)
		return;
	while ((scn = elf_nextscn(m->elf, scn)) != NULL) {
		struct elf_symsec *sec;
		Elf_Scn *strscn;
		Elf_Data *d, *sd;

		if (!gelf_getshdr(scn, &sh) || sh.sh_entsize != sizeof(Elf64_Sym))
			continue;
		if (sh.sh_type == SHT_DYNSYM)
			sec = &m->dyn;
		else if (sh.sh_type == SHT_SYMTAB)
			sec = &m->tab;
		else
			continue;
		d = elf_getdata(scn, NULL);
		strscn = elf_getscn(m->elf, sh.sh_link);
		sd = strscn ? elf_getdata(strscn, NULL) : NULL;
		if (!d || !sd || !d->d_buf || !sd->d_buf)
			continue;
		sec->v = d->d_buf;
		sec->n = d->d_size / sizeof(Elf64_Sym);
		sec->str = sd->d_buf;
		sec->strsz = sd->d_size;
	}
}

static const char *sym_name(const struct elf_symsec *sec, const Elf64_Sym *s)
{
	if (s->st_name >= sec->strsz)
		return "";
	/* the table ends in NUL (checked by callers via strnlen) */
	return sec->str + s->st_name;
}

static int wanted_raw(const Elf64_Sym *s)
{
	int t = ELF64_ST_TYPE(s->st_info);

	return s->st_shndx != SHN_UNDEF && (t == STT_FUNC || t == STT_OBJECT);
}

/* Look name up in one symbol section.  0 or -TRM_ENOSYM. */
static int lookup_in(const struct elf_mod *m, const struct elf_symsec *sec,
		     const char *name, raddr_t *addr, size_t *size)
{
	size_t i, len = strlen(name);

	for (i = 1; i < sec->n; i++) {
		const Elf64_Sym *s = &sec->v[i];

		if (!wanted_raw(s) || s->st_name >= sec->strsz ||
		    sec->strsz - s->st_name <= len ||
		    memcmp(sec->str + s->st_name, name, len + 1) != 0)
			continue;
		*addr = s->st_value + m->bias;
		*size = s->st_size;
		return 0;
	}
	return -TRM_ENOSYM;
}

static int core_module(const struct elf_mod *m)
{
	const char *p = m->map.path;

	return m->is_exe || strstr(p, "/libpython") || strstr(p, "/libc.so") ||
	       strstr(p, "/libc-");
}

int elf_find_symbol(struct elf_proc *ep, int module, const char *name,
		    raddr_t *addr, size_t *size, int *mod)
{
	size_t i, lo = 0, hi, pass;
	raddr_t a = 0;
	size_t sz = 0;
	int rc = -TRM_ENOSYM;

	if (!ep || !name || (module >= 0 && (size_t)module >= ep->n))
		return -EINVAL;
	if (module >= 0) {
		lo = (size_t)module;
		hi = lo + 1;
	} else {
		hi = ep->n;
	}
	/* every .dynsym first (small), then the .symtab ones; within each,
	 * the executable, libpython and libc before the rest, so that most
	 * look-ups open only those */
	for (pass = 0; pass < 4 && rc < 0; pass++) {
		for (i = lo; i < hi && rc < 0; i++) {
			struct elf_mod *m = &ep->mods[i];

			if (module < 0 && core_module(m) != !(pass & 1))
				continue;
			if (elf_mod_ensure(ep, i) < 0)
				continue;
			load_secs(m);
			rc = lookup_in(m, pass < 2 ? &m->dyn : &m->tab, name, &a, &sz);
			if (rc == 0) {
				if (addr)
					*addr = a;
				if (size)
					*size = sz;
				if (mod)
					*mod = (int)i;
			}
		}
	}
	return rc;
}

static int cmp_sym(const void *a, const void *b)
{
	const struct elf_sym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank - y->rank;
	/* Sized symbols before zero-sized aliases. */
	return (x->size < y->size) - (x->size > y->size);
}

/* Collect the FUNC/OBJECT symbols of .symtab and .dynsym, sorted. */
static int load_syms(struct elf_mod *m)
{
	const struct elf_symsec *secs[2];
	size_t total, n = 0, i, k;
	struct elf_sym *v = NULL;

	if (m->syms_loaded)
		return 0;
	load_secs(m);
	secs[0] = &m->tab;
	secs[1] = &m->dyn;
	total = m->tab.n + m->dyn.n;
	if (total) {
		v = malloc(total * sizeof(*v));
		if (!v)
			return -ENOMEM;
	}
	for (k = 0; k < 2; k++) {
		for (i = 1; i < secs[k]->n; i++) {
			const Elf64_Sym *s = &secs[k]->v[i];
			const char *sn = sym_name(secs[k], s);

			if (!wanted_raw(s) || !*sn ||
			    strnlen(sn, secs[k]->strsz - s->st_name) ==
				    secs[k]->strsz - s->st_name)
				continue;
			v[n].addr = s->st_value + m->bias;
			v[n].size = s->st_size;
			v[n].name = sn;
			v[n].rank = (int)k; /* .symtab names preferred */
			n++;
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_sym);
	m->syms = v;
	m->nsyms = n;
	m->syms_loaded = 1;
	return 0;
}

#define SCAN_QUERIES 48

/* One query without building the sorted table: the symbol covering pc.
 * .dynsym first: it is small and mapped already, while the first touch of
 * a large .symtab costs hundreds of microseconds of page faults (this is
 * on the attach path, with the target stopped). */
static const char *scan_symbol(struct elf_mod *m, raddr_t pc, uint64_t *off)
{
	const struct elf_symsec *secs[2] = { &m->dyn, &m->tab };
	size_t i, k;

	load_secs(m);
	for (k = 0; k < 2; k++) {
		for (i = 1; i < secs[k]->n; i++) {
			const Elf64_Sym *s = &secs[k]->v[i];
			raddr_t a = s->st_value + m->bias;
			const char *sn;

			if (!wanted_raw(s) || pc < a ||
			    !(pc < a + s->st_size || (s->st_size == 0 && pc == a)))
				continue;
			sn = sym_name(secs[k], s);
			if (!*sn || strnlen(sn, secs[k]->strsz - s->st_name) ==
					    secs[k]->strsz - s->st_name)
				continue;
			*off = pc - a;
			return sn;
		}
	}
	return NULL;
}

int elf_symbolize(struct elf_proc *ep, raddr_t pc, const char **name,
		  const char **module_path, uint64_t *offset)
{
	struct elf_mod *m;
	const struct elf_sym *best = NULL;
	size_t lo, hi, k;
	int idx, rc = 0;

	if (name)
		*name = "";
	if (module_path)
		*module_path = "";
	if (offset)
		*offset = 0;
	if (!ep)
		return -EINVAL;
	idx = elf_mod_at(ep, pc);
	if (idx < 0) {
		rc = -TRM_ENOSYM;
		goto out;
	}
	m = &ep->mods[idx];
	if (module_path)
		*module_path = m->map.path;
	if (elf_mod_ensure(ep, (size_t)idx) < 0) {
		rc = -TRM_ENOSYM;
		goto out;
	}
	/* A few queries (an attach symbolizes one PC, or the frames of one
	 * stack) are cheaper scanned than with the table sorted first. */
	if (!m->syms_loaded && m->queries++ < SCAN_QUERIES) {
		uint64_t off = 0;
		const char *sn = scan_symbol(m, pc, &off);

		if (sn) {
			if (name)
				*name = sn;
			if (offset)
				*offset = off;
		} else if (offset) {
			*offset = pc - m->bias;
		}
		goto out;
	}
	rc = load_syms(m);
	if (rc < 0)
		goto out;
	/* Last symbol with addr <= pc. */
	lo = 0;
	hi = m->nsyms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->syms[mid].addr <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Walk back over a few overlapping candidates: the first of a run at
	 * the same address is the preferred one. */
	for (k = lo; k > 0 && lo - k < 64; k--) {
		const struct elf_sym *s = &m->syms[k - 1];

		if (pc < s->addr + s->size || (s->size == 0 && pc == s->addr))
			best = s;
		else if (best && s->addr < best->addr)
			break;
	}
	if (best) {
		if (name)
			*name = best->name;
		if (offset)
			*offset = pc - best->addr;
	} else if (offset) {
		*offset = pc - m->bias;
	}
out:
	return rc;
}

int elf_find_section(struct elf_proc *ep, int module, const char *name,
		     raddr_t *addr, size_t *size)
{
	struct elf_mod *m;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	GElf_Shdr sh;
	int rc = -TRM_ENOSYM;

	if (!ep || module < 0 || (size_t)module >= ep->n || !name) {
		rc = -EINVAL;
		goto out;
	}
	if (elf_mod_ensure(ep, (size_t)module) < 0) {
		rc = -TRM_EBADELF;
		goto out;
	}
	m = &ep->mods[module];
	if (elf_getshdrstrndx(m->elf, &shstrndx) != 0) {
		rc = -TRM_EBADELF;
		goto out;
	}
	while ((scn = elf_nextscn(m->elf, scn)) != NULL) {
		const char *sn;

		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC))
			continue;
		sn = elf_strptr(m->elf, shstrndx, sh.sh_name);
		if (!sn || strcmp(sn, name) != 0)
			continue;
		if (addr)
			*addr = sh.sh_addr + m->bias;
		if (size)
			*size = sh.sh_size;
		rc = 0;
		break;
	}
out:
	return rc;
}
