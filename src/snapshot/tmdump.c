/* tmdump.c - tracemalloc's own dump format: Snapshot.dump() is
 * pickle.dump(snapshot, fp, pickle.HIGHEST_PROTOCOL) of a
 * tracemalloc.Snapshot (see docs/FORMATS.md, "tracemalloc dump").
 *
 * Reader: a bounded pickle VM for the subset of opcodes a Snapshot pickle
 * uses (protocols 2-5).  It builds a small object graph in flat arrays
 * (no recursion, no per-object malloc except one vector per list/dict),
 * then checks the graph has the shape of a Snapshot and copies it into the
 * model.  Interned ids are cached on the graph nodes, so a traceback,
 * frame or filename shared through the pickle memo is interned once.
 * Memory is linear in the input: every opcode creates at most one node and
 * every item stored in a container was pushed by an opcode.
 *
 * Writer: protocol 4 without framing, the same object layout as
 * Snapshot.dump(), each filename, frame and traceback written once and
 * referenced through the memo afterwards. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot_int.h"
#include "trmtop/err.h"
#include "trmtop/snapshot.h"
#include "trmtop/util.h"

#define TMD_MAX_INPUT (1ull << 31)    /* node and item indexes are uint32 */
#define TMD_MAX_STACK (1u << 20)      /* values on the VM stack */
#define TMD_MAX_MARKS 4096u           /* open MARKs */
#define TMD_MAX_GLOBAL_LINE 256u      /* text GLOBAL module / name */
#define TMD_MAX_LONG_BYTES 9u         /* LONG1/LONG4: up to uint64 */

/* ---- reader: the object graph ------------------------------------------ */

enum nkind {
	N_INT,
	N_STR,
	N_NONE,
	N_BOOL,
	N_TUPLE,
	N_LIST,
	N_DICT,
	N_CLASS,
	N_OBJ,
};

enum ncls {
	CLS_SNAPSHOT = 1,
	CLS_TRACES,
	CLS_RECONSTRUCTOR, /* copyreg._reconstructor (protocols 0-1) */
	CLS_OBJECT,        /* builtins.object */
};

struct node {
	uint8_t kind;
	uint8_t ubig;   /* N_INT: value is (uint64_t)i > INT64_MAX */
	uint8_t built;  /* N_OBJ: BUILD or REDUCE args applied */
	uint8_t cls;    /* N_CLASS, N_OBJ */
	uint32_t pos;   /* byte offset of the opcode that made it */
	uint32_t cache; /* interned id (str, frame, traceback), SNAP_NONE */
	uint32_t cache_total; /* traceback: total_nframe of cache */
	union {
		int64_t i;
		struct {
			uint32_t off, len;
		} s;
		struct {
			uint32_t first, n;
		} t; /* tuple items */
		uint32_t vec; /* list, dict (key, value pairs) */
		struct {
			uint32_t state; /* BUILD state or REDUCE args */
			uint32_t from_reduce;
		} o;
	} u;
};

struct vec {
	uint32_t *v;
	uint32_t n, cap;
};

struct vm {
	const uint8_t *buf;
	size_t len, pos, op_pos;
	struct trm_err *err;
	struct node *nodes;
	uint32_t nnodes, capnodes;
	uint32_t *items; /* tuple contents */
	uint32_t nitems, capitems;
	struct vec *vecs;
	uint32_t nvecs, capvecs;
	uint32_t *stack;
	uint32_t nstack, capstack;
	uint32_t *marks;
	uint32_t nmarks, capmarks;
	uint32_t *memo; /* node ids, UINT32_MAX where unset */
	uint32_t nmemo, capmemo;
	uint32_t *scratch; /* frame ids of one traceback */
	uint32_t capscratch;
	int proto;
};

static int fmt_err(struct vm *vm, size_t pos, const char *why)
{
	return trm_err_set(vm->err, -TRM_EFORMAT,
			   "tracemalloc dump: byte %zu: %s", pos, why);
}

static int oom(struct vm *vm)
{
	return trm_err_set(vm->err, -ENOMEM,
			   "tracemalloc dump: byte %zu: out of memory",
			   vm->op_pos);
}

/* Grow *arr (elements of size sz) to hold need elements: util_grow_max
 * with 32-bit counts (at most UINT32_MAX elements), a failure reported
 * with the dump's byte offset. */
static int grow(struct vm *vm, void **arr, uint32_t *cap, uint32_t need,
		size_t sz)
{
	size_t c = *cap;

	if (util_grow_max(arr, &c, need, sz, 16, UINT32_MAX) < 0)
		return oom(vm);
	*cap = (uint32_t)c;
	return 0;
}

static int new_node(struct vm *vm, enum nkind kind, uint32_t *id)
{
	struct node *n;
	int rc;

	if (vm->nnodes == UINT32_MAX - 1)
		return fmt_err(vm, vm->op_pos, "too many objects");
	rc = grow(vm, (void **)&vm->nodes, &vm->capnodes, vm->nnodes + 1,
		  sizeof(*vm->nodes));
	if (rc)
		return rc;
	n = &vm->nodes[vm->nnodes];
	memset(n, 0, sizeof(*n));
	n->kind = (uint8_t)kind;
	n->pos = (uint32_t)vm->op_pos;
	n->cache = SNAP_NONE;
	*id = vm->nnodes++;
	return 0;
}

static int push(struct vm *vm, uint32_t id)
{
	int rc;

	if (vm->nstack >= TMD_MAX_STACK)
		return fmt_err(vm, vm->op_pos, "stack too deep");
	rc = grow(vm, (void **)&vm->stack, &vm->capstack, vm->nstack + 1,
		  sizeof(*vm->stack));
	if (rc)
		return rc;
	vm->stack[vm->nstack++] = id;
	return 0;
}

