/* unwind.c - native stack unwinding of one stopped thread with libdw
 * (elf_unwind).  Every module that holds code is reported by its address
 * range without being opened; libdw opens (find_elf, through
 * target_open_mapped) only those a frame lands in.  Memory is read with
 * target_read_mem, the vdso is copied for its CFI, the initial registers
 * are the caller's (a held thread's saved DWARF registers), and no
 * separate debug file is looked for (the host's would be wrong for a
 * container).  Frame names come from elf_symbolize. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <elfutils/libdwfl.h>

#include "elf_int.h"

struct uw_ref {
	struct elf_unwinder *uw;
	int idx; /* module index, -1 for the vdso */
};

struct elf_unwinder {
	struct elf_proc *ep;
	Dwfl *dwfl;
	struct uw_ref *refs;
	unsigned char *vdso; /* copy of the target's [vdso], lives with dwfl */
	size_t vdso_len;
	pid_t tid;           /* the thread being unwound */
	Dwarf_Word regs[ELF_NREGS];
};

struct frame_ctx {
	struct elf_unwinder *uw;
	struct elf_frame *frames;
	size_t max, n;
};

/* find_elf: open the object as the target sees it. */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *modname,
		    Dwarf_Addr base, char **file_name, Elf **elfp)
{
	struct uw_ref *ref = *userdata;
	struct elf_mod *m;
	int fd;

	(void)mod;
	(void)modname;
	(void)base;
	*file_name = NULL;
	*elfp = NULL;
	if (!ref)
		return -1;
	if (ref->idx < 0) {
		if (ref->uw->vdso)
			*elfp = elf_memory((char *)ref->uw->vdso,
					   ref->uw->vdso_len);
		return -1;
	}
	m = &ref->uw->ep->mods[ref->idx];
	fd = target_open_mapped(ref->uw->ep->pid, &m->map, NULL);
	if (fd < 0)
		return -1;
	*file_name = strdup(m->map.path); /* may be NULL: only for messages */
	return fd;
}

/* No separate debug files: .eh_frame in the object is enough, and looking
 * on the host (or through debuginfod) would be wrong in a container. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata,
			  const char *modname, Dwarf_Addr base,
			  const char *file_name, const char *debuglink_file,
			  GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	(void)mod;
	(void)userdata;
	(void)modname;
	(void)base;
	(void)file_name;
	(void)debuglink_file;
	(void)debuglink_crc;
	*debuginfo_file_name = NULL;
	return -1;
}

static const Dwfl_Callbacks dwfl_cbs = {
	.find_elf = find_elf,
	.find_debuginfo = find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	struct elf_unwinder *uw = arg;

	(void)dwfl;
	if (*thread_argp)
		return 0;
	*thread_argp = uw;
	return uw->tid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
	struct elf_unwinder *uw = arg;

	(void)dwfl;
	if (tid != uw->tid)
		return false;
	*thread_argp = uw;
	return true;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result,
			void *arg)
{
	struct elf_unwinder *uw = arg;
	uint64_t w;

	(void)dwfl;
	if (target_read_mem(uw->ep->pid, addr, &w, sizeof(w)) < 0)
		return false;
	*result = w;
	return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
	struct elf_unwinder *uw = thread_arg;

	/* DWARF 0..16 of x86_64; 16 is the return address column (rip). */
	return dwfl_thread_state_registers(thread, 0, ELF_NREGS, uw->regs);
}

static const Dwfl_Thread_Callbacks thread_cbs = {
	.next_thread = next_thread,
	.get_thread = get_thread,
	.memory_read = memory_read,
	.set_initial_registers = set_initial_registers,
};

void elf_unwinder_free(struct elf_unwinder *uw)
{
	if (!uw)
		return;
	if (uw->dwfl)
		dwfl_end(uw->dwfl);
	free(uw->vdso);
	free(uw->refs);
	free(uw);
}

static void set_userdata(Dwfl_Module *dm, struct uw_ref *ref)
{
	void **ud = NULL;

	if (dwfl_module_info(dm, &ud, NULL, NULL, NULL, NULL, NULL, NULL) &&
	    ud)
		*ud = ref;
}

/* Copy the vdso so libdw can read its CFI (threads parked in
 * clock_gettime, signal trampolines). Best effort. */
static void report_vdso(struct elf_unwinder *uw)
{
	struct target_maps maps = {0};
	size_t i;

	if (target_read_maps(uw->ep->pid, &maps, NULL) < 0)
		return;
	for (i = 0; i < maps.n; i++) {
		const struct target_map *mp = &maps.v[i];
		size_t len = mp->end - mp->start;
		Dwfl_Module *dm;

		if (strcmp(mp->path, "[vdso]") != 0 || len > (1u << 20))
			continue;
		uw->vdso = malloc(len);
		if (!uw->vdso)
			break;
		if (target_read_mem(uw->ep->pid, mp->start, uw->vdso, len) < 0) {
			free(uw->vdso);
			uw->vdso = NULL;
			break;
		}
		uw->vdso_len = len;
		dm = dwfl_report_module(uw->dwfl, "[vdso]", mp->start, mp->end);
		if (dm)
			set_userdata(dm, &uw->refs[uw->ep->n]);
		break;
	}
	target_maps_fini(&maps);
}

