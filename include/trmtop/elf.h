/* elf.h - the ELF objects mapped into a target: symbols, load bias, build-id,
 * Python version, native stack unwinding (libelf, libdw).
 *
 * Every object is opened as the target sees it (target_open_mapped:
 * /proc/PID/map_files, then /proc/PID/root), so containers and deleted files
 * work.  Knows nothing of Python beyond finding its version. */
#ifndef TRMTOP_ELF_H
#define TRMTOP_ELF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "trmtop/err.h"
#include "trmtop/target.h"

struct elf_proc; /* opaque: the mapped objects of one process */

/* Read /proc/PID/maps and note every file-backed ELF object (executable,
 * shared libraries, ld.so).  Symbol tables are loaded lazily.  NULL and
 * errno set on failure (details in err). */
struct elf_proc *elf_proc_open(pid_t pid, struct trm_err *err);
void elf_proc_close(struct elf_proc *ep);

struct elf_module_info {
	const char *path;   /* as in maps; borrowed until elf_proc_close */
	raddr_t bias;       /* load bias: runtime address = st_value + bias */
	raddr_t lo, hi;     /* lowest and highest mapped address */
	int is_exe;         /* the main executable */
	int pie;            /* ET_DYN executable (for is_exe) */
	char soname[128];   /* DT_SONAME, "" if none */
	char build_id[41];  /* hex, "" if none */
};

/* Number of modules and their info (index 0 is the executable). */
size_t elf_proc_nmodules(const struct elf_proc *ep);
int elf_proc_module(struct elf_proc *ep, size_t i, struct elf_module_info *out);
/* Just the path of module i as the target maps it ("" if out of range);
 * nothing is opened or read. */
const char *elf_proc_module_path(const struct elf_proc *ep, size_t i);

/* The bytes of module i's (first) executable segment as its file holds
 * them, and the runtime address of the first byte.  *bytes is borrowed
 * until elf_proc_close.  -TRM_EBADELF if the module has none. */
int elf_module_code(struct elf_proc *ep, size_t i, const uint8_t **bytes,
		    size_t *len, raddr_t *addr);

/* Find a defined symbol (FUNC or OBJECT) by exact name in .dynsym, then
 * .symtab.  With module >= 0 only that module is searched; with -1 the
 * executable first, then the others in map order.  *addr is the runtime
 * address, *size the symbol size (may be 0), *mod the module index (each
 * out-parameter may be NULL).  -TRM_ENOSYM if absent. */
int elf_find_symbol(struct elf_proc *ep, int module, const char *name,
		    raddr_t *addr, size_t *size, int *mod);

/* Symbolize a runtime address: the enclosing symbol (by address range, from
 * .symtab then .dynsym) and its module.  name is "" when no symbol covers pc.
 * Borrowed pointers, valid until elf_proc_close. */
int elf_symbolize(struct elf_proc *ep, raddr_t pc, const char **name,
		  const char **module_path, uint64_t *offset);

/* Find an ELF section of a module by name (e.g. ".PyRuntime"): runtime
 * address and size.  -TRM_ENOSYM if absent. */
int elf_find_section(struct elf_proc *ep, int module, const char *name,
		     raddr_t *addr, size_t *size);

struct elf_pyinfo {
	int module;            /* index of the module holding the C API */
	int shared;            /* 1: libpython shared object; 0: in executable */
	int pie;               /* executable is PIE */
	unsigned major, minor, micro;
	unsigned hexversion;   /* PY_VERSION_HEX when known (Py_Version), else
				  built from major/minor/micro */
	int free_threaded;     /* 1 if known to be a Py_GIL_DISABLED build */
	char version[32];      /* "3.11.7" */
	char how[32];          /* "Py_DebugOffsets", "Py_Version", "version
				  string", "soname" */
};

/* Locate the Python C API in the process (the module defining
 * Py_AddPendingCall, or for Python 2 Py_InitModule4*) and its version:
 * _Py_DebugOffsets in .PyRuntime (3.13+), else the Py_Version symbol
 * (3.11+), else a version string in the object, else the soname.
 * -TRM_ENOTPY when no interpreter is found. */
int elf_find_python(struct elf_proc *ep, pid_t pid, struct elf_pyinfo *out,
		    struct trm_err *err);

/* Native stack unwinding of one stopped thread with libdw (CFI from
 * .eh_frame/.debug_frame), reading memory with process_vm_readv.  regs are
 * the DWARF registers 0..16 of x86_64 (rax rdx rcx rbx rsi rdi rbp rsp
 * r8..r15 rip).  Fills up to max frames, innermost first. */
#define ELF_NREGS 17
#define ELF_SYMNAME_MAX 96

struct elf_frame {
	raddr_t pc;
	char name[ELF_SYMNAME_MAX]; /* "" if unknown */
	int module;                 /* index, -1 if outside any module */
};

int elf_unwind(struct elf_proc *ep, pid_t tid, const uint64_t regs[ELF_NREGS],
	       struct elf_frame *frames, size_t max, size_t *n,
	       struct trm_err *err);

#endif