/* Lowest stack index usable by the current opcode: above the last MARK. */
static uint32_t stack_floor(const struct vm *vm)
{
	return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
}

static int pop(struct vm *vm, uint32_t *id)
{
	if (vm->nstack <= stack_floor(vm))
		return fmt_err(vm, vm->op_pos, "stack underflow");
	*id = vm->stack[--vm->nstack];
	return 0;
}

static int top(struct vm *vm, uint32_t *id)
{
	if (vm->nstack <= stack_floor(vm))
		return fmt_err(vm, vm->op_pos, "stack underflow");
	*id = vm->stack[vm->nstack - 1];
	return 0;
}

/* Pop the last MARK: *from is the stack index the marked items start at. */
static int pop_mark(struct vm *vm, uint32_t *from)
{
	if (!vm->nmarks)
		return fmt_err(vm, vm->op_pos, "no MARK on the stack");
	*from = vm->marks[--vm->nmarks];
	return 0;
}

static int push_int(struct vm *vm, int64_t v, int ubig)
{
	uint32_t id = 0;
	int rc = new_node(vm, N_INT, &id);

	if (rc)
		return rc;
	vm->nodes[id].u.i = v;
	vm->nodes[id].ubig = (uint8_t)ubig;
	return push(vm, id);
}

static int push_simple(struct vm *vm, enum nkind kind, int64_t v)
{
	uint32_t id = 0;
	int rc = new_node(vm, kind, &id);

	if (rc)
		return rc;
	vm->nodes[id].u.i = v;
	return push(vm, id);
}

/* Make a tuple of the stack items [from, nstack) and replace them by it. */
static int make_tuple(struct vm *vm, uint32_t from)
{
	uint32_t n = vm->nstack - from, id;
	int rc;

	rc = new_node(vm, N_TUPLE, &id);
	if (rc)
		return rc;
	if (vm->nitems > UINT32_MAX - 1 - n)
		return fmt_err(vm, vm->op_pos, "too many tuple items");
	rc = grow(vm, (void **)&vm->items, &vm->capitems, vm->nitems + n,
		  sizeof(*vm->items));
	if (rc)
		return rc;
	if (n)
		memcpy(vm->items + vm->nitems, vm->stack + from,
		       n * sizeof(*vm->items));
	vm->nodes[id].u.t.first = vm->nitems;
	vm->nodes[id].u.t.n = n;
	vm->nitems += n;
	vm->nstack = from;
	return push(vm, id);
}

static int new_container(struct vm *vm, enum nkind kind, uint32_t *out)
{
	uint32_t id = 0;
	int rc;

	rc = new_node(vm, kind, &id);
	if (rc)
		return rc;
	rc = grow(vm, (void **)&vm->vecs, &vm->capvecs, vm->nvecs + 1,
		  sizeof(*vm->vecs));
	if (rc)
		return rc;
	memset(&vm->vecs[vm->nvecs], 0, sizeof(*vm->vecs));
	vm->nodes[id].u.vec = vm->nvecs++;
	*out = id;
	return 0;
}

/* Append the stack items [from, nstack) to the list or dict node dst. */
static int extend(struct vm *vm, uint32_t dst, uint32_t from, enum nkind kind)
{
	uint32_t n = vm->nstack - from;
	struct vec *v;
	int rc;

	if (vm->nodes[dst].kind != kind)
		return fmt_err(vm, vm->op_pos,
			       kind == N_LIST ? "APPEND(S) to a non-list"
					      : "SETITEM(S) on a non-dict");
	if (kind == N_DICT && n % 2)
		return fmt_err(vm, vm->op_pos, "odd number of dict items");
	v = &vm->vecs[vm->nodes[dst].u.vec];
	if (v->n > UINT32_MAX - 1 - n)
		return fmt_err(vm, vm->op_pos, "container too large");
	if (n > v->cap - v->n) {
		rc = grow(vm, (void **)&v->v, &v->cap, v->n + n,
			  sizeof(*v->v));
		if (rc)
			return rc;
	}
	if (n)
		memcpy(v->v + v->n, vm->stack + from, n * sizeof(*v->v));
	v->n += n;
	vm->nstack = from;
	return 0;
}

/* ---- reader: input cursor ---------------------------------------------- */

static int need(struct vm *vm, uint64_t n)
{
	if (n > vm->len - vm->pos)
		return fmt_err(vm, vm->op_pos, "truncated");
	return 0;
}

static uint64_t rd_le(struct vm *vm, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)vm->buf[vm->pos + i] << (8 * i);
	vm->pos += n;
	return v;
}

/* A str of len bytes at the cursor. */
static int push_str(struct vm *vm, uint64_t len)
{
	uint32_t id = 0;
	int rc;

	rc = need(vm, len);
	if (rc)
		return rc;
	rc = new_node(vm, N_STR, &id);
	if (rc)
		return rc;
	vm->nodes[id].u.s.off = (uint32_t)vm->pos;
	vm->nodes[id].u.s.len = (uint32_t)len;
	vm->pos += (size_t)len;
	return push(vm, id);
}

/* LONG1 / LONG4 payload: little-endian two's complement. */
static int push_long(struct vm *vm, uint64_t n)
{
	uint64_t u = 0;
	uint64_t i;
	int neg, rc;

	rc = need(vm, n);
	if (rc)
		return rc;
	if (n == 0) {
		return push_int(vm, 0, 0);
	}
	neg = (vm->buf[vm->pos + n - 1] & 0x80) != 0;
	if (n > TMD_MAX_LONG_BYTES ||
	    (n == TMD_MAX_LONG_BYTES && vm->buf[vm->pos + 8] != 0))
		return fmt_err(vm, vm->op_pos, "integer out of range");
	for (i = 0; i < n && i < 8; i++)
		u |= (uint64_t)vm->buf[vm->pos + i] << (8 * i);
	vm->pos += (size_t)n;
	if (neg) {
		/* sign-extend; n <= 8 here (a 9-byte negative is refused) */
		if (n < 8)
			u |= ~(uint64_t)0 << (8 * n);
		return push_int(vm, (int64_t)u, 0);
	}
	return push_int(vm, (int64_t)u, u > INT64_MAX);
}