static int unwinder_new(struct elf_proc *ep, struct elf_unwinder **out,
			struct trm_err *err)
{
	struct elf_unwinder *uw;
	size_t i;
	int rc = 0;

	uw = calloc(1, sizeof(*uw));
	if (!uw) {
		rc = trm_err_set(err, -ENOMEM, "unwind: %s", strerror(ENOMEM));
		goto out;
	}
	uw->ep = ep;
	uw->refs = calloc(ep->n + 1, sizeof(*uw->refs));
	uw->dwfl = dwfl_begin(&dwfl_cbs);
	if (!uw->refs || !uw->dwfl) {
		rc = trm_err_set(err, -ENOMEM, "unwind: dwfl_begin: %s",
				 dwfl_errmsg(-1));
		goto out;
	}
	dwfl_report_begin(uw->dwfl);
	for (i = 0; i <= ep->n; i++) {
		uw->refs[i].uw = uw;
		uw->refs[i].idx = i < ep->n ? (int)i : -1;
	}
	for (i = 0; i < ep->n; i++) {
		struct elf_mod *m = &ep->mods[i];
		Dwfl_Module *dm;
		raddr_t lo = m->lo;

		/* Only objects that hold code; they are opened (find_elf) when
		 * a frame needs them, not here: a Python process maps dozens.
		 * Low address = where the first PT_LOAD's page lands, which is
		 * the lowest mapping until the object has been read. */
		if (!m->exec || m->state < 0)
			continue;
		if (m->state > 0)
			lo = m->bias + m->vaddr0;
		dm = dwfl_report_module(uw->dwfl, m->map.path, lo, m->hi);
		if (dm)
			set_userdata(dm, &uw->refs[i]);
	}
	report_vdso(uw);
	if (dwfl_report_end(uw->dwfl, NULL, NULL) != 0) {
		rc = trm_err_set(err, -TRM_EBADELF,
				 "unwind: dwfl_report_end: %s",
				 dwfl_errmsg(-1));
		goto out;
	}
	if (!dwfl_attach_state(uw->dwfl, ep->n ? ep->mods[0].elf : NULL,
			       ep->pid, &thread_cbs, uw)) {
		rc = trm_err_set(err, -TRM_EBADELF,
				 "unwind: dwfl_attach_state: %s",
				 dwfl_errmsg(-1));
		goto out;
	}
	*out = uw;
	uw = NULL;
out:
	elf_unwinder_free(uw);
	return rc;
}

static void frame_name(struct elf_unwinder *uw, raddr_t pc, char *buf,
		       size_t len)
{
	const char *name = NULL;

	if (elf_symbolize(uw->ep, pc, &name, NULL, NULL) < 0 || !name ||
	    !*name) {
		Dwfl_Module *dm = dwfl_addrmodule(uw->dwfl, pc);

		name = dm ? dwfl_module_addrname(dm, pc) : NULL;
	}
	snprintf(buf, len, "%s", name ? name : "");
}

static int frame_cb(Dwfl_Frame *state, void *arg)
{
	struct frame_ctx *c = arg;
	struct elf_frame *f;
	Dwarf_Addr pc;
	bool activation = false;
	raddr_t lookup;

	if (c->n >= c->max)
		return DWARF_CB_ABORT;
	if (!dwfl_frame_pc(state, &pc, &activation))
		return DWARF_CB_ABORT;
	f = &c->frames[c->n++];
	f->pc = pc;
	/* A return address may point past the end of its caller. */
	lookup = activation || pc == 0 ? pc : pc - 1;
	f->module = elf_mod_at(c->uw->ep, lookup);
	frame_name(c->uw, lookup, f->name, sizeof(f->name));
	return DWARF_CB_OK;
}

int elf_unwind(struct elf_proc *ep, pid_t tid, const uint64_t regs[ELF_NREGS],
	       struct elf_frame *frames, size_t max, size_t *n,
	       struct trm_err *err)
{
	struct frame_ctx c = {0};
	size_t i;
	int r, rc = 0;

	if (n)
		*n = 0;
	if (!ep || !regs || (!frames && max)) {
		rc = trm_err_set(err, -EINVAL, "unwind: bad arguments");
		goto out;
	}
	if (!ep->uw) {
		rc = unwinder_new(ep, &ep->uw, err);
		if (rc < 0)
			goto out;
	}
	ep->uw->tid = tid;
	for (i = 0; i < ELF_NREGS; i++)
		ep->uw->regs[i] = regs[i];
	c.uw = ep->uw;
	c.frames = frames;
	c.max = max;
	r = dwfl_getthread_frames(ep->uw->dwfl, tid, frame_cb, &c);
	/* Stopping early (frames full, or no CFI for an outer frame) after
	 * at least one frame still gives the innermost frames. */
	if (r < 0 && c.n == 0)
		rc = trm_err_set(err, -EIO, "unwind tid %d: %s", (int)tid,
				 dwfl_errmsg(-1));
	if (n)
		*n = c.n;
out:
	return rc;
}
