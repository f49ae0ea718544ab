/* agent.h - the agent shared object embedded in the trmtop executable.
 *
 * The build compiles src/agent/ into _trmtop_agent.so (abi3, never
 * sanitized, libpython not linked) and scripts/embed.py turns its bytes
 * into a generated C source.  inject writes these bytes into a memfd in
 * the target, which loads it with _imp.create_dynamic from
 * /proc/self/fd/N.  Nothing is looked up on disk at run time. */
#ifndef TRMTOP_AGENT_H
#define TRMTOP_AGENT_H

#include <stddef.h>

/* The whole ELF image of _trmtop_agent.so; static storage, read-only. */
extern const unsigned char trm_agent_so[];
extern const size_t trm_agent_so_len;

#endif