static int str_eq(const struct vm *vm, uint32_t id, const char *s)
{
	const struct node *n = &vm->nodes[id];
	size_t l = strlen(s);

	return n->kind == N_STR && n->u.s.len == l &&
	       memcmp(vm->buf + n->u.s.off, s, l) == 0;
}

static int bytes_eq(const uint8_t *p, size_t len, const char *s)
{
	return len == strlen(s) && memcmp(p, s, len) == 0;
}

static int lookup_class(struct vm *vm, const uint8_t *mod, size_t modlen,
			const uint8_t *name, size_t namelen)
{
	uint32_t id = 0;
	int cls = 0, rc;

	if (bytes_eq(mod, modlen, "tracemalloc")) {
		if (bytes_eq(name, namelen, "Snapshot"))
			cls = CLS_SNAPSHOT;
		else if (bytes_eq(name, namelen, "_Traces"))
			cls = CLS_TRACES;
	} else if (bytes_eq(mod, modlen, "copyreg") ||
		   bytes_eq(mod, modlen, "copy_reg")) {
		if (bytes_eq(name, namelen, "_reconstructor"))
			cls = CLS_RECONSTRUCTOR;
	} else if (bytes_eq(mod, modlen, "builtins") ||
		   bytes_eq(mod, modlen, "__builtin__")) {
		if (bytes_eq(name, namelen, "object"))
			cls = CLS_OBJECT;
	}
	if (!cls)
		return fmt_err(vm, vm->op_pos,
			       "global is not a tracemalloc class");
	rc = new_node(vm, N_CLASS, &id);
	if (rc)
		return rc;
	vm->nodes[id].cls = (uint8_t)cls;
	return push(vm, id);
}

/* Text GLOBAL: "module\nname\n". */
static int read_line(struct vm *vm, const uint8_t **p, size_t *len)
{
	size_t max = vm->len - vm->pos;
	const uint8_t *nl;

	if (max > TMD_MAX_GLOBAL_LINE)
		max = TMD_MAX_GLOBAL_LINE;
	nl = memchr(vm->buf + vm->pos, '\n', max);
	if (!nl)
		return fmt_err(vm, vm->op_pos, "unterminated GLOBAL");
	*p = vm->buf + vm->pos;
	*len = (size_t)(nl - *p);
	vm->pos += *len + 1;
	return 0;
}

static int memo_put(struct vm *vm, uint64_t idx)
{
	uint32_t id = 0, old;
	int rc;

	rc = top(vm, &id);
	if (rc)
		return rc;
	/* a real pickle's memo never outgrows its number of opcodes */
	if (idx >= vm->len || idx >= UINT32_MAX - 1)
		return fmt_err(vm, vm->op_pos, "memo index out of range");
	if (idx >= vm->nmemo) {
		old = vm->nmemo;
		rc = grow(vm, (void **)&vm->memo, &vm->capmemo,
			  (uint32_t)idx + 1, sizeof(*vm->memo));
		if (rc)
			return rc;
		memset(vm->memo + old, 0xff,
		       ((uint32_t)idx + 1 - old) * sizeof(*vm->memo));
		vm->nmemo = (uint32_t)idx + 1;
	}
	vm->memo[idx] = id;
	return 0;
}

static int memo_get(struct vm *vm, uint64_t idx)
{
	if (idx >= vm->nmemo || vm->memo[idx] == UINT32_MAX)
		return fmt_err(vm, vm->op_pos, "memo entry not set");
	return push(vm, vm->memo[idx]);
}

/* NEWOBJ, NEWOBJ_EX, REDUCE: cls(*args) for the classes we know. */
static int make_obj(struct vm *vm, uint32_t cls_id, uint32_t args,
		    int reduce)
{
	const struct node *c = &vm->nodes[cls_id];
	const struct node *a = &vm->nodes[args];
	uint32_t id = 0, first;
	int cls, rc;

	if (c->kind != N_CLASS)
		return fmt_err(vm, vm->op_pos, "call of a non-class");
	if (a->kind != N_TUPLE)
		return fmt_err(vm, vm->op_pos, "call arguments not a tuple");
	cls = c->cls;
	if (cls == CLS_RECONSTRUCTOR) {
		/* copyreg._reconstructor(cls, object, None) */
		if (!reduce || a->u.t.n != 3)
			return fmt_err(vm, vm->op_pos,
				       "bad _reconstructor call");
		first = a->u.t.first;
		c = &vm->nodes[vm->items[first]];
		if (c->kind != N_CLASS ||
		    (c->cls != CLS_SNAPSHOT && c->cls != CLS_TRACES) ||
		    vm->nodes[vm->items[first + 1]].kind != N_CLASS ||
		    vm->nodes[vm->items[first + 1]].cls != CLS_OBJECT ||
		    vm->nodes[vm->items[first + 2]].kind != N_NONE)
			return fmt_err(vm, vm->op_pos,
				       "bad _reconstructor call");
		cls = c->cls;
		args = UINT32_MAX;
	} else if (cls != CLS_SNAPSHOT && cls != CLS_TRACES) {
		return fmt_err(vm, vm->op_pos, "call of an unexpected class");
	} else if (!reduce && a->u.t.n != 0) {
		return fmt_err(vm, vm->op_pos,
			       "unexpected constructor arguments");
	} else if (reduce &&
		   a->u.t.n != (cls == CLS_SNAPSHOT ? 2u : 1u)) {
		return fmt_err(vm, vm->op_pos,
			       "wrong number of constructor arguments");
	}
	rc = new_node(vm, N_OBJ, &id);
	if (rc)
		return rc;
	vm->nodes[id].cls = (uint8_t)cls;
	vm->nodes[id].u.o.state = UINT32_MAX;
	if (reduce && args != UINT32_MAX) {
		vm->nodes[id].built = 1;
		vm->nodes[id].u.o.state = args;
		vm->nodes[id].u.o.from_reduce = 1;
	}
	return push(vm, id);
}

