"""LEB128 varints as trmtop writes them (docs/FORMATS.md: the .trm file
and the wire's snapshot chunks), for the tests' own readers and crafted
inputs.  Python 3.8+, no imports: loaded by the e2e tests (conftest puts
this folder on sys.path), the agent self-test and the fuzz seed maker."""


def encode(v):
    """The unsigned varint of v (>= 0) as bytes."""
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def decode(buf, pos):
    """The varint at buf[pos:]: (value, offset after it).  ValueError when
    it is cut short or longer than 10 bytes (more than 64 bits)."""
    v = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, pos
        if shift >= 70:
            raise ValueError("varint too long")
