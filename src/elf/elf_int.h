/* elf_int.h - private to src/elf and its unit tests. */
#ifndef TRMTOP_ELF_INT_H
#define TRMTOP_ELF_INT_H

#include <gelf.h>
#include <libelf.h>

#include "trmtop/elf.h"

struct elf_sym {
	raddr_t addr;
	uint64_t size;
	const char *name; /* points into the ELF string table */
	int rank;         /* 0: .symtab, 1: .dynsym (preferred first) */
};

struct elf_mod {
	struct target_map map; /* the mapping the file is opened through */
	raddr_t lo, hi;        /* lowest and highest mapped address */
	uint64_t last_off;     /* file offset of its last mapping so far */
	raddr_t bias;
	raddr_t vaddr0;        /* page-aligned p_vaddr of the first PT_LOAD */
	int fd;
	Elf *elf;
	int is_exe, pie;
	int exec;              /* one of its mappings is executable */
	int state;             /* 0 not opened yet, 1 opened, -1 unusable */
	char soname[128];
	char build_id[41];
	struct elf_sym *syms;  /* sorted by address; loaded lazily */
	size_t nsyms;
	int syms_loaded;
	int queries;           /* elf_symbolize calls before sorting */
	/* raw views of .dynsym and .symtab with their string tables */
	struct elf_symsec {
		const Elf64_Sym *v;
		size_t n;
		const char *str;
		size_t strsz;
	} dyn, tab;
	int secs_loaded;
	int ids_loaded;        /* soname and build_id read (elf_mod_ids) */
};

struct elf_unwinder; /* unwind.c */

struct elf_proc {
	pid_t pid;
	struct target_maps maps; /* the mods' map.path point into its text */
	struct elf_mod *mods;
	size_t n;
	struct elf_unwinder *uw;
};

/* Open module i if not yet done (modules are opened lazily: an attach
 * needs only a few of them).  0, or -TRM_EBADELF when it is not a usable
 * ELF object (data files, non-executable mappings). */
int elf_mod_ensure(struct elf_proc *ep, size_t i);

/* Read the soname and build id of an opened module (once: most modules an
 * attach opens never need them). */
void elf_mod_ids(struct elf_mod *m);

/* Index of the module whose mapped range holds addr, or -1. */
int elf_mod_at(const struct elf_proc *ep, raddr_t addr);

/* Release the unwinder state (unwind.c); NULL is fine. */
void elf_unwinder_free(struct elf_unwinder *uw);

/* Parse "X.Y.Z[aN|bN|rcN][+]" at s (at most avail bytes).  Returns the
 * length matched (0: no match) and fills the parts; *level is 0xA, 0xB,
 * 0xC or 0xF (final), *serial the pre-release number. */
size_t elf_parse_version(const char *s, size_t avail, unsigned *major,
			 unsigned *minor, unsigned *micro, unsigned *level,
			 unsigned *serial);

/* The ways elf_find_python tells the version, in the order it tries them. */
enum {
	ELF_PYVER_DEBUG_OFFSETS, /* _Py_DebugOffsets in .PyRuntime (3.13+) */
	ELF_PYVER_PY_VERSION,    /* the Py_Version symbol (3.11+) */
	ELF_PYVER_BUFFER,        /* Py_GetVersion()'s buffer in memory */
	ELF_PYVER_RODATA,        /* PY_VERSION among the read-only strings */
	ELF_PYVER_SONAME,        /* libpythonX.Y / pythonX.Y: no micro */
	ELF_PYVER_NMETHODS
};

/* One method only, for out->module (set it first).  0 or < 0. */
int elf_python_version_by(struct elf_proc *ep, pid_t pid, int method,
			  struct elf_pyinfo *out);

#endif