static int op_build(struct vm *vm)
{
	uint32_t state = 0, obj = 0;
	struct node *o;
	int rc;

	rc = pop(vm, &state);
	if (rc)
		return rc;
	rc = top(vm, &obj);
	if (rc)
		return rc;
	o = &vm->nodes[obj];
	if (o->kind != N_OBJ)
		return fmt_err(vm, vm->op_pos, "BUILD of a non-object");
	if (o->built)
		return fmt_err(vm, vm->op_pos, "BUILD applied twice");
	o->built = 1;
	o->u.o.state = state;
	return 0;
}

static int step(struct vm *vm, int *done)
{
	uint32_t a = 0, b = 0, c = 0, from = 0;
	uint64_t n;
	int rc;
	uint8_t op;

	vm->op_pos = vm->pos;
	rc = need(vm, 1);
	if (rc)
		return rc;
	op = vm->buf[vm->pos++];
	switch (op) {
	case 0x80: /* PROTO */
		if ((rc = need(vm, 1)))
			return rc;
		vm->proto = vm->buf[vm->pos++];
		if (vm->proto < 2 || vm->proto > 5)
			return fmt_err(vm, vm->op_pos,
				       "unsupported pickle protocol");
		return 0;
	case 0x95: /* FRAME: 8-byte length, advisory */
		if ((rc = need(vm, 8)))
			return rc;
		n = rd_le(vm, 8);
		if (n > vm->len - vm->pos)
			return fmt_err(vm, vm->op_pos, "frame past the end");
		return 0;
	case '.': /* STOP */
		*done = 1;
		return 0;
	case '(': /* MARK */
		if (vm->nmarks >= TMD_MAX_MARKS)
			return fmt_err(vm, vm->op_pos, "too many MARKs");
		rc = grow(vm, (void **)&vm->marks, &vm->capmarks,
			  vm->nmarks + 1, sizeof(*vm->marks));
		if (rc)
			return rc;
		vm->marks[vm->nmarks++] = vm->nstack;
		return 0;
	case '0': /* POP */
		return pop(vm, &a);
	case '1': /* POP_MARK */
		if ((rc = pop_mark(vm, &from)))
			return rc;
		vm->nstack = from;
		return 0;
	case 'N':
		return push_simple(vm, N_NONE, 0);
	case 0x88: /* NEWTRUE */
		return push_simple(vm, N_BOOL, 1);
	case 0x89: /* NEWFALSE */
		return push_simple(vm, N_BOOL, 0);
	case 'J': /* BININT */
		if ((rc = need(vm, 4)))
			return rc;
		return push_int(vm, (int32_t)(uint32_t)rd_le(vm, 4), 0);
	case 'K': /* BININT1 */
		if ((rc = need(vm, 1)))
			return rc;
		return push_int(vm, (int64_t)rd_le(vm, 1), 0);
	case 'M': /* BININT2 */
		if ((rc = need(vm, 2)))
			return rc;
		return push_int(vm, (int64_t)rd_le(vm, 2), 0);
	case 0x8a: /* LONG1 */
		if ((rc = need(vm, 1)))
			return rc;
		return push_long(vm, rd_le(vm, 1));
	case 0x8b: /* LONG4: signed length */
		if ((rc = need(vm, 4)))
			return rc;
		n = rd_le(vm, 4);
		if (n & 0x80000000u)
			return fmt_err(vm, vm->op_pos, "negative LONG4 size");
		return push_long(vm, n);
	case 0x8c: /* SHORT_BINUNICODE */
		if ((rc = need(vm, 1)))
			return rc;
		return push_str(vm, rd_le(vm, 1));
	case 'X': /* BINUNICODE */
		if ((rc = need(vm, 4)))
			return rc;
		return push_str(vm, rd_le(vm, 4));
	case 0x8d: /* BINUNICODE8 */
		if ((rc = need(vm, 8)))
			return rc;
		return push_str(vm, rd_le(vm, 8));
	case 'c': { /* GLOBAL */
		const uint8_t *mod, *name;
		size_t ml, nl;

		if ((rc = read_line(vm, &mod, &ml)) ||
		    (rc = read_line(vm, &name, &nl)))
			return rc;
		return lookup_class(vm, mod, ml, name, nl);
	}
	case 0x93: /* STACK_GLOBAL */
		if ((rc = pop(vm, &b)) || (rc = pop(vm, &a)))
			return rc;
		if (vm->nodes[a].kind != N_STR || vm->nodes[b].kind != N_STR)
			return fmt_err(vm, vm->op_pos,
				       "STACK_GLOBAL of a non-string");
		return lookup_class(vm, vm->buf + vm->nodes[a].u.s.off,
				    vm->nodes[a].u.s.len,
				    vm->buf + vm->nodes[b].u.s.off,
				    vm->nodes[b].u.s.len);
	case ')': /* EMPTY_TUPLE */
		return make_tuple(vm, vm->nstack);
	case 0x85: /* TUPLE1 */
	case 0x86: /* TUPLE2 */
	case 0x87: /* TUPLE3 */
		n = (uint64_t)(op - 0x84);
		if (vm->nstack - stack_floor(vm) < n)
			return fmt_err(vm, vm->op_pos, "stack underflow");
		return make_tuple(vm, vm->nstack - (uint32_t)n);
	case 't': /* TUPLE */
		if ((rc = pop_mark(vm, &from)))
			return rc;
		return make_tuple(vm, from);
	case ']': /* EMPTY_LIST */
	case '}': /* EMPTY_DICT */
		if ((rc = new_container(vm, op == ']' ? N_LIST : N_DICT, &a)))
			return rc;
		return push(vm, a);
	case 'l': /* LIST */
	case 'd': /* DICT */
		if ((rc = pop_mark(vm, &from)))
			return rc;
		if ((rc = new_container(vm, op == 'l' ? N_LIST : N_DICT, &a)))
			return rc;
		if ((rc = extend(vm, a, from, op == 'l' ? N_LIST : N_DICT)))
			return rc;
		return push(vm, a);
	case 'a': /* APPEND */
		if (vm->nstack - stack_floor(vm) < 2)
			return fmt_err(vm, vm->op_pos, "stack underflow");
		return extend(vm, vm->stack[vm->nstack - 2], vm->nstack - 1,
			      N_LIST);
	case 's': /* SETITEM */
		if (vm->nstack - stack_floor(vm) < 3)
			return fmt_err(vm, vm->op_pos, "stack underflow");
		return extend(vm, vm->stack[vm->nstack - 3], vm->nstack - 2,
			      N_DICT);
	case 'e': /* APPENDS */
	case 'u': /* SETITEMS */
		if ((rc = pop_mark(vm, &from)))
			return rc;
		if (from <= stack_floor(vm))
			return fmt_err(vm, vm->op_pos, "stack underflow");
		return extend(vm, vm->stack[from - 1], from,
			      op == 'e' ? N_LIST : N_DICT);
	case 0x94: /* MEMOIZE */
		return memo_put(vm, vm->nmemo);
	case 'q': /* BINPUT */
		if ((rc = need(vm, 1)))
			return rc;
		return memo_put(vm, rd_le(vm, 1));
	case 'r': /* LONG_BINPUT */
		if ((rc = need(vm, 4)))
			return rc;
		return memo_put(vm, rd_le(vm, 4));
	case 'h': /* BINGET */
		if ((rc = need(vm, 1)))
			return rc;
		return memo_get(vm, rd_le(vm, 1));
	case 'j': /* LONG_BINGET */
		if ((rc = need(vm, 4)))
			return rc;
		return memo_get(vm, rd_le(vm, 4));
	case 0x81: /* NEWOBJ */
		if ((rc = pop(vm, &b)) || (rc = pop(vm, &a)))
			return rc;
		return make_obj(vm, a, b, 0);
	case 0x92: /* NEWOBJ_EX */
		if ((rc = pop(vm, &c)) || (rc = pop(vm, &b)) ||
		    (rc = pop(vm, &a)))
			return rc;
		if (vm->nodes[c].kind != N_DICT ||
		    vm->vecs[vm->nodes[c].u.vec].n)
			return fmt_err(vm, vm->op_pos,
				       "unexpected keyword arguments");
		return make_obj(vm, a, b, 0);
	case 'R': /* REDUCE */
		if ((rc = pop(vm, &b)) || (rc = pop(vm, &a)))
			return rc;
		return make_obj(vm, a, b, 1);
	case 'b': /* BUILD */
		return op_build(vm);
	default:
		return fmt_err(vm, vm->op_pos, "unsupported pickle opcode");
	}
}

/* ---- reader: the graph to the model ------------------------------------ */

static const struct node *item(const struct vm *vm, const struct node *t,
			       uint32_t i)
{
	return &vm->nodes[vm->items[t->u.t.first + i]];
}

/* Value of key in a dict node (the last one set wins), UINT32_MAX if
 * absent. */
static uint32_t dict_get(const struct vm *vm, const struct node *d,
			 const char *key)
{
	const struct vec *v = &vm->vecs[d->u.vec];
	uint32_t i, found = UINT32_MAX;

	for (i = 0; i + 1 < v->n; i += 2)
		if (str_eq(vm, v->v[i], key))
			found = v->v[i + 1];
	return found;
}

/* The instance dict of an object made by NEWOBJ + BUILD: the state, or
 * the first half of a (dict, slots) state tuple. */
static const struct node *obj_dict(struct vm *vm, const struct node *o)
{
	const struct node *st;

	if (!o->built || o->u.o.state == UINT32_MAX)
		return NULL;
	st = &vm->nodes[o->u.o.state];
	if (st->kind == N_TUPLE && st->u.t.n == 2)
		st = item(vm, st, 0);
	return st->kind == N_DICT ? st : NULL;
}

static int get_u32(const struct node *n, uint32_t *out)
{
	if (n->kind != N_INT || n->ubig || n->u.i < 0 || n->u.i > UINT32_MAX)
		return -1;
	*out = (uint32_t)n->u.i;
	return 0;
}

static int intern_frame(struct vm *vm, struct snapshot *s, struct node *f,
			uint32_t *out)
{
	struct node *fn;
	uint32_t lineno;

	if (f->cache != SNAP_NONE) {
		*out = f->cache;
		return 0;
	}
	if (f->kind != N_TUPLE || f->u.t.n != 2)
		return fmt_err(vm, f->pos, "frame is not a (filename, lineno) "
					   "tuple");
	fn = &vm->nodes[vm->items[f->u.t.first]];
	if (fn->kind != N_STR)
		return fmt_err(vm, fn->pos, "frame filename is not a str");
	if (get_u32(item(vm, f, 1), &lineno))
		return fmt_err(vm, item(vm, f, 1)->pos,
			       "frame lineno is not an int in [0, 2**32)");
	if (fn->cache == SNAP_NONE) {
		if (fn->u.s.len > SNAP_STR_MAX)
			return fmt_err(vm, fn->pos, "filename too long");
		fn->cache = snapshot_intern_str(
			s, (const char *)vm->buf + fn->u.s.off, fn->u.s.len);
		if (fn->cache == SNAP_NONE)
			return oom(vm);
	}
	f->cache = snapshot_intern_frame(s, fn->cache, lineno);
	if (f->cache == SNAP_NONE)
		return oom(vm);
	*out = f->cache;
	return 0;
}

static int intern_tb(struct vm *vm, struct snapshot *s, struct node *tb,
		     const struct node *total, uint32_t *out)
{
	uint32_t i, n, tn, id;
	int rc;

	if (tb->kind != N_TUPLE)
		return fmt_err(vm, tb->pos, "traceback is not a tuple");
	n = tb->u.t.n;
	if (n > SNAP_NFRAME_MAX)
		return fmt_err(vm, tb->pos, "traceback too long");
	tn = n;
	if (total && total->kind != N_NONE) {
		if (get_u32(total, &tn) || tn < n)
			return fmt_err(vm, total->pos,
				       "bad total_nframe");
	}
	if (tb->cache != SNAP_NONE && tb->cache_total == tn) {
		*out = tb->cache;
		return 0;
	}
	if (n > vm->capscratch) {
		rc = grow(vm, (void **)&vm->scratch, &vm->capscratch, n,
			  sizeof(*vm->scratch));
		if (rc)
			return rc;
	}
	for (i = 0; i < n; i++) {
		rc = intern_frame(vm, s,
				  &vm->nodes[vm->items[tb->u.t.first + i]],
				  &vm->scratch[i]);
		if (rc)
			return rc;
	}
	id = snapshot_intern_traceback(s, vm->scratch, n, tn);
	if (id == SNAP_NONE)
		return oom(vm);
	tb->cache = id;
	tb->cache_total = tn;
	*out = id;
	return 0;
}

static int add_traces(struct vm *vm, struct snapshot *s,
		      const struct node *list)
{
	const uint32_t *v;
	uint32_t n, i, domain = 0, tb = 0;
	int rc;

	if (list->kind == N_LIST) {
		v = vm->vecs[list->u.vec].v;
		n = vm->vecs[list->u.vec].n;
	} else if (list->kind == N_TUPLE) {
		n = list->u.t.n;
		/* no items array at all while every tuple is empty */
		v = n ? vm->items + list->u.t.first : NULL;
	} else {
		return fmt_err(vm, list->pos, "traces are not a list");
	}
	if (snap_reserve_traces(s, n))
		return oom(vm);
	for (i = 0; i < n; i++) {
		const struct node *t = &vm->nodes[v[i]];
		const struct node *size;

		if (t->kind != N_TUPLE || t->u.t.n < 3 || t->u.t.n > 4)
			return fmt_err(vm, t->pos,
				       "trace is not a (domain, size, "
				       "traceback[, total_nframe]) tuple");
		if (get_u32(item(vm, t, 0), &domain))
			return fmt_err(vm, item(vm, t, 0)->pos,
				       "trace domain is not an int in "
				       "[0, 2**32)");
		size = item(vm, t, 1);
		if (size->kind != N_INT || (!size->ubig && size->u.i < 0))
			return fmt_err(vm, size->pos,
				       "trace size is not an int in "
				       "[0, 2**64)");
		rc = intern_tb(vm, s, &vm->nodes[vm->items[t->u.t.first + 2]],
			       t->u.t.n == 4 ? item(vm, t, 3) : NULL, &tb);
		if (rc)
			return rc;
		rc = snapshot_add_trace(s, domain, (uint64_t)size->u.i, tb);
		if (rc == -EOVERFLOW)
			return fmt_err(vm, size->pos, "the trace sizes add up "
				       "to more than 2**63-1 bytes");
		if (rc)
			return rc == -ENOMEM ? oom(vm)
					     : fmt_err(vm, t->pos,
						       "trace refused");
	}
	return 0;
}

static int to_model(struct vm *vm, uint32_t root, struct snapshot *s)
{
	const struct node *snap = &vm->nodes[root], *d, *traces, *limit;
	uint32_t id = 0;

	if (snap->kind != N_OBJ || snap->cls != CLS_SNAPSHOT || !snap->built)
		return fmt_err(vm, snap->pos,
			       "pickle is not a tracemalloc.Snapshot");
	if (snap->u.o.from_reduce) {
		/* Snapshot(traces, traceback_limit) */
		d = &vm->nodes[snap->u.o.state];
		traces = item(vm, d, 0);
		limit = item(vm, d, 1);
	} else {
		d = obj_dict(vm, snap);
		if (!d)
			return fmt_err(vm, snap->pos,
				       "Snapshot state is not a dict");
		id = dict_get(vm, d, "traces");
		if (id == UINT32_MAX)
			return fmt_err(vm, d->pos, "Snapshot has no traces");
		traces = &vm->nodes[id];
		id = dict_get(vm, d, "traceback_limit");
		if (id == UINT32_MAX)
			return fmt_err(vm, d->pos,
				       "Snapshot has no traceback_limit");
		limit = &vm->nodes[id];
	}
	if (get_u32(limit, &snapshot_meta(s)->traceback_limit))
		return fmt_err(vm, limit->pos,
			       "traceback_limit is not an int in [0, 2**32)");
	/* Snapshot.__init__ wraps the raw traces in _Traces */
	if (traces->kind == N_OBJ) {
		if (traces->cls != CLS_TRACES || !traces->built)
			return fmt_err(vm, traces->pos,
				       "Snapshot.traces is not a _Traces");
		if (traces->u.o.from_reduce) {
			traces = item(vm, &vm->nodes[traces->u.o.state], 0);
		} else {
			d = obj_dict(vm, traces);
			if (!d)
				return fmt_err(vm, traces->pos,
					       "_Traces state is not a dict");
			id = dict_get(vm, d, "_traces");
			if (id == UINT32_MAX)
				return fmt_err(vm, d->pos,
					       "_Traces has no _traces");
			traces = &vm->nodes[id];
		}
	} else if (!snap->u.o.from_reduce) {
		return fmt_err(vm, traces->pos,
			       "Snapshot.traces is not a _Traces");
	}
	return add_traces(vm, s, traces);
}

static void vm_fini(struct vm *vm)
{
	uint32_t i;

	for (i = 0; i < vm->nvecs; i++)
		free(vm->vecs[i].v);
	free(vm->vecs);
	free(vm->nodes);
	free(vm->items);
	free(vm->stack);
	free(vm->marks);
	free(vm->memo);
	free(vm->scratch);
}

struct snapshot *snapshot_read_tracemalloc_mem(const uint8_t *buf, size_t len,
					       struct trm_err *err)
{
	struct snapshot *s = NULL;
	struct vm vm;
	uint32_t root;
	int done = 0, rc = 0;

	memset(&vm, 0, sizeof(vm));
	vm.buf = buf;
	vm.len = len;
	vm.err = err;
	if (len > TMD_MAX_INPUT) {
		rc = fmt_err(&vm, 0, "file too large");
		goto out;
	}
	if (len == 0 || !buf) {
		rc = fmt_err(&vm, 0, "empty file");
		goto out;
	}
	if (buf[0] != 0x80) {
		rc = fmt_err(&vm, 0, "not a pickle (protocol 2 or later)");
		goto out;
	}
	while (!done) {
		rc = step(&vm, &done);
		if (rc)
			goto out;
	}
	if (vm.nstack != 1 || vm.nmarks) {
		rc = fmt_err(&vm, vm.op_pos,
			     "STOP with a stack of other than one object");
		goto out;
	}
	root = vm.stack[0];
	s = snapshot_new();
	if (!s) {
		rc = oom(&vm);
		goto out;
	}
	rc = to_model(&vm, root, s);
out:
	vm_fini(&vm);
	if (rc) {
		snapshot_free(s);
		errno = -rc;
		return NULL;
	}
	return s;
}

/* ---- writer -------------------------------------------------------------- */

/* id -> memo index, for strings, frames and tracebacks (open addressing). */
struct memo_map {
	uint64_t *keys; /* (kind << 32 | id) + 1; 0 is empty */
	uint32_t *vals;
	size_t cap, n;
};

enum { MK_STR = 1, MK_FRAME, MK_TB };

struct pw {
	FILE *f;
	struct memo_map mm;
	uint32_t nmemo;
};

static size_t mm_slot(const struct memo_map *m, uint64_t key)
{
	size_t i = (size_t)util_mix64(key) & (m->cap - 1);

	while (m->keys[i] && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int mm_get(const struct memo_map *m, int kind, uint32_t id,
		  uint32_t *val)
{
	uint64_t key = ((uint64_t)kind << 32 | id) + 1;
	size_t i;

	if (!m->cap)
		return 0;
	i = mm_slot(m, key);
	if (!m->keys[i])
		return 0;
	*val = m->vals[i];
	return 1;
}

static int mm_put(struct memo_map *m, int kind, uint32_t id, uint32_t val)
{
	uint64_t key = ((uint64_t)kind << 32 | id) + 1;
	size_t i;

	if ((m->n + 1) * 2 > m->cap) {
		struct memo_map nm;
		size_t j;

		nm.cap = m->cap ? m->cap * 2 : 1024;
		nm.n = m->n;
		nm.keys = calloc(nm.cap, sizeof(*nm.keys));
		nm.vals = calloc(nm.cap, sizeof(*nm.vals));
		if (!nm.keys || !nm.vals) {
			free(nm.keys);
			free(nm.vals);
			return -ENOMEM;
		}
		for (j = 0; j < m->cap; j++) {
			if (m->keys[j]) {
				i = mm_slot(&nm, m->keys[j]);
				nm.keys[i] = m->keys[j];
				nm.vals[i] = m->vals[j];
			}
		}
		free(m->keys);
		free(m->vals);
		*m = nm;
	}
	i = mm_slot(m, key);
	if (!m->keys[i])
		m->n++;
	m->keys[i] = key;
	m->vals[i] = val;
	return 0;
}

static void put_bytes(struct pw *w, const void *p, size_t n)
{
	if (n)
		fwrite(p, 1, n, w->f);
}

static void put_op(struct pw *w, uint8_t op)
{
	putc(op, w->f);
}

static void put_le(struct pw *w, uint64_t v, unsigned n)
{
	uint8_t b[8];
	unsigned i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put_bytes(w, b, n);
}

/* An int as pickle's save_long writes it (protocol 2+). */
static void put_int(struct pw *w, uint64_t v)
{
	uint8_t b[9];
	unsigned n = 0;

	if (v <= 0xff) {
		put_op(w, 'K');
		put_le(w, v, 1);
	} else if (v <= 0xffff) {
		put_op(w, 'M');
		put_le(w, v, 2);
	} else if (v <= 0x7fffffff) {
		put_op(w, 'J');
		put_le(w, v, 4);
	} else {
		while (v) {
			b[n++] = (uint8_t)v;
			v >>= 8;
		}
		if (b[n - 1] & 0x80)
			b[n++] = 0;
		put_op(w, 0x8a); /* LONG1 */
		put_le(w, n, 1);
		put_bytes(w, b, n);
	}
}

static void put_str(struct pw *w, const char *p, size_t len)
{
	if (len < 256) {
		put_op(w, 0x8c); /* SHORT_BINUNICODE */
		put_le(w, len, 1);
	} else {
		put_op(w, 'X'); /* BINUNICODE; the model caps at 1 MiB */
		put_le(w, len, 4);
	}
	put_bytes(w, p, len);
}

static void memoize(struct pw *w)
{
	put_op(w, 0x94);
	w->nmemo++;
}

static void put_get(struct pw *w, uint32_t idx)
{
	if (idx < 256) {
		put_op(w, 'h');
		put_le(w, idx, 1);
	} else {
		put_op(w, 'j');
		put_le(w, idx, 4);
	}
}

/* Write the object for (kind, id) if new and memoize it; else BINGET. */
static int memo_ref(struct pw *w, int kind, uint32_t id, int *hit)
{
	uint32_t idx;

	*hit = mm_get(&w->mm, kind, id, &idx);
	if (*hit)
		put_get(w, idx);
	return 0;
}

static int memo_add(struct pw *w, int kind, uint32_t id)
{
	int rc = mm_put(&w->mm, kind, id, w->nmemo);

	if (rc)
		return rc;
	memoize(w);
	return 0;
}

static int put_frame(struct pw *w, const struct snapshot *s, uint32_t fid)
{
	uint32_t fn, lineno;
	const char *p;
	size_t len;
	int hit, rc;

	if ((rc = memo_ref(w, MK_FRAME, fid, &hit)) || hit)
		return rc;
	snapshot_frame(s, fid, &fn, &lineno);
	if ((rc = memo_ref(w, MK_STR, fn, &hit)))
		return rc;
	if (!hit) {
		p = snapshot_str(s, fn, &len);
		if (!p)
			return -EINVAL;
		put_str(w, p, len);
		if ((rc = memo_add(w, MK_STR, fn)))
			return rc;
	}
	put_int(w, lineno);
	put_op(w, 0x86); /* TUPLE2 */
	return memo_add(w, MK_FRAME, fid);
}

static int put_traceback(struct pw *w, const struct snapshot *s,
			 uint32_t tb)
{
	const uint32_t *frames;
	uint32_t n, total, i;
	int hit, rc;

	if ((rc = memo_ref(w, MK_TB, tb, &hit)) || hit)
		return rc;
	frames = snapshot_traceback(s, tb, &n, &total);
	if (!frames && n)
		return -EINVAL;
	if (n == 0) {
		put_op(w, ')');
	} else {
		if (n > 3)
			put_op(w, '(');
		for (i = 0; i < n; i++)
			if ((rc = put_frame(w, s, frames[i])))
				return rc;
		put_op(w, n > 3 ? 't' : (uint8_t)(0x84 + n));
	}
	return memo_add(w, MK_TB, tb);
}

#define TMD_BATCH 1000 /* items per APPENDS, as pickle batches them */

int snapshot_write_tracemalloc(const struct snapshot *s, FILE *f,
			       struct trm_err *err)
{
	const struct snapshot_meta *m = snapshot_cmeta(s);
	const struct snap_trace *t = snapshot_traces(s);
	size_t n = snapshot_ntraces(s), i;
	uint32_t tbn, total;
	struct pw w;
	int rc = 0, four;

	if (snapshot_sample_size(s))
		return trm_err_set(err, -EINVAL, "a sampled snapshot holds "
				   "estimates per traceback, which tracemalloc's "
				   "format cannot hold");
	memset(&w, 0, sizeof(w));
	w.f = f;
	errno = 0;
	/* 3.9 added total_nframe to the raw trace tuple; an unknown version
	 * (0) gets the current layout */
	four = m->py_hexversion == 0 || m->py_hexversion >= 0x03090000;

	put_op(&w, 0x80);
	put_op(&w, 4); /* PROTO 4: loads on 3.4+, no FRAME needed */
	put_str(&w, "tracemalloc", 11);
	memoize(&w); /* 0 */
	put_str(&w, "Snapshot", 8);
	memoize(&w);
	put_op(&w, 0x93); /* STACK_GLOBAL */
	memoize(&w);
	put_op(&w, ')');
	put_op(&w, 0x81); /* NEWOBJ */
	memoize(&w);
	put_op(&w, '}');
	memoize(&w);
	put_op(&w, '(');
	put_str(&w, "traces", 6);
	memoize(&w);
	put_get(&w, 0);
	put_str(&w, "_Traces", 7);
	memoize(&w);
	put_op(&w, 0x93);
	memoize(&w);
	put_op(&w, ')');
	put_op(&w, 0x81);
	memoize(&w);
	put_op(&w, '}');
	memoize(&w);
	put_str(&w, "_traces", 7);
	memoize(&w);
	put_op(&w, ']');
	memoize(&w);
	for (i = 0; i < n; i++) {
		if (i % TMD_BATCH == 0)
			put_op(&w, '(');
		if (four)
			put_op(&w, '(');
		put_int(&w, t[i].domain);
		put_int(&w, t[i].size);
		rc = put_traceback(&w, s, t[i].traceback);
		if (rc) {
			rc = trm_err_set(err, rc,
					 "tracemalloc dump: trace %zu: %s", i,
					 rc == -ENOMEM
						 ? "out of memory"
						 : "bad traceback id");
			goto out;
		}
		if (four) {
			snapshot_traceback(s, t[i].traceback, &tbn, &total);
			put_int(&w, total);
			put_op(&w, 't');
		} else {
			put_op(&w, 0x87); /* TUPLE3 */
		}
		if (i % TMD_BATCH == TMD_BATCH - 1 || i + 1 == n)
			put_op(&w, 'e'); /* APPENDS */
	}
	put_op(&w, 's'); /* SETITEM _traces */
	put_op(&w, 'b'); /* BUILD _Traces */
	put_str(&w, "traceback_limit", 15);
	memoize(&w);
	put_int(&w, m->traceback_limit);
	put_op(&w, 'u'); /* SETITEMS */
	put_op(&w, 'b'); /* BUILD Snapshot */
	put_op(&w, '.');
	if (fflush(f) == EOF || ferror(f)) {
		rc = trm_err_set(err, errno ? -errno : -EIO,
				 "tracemalloc dump: write failed");
		goto out;
	}
out:
	free(w.mm.keys);
	free(w.mm.vals);
	return rc;
}
