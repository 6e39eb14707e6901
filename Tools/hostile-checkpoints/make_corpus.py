#!/usr/bin/env python3
"""Writes the hostile pytorch_model.bin corpus for Tests/HardeningTests.

Plain Python (pickle opcodes, struct, zlib): no torch needed. Every archive is modelled on
what torch.save writes (`<prefix>/data.pkl`, `<prefix>/byteorder`, `<prefix>/data/<key>`,
`<prefix>/version`, all stored) and then made hostile in one way. Every payload that could
run code tries to create `/tmp/backpack-pwned-<name>`; the tests check that no such file
ever appears.

Usage: python3 Tools/hostile-checkpoints/make_corpus.py [OUT_DIR]
(default: Tests/HardeningTests/Corpus). Writes one `<name>.bin` per case and MANIFEST.json:
{"<name>.bin": {"expect": "<substring of the error>" | null, "why": "..."}}.
`expect: null` means the file is harmless and may load (e.g. tensors sharing a storage, as
torch writes for tied weights) — the tests then only check that nothing was executed.
"""
import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "Tests", "HardeningTests", "Corpus")

MARKER = "/tmp/backpack-pwned-"


def le16(v): return struct.pack("<H", v & 0xFFFF)
def le32(v): return struct.pack("<I", v & 0xFFFFFFFF)
def le64(v): return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


# ---------------------------------------------------------------- pickle assembly
class P:
    """Protocol-2 pickle, opcode by opcode (the same opcodes torch.save emits)."""

    def __init__(self, proto=2):
        self.b = bytearray([0x80, proto])

    def op(self, *codes):
        self.b += bytes(codes); return self

    def raw(self, data):
        self.b += data; return self

    def glob(self, module, name):
        self.b += b"c" + f"{module}\n{name}\n".encode(); return self

    def s(self, text):
        u = text.encode()
        self.b += b"X" + le32(len(u)) + u; return self

    def short(self, text):  # SHORT_BINUNICODE (protocol 4)
        u = text.encode()
        self.b += b"\x8c" + bytes([len(u)]) + u; return self

    def i(self, v):
        self.b += b"J" + struct.pack("<i", v); return self

    def long(self, v):  # LONG1, 8 bytes
        self.b += b"\x8a\x08" + struct.pack("<q", v); return self

    def mark(self): return self.op(0x28)
    def tuple(self): return self.op(0x74)
    def tuple1(self): return self.op(0x85)
    def reduce(self): return self.op(0x52)
    def put(self, k): return self.op(0x71, k)
    def get(self, k): return self.op(0x68, k)
    def stop(self): return self.op(0x2E)

    def int_tuple(self, vs):
        self.mark()
        for v in vs:
            if -(2 ** 31) <= v < 2 ** 31:
                self.i(v)
            else:
                self.long(v)
        return self.tuple()

    def bytes(self): return bytes(self.b)


def tensor(p, name, key, numel, offset, shape, stride, stype="FloatStorage"):
    """`name: _rebuild_tensor_v2(persistent storage, offset, shape, stride, False, OrderedDict())`
    (the caller has pushed a dict and a MARK; SETITEMS follows)."""
    p.s(name)
    p.glob("torch._utils", "_rebuild_tensor_v2")
    p.mark()
    p.mark().s("storage").glob("torch", stype).s(key).s("cpu")
    if numel < 2 ** 31:
        p.i(numel)
    else:
        p.long(numel)
    p.tuple()
    p.op(0x51)  # BINPERSID
    if -(2 ** 31) <= offset < 2 ** 31:
        p.i(offset)
    else:
        p.long(offset)
    p.int_tuple(shape)
    p.int_tuple(stride)
    p.op(0x89)  # NEWFALSE
    p.glob("collections", "OrderedDict").op(0x29).reduce()
    p.tuple()
    p.reduce()


def state_dict(tensors):
    p = P()
    p.op(0x7D).put(0).mark()
    for t in tensors:
        tensor(p, *t)
    p.op(0x75).stop()
    return p.bytes()


def f32(n, start=1.0):
    return b"".join(struct.pack("<f", start + k) for k in range(n))


GOOD_PKL = state_dict([("w", "0", 6, 0, [2, 3], [3, 1])])
GOOD_STORAGE = f32(6)


def system_call(module, name, tag):
    """`module.name('touch /tmp/backpack-pwned-<tag>')` as a top-level REDUCE."""
    return P().glob(module, name).s(f"touch {MARKER}{tag}").tuple1().reduce().stop().bytes()


# ---------------------------------------------------------------- zip assembly
class M:
    def __init__(self, name, data, method=0, flags=0, local_override=None, stored_data=None,
                 csize=None, usize=None, extra=b"", cextra=b"", local_name=None):
        self.name = name.encode() if isinstance(name, str) else name
        self.data = data
        self.method = method
        self.flags = flags
        self.local_override = local_override
        self.stored = data if stored_data is None else stored_data
        self.csize = csize
        self.usize = usize
        self.extra = extra
        self.cextra = cextra
        self.local_name = self.name if local_name is None else local_name.encode()


def zipfile_bytes(members, count_override=None, cd_offset_override=None, cd_size_override=None,
                  zip64=False, zip64_rec_override=None, comment=b""):
    out = bytearray()
    central = bytearray()
    offsets = []
    for m in members:
        off = len(out)
        offsets.append(off)
        crc = zlib.crc32(m.data)
        csize = len(m.stored) if m.csize is None else m.csize
        usize = len(m.data) if m.usize is None else m.usize
        out += le32(0x04034B50) + le16(20) + le16(m.flags) + le16(m.method) + le16(0) + le16(0) + le32(crc)
        out += le32(csize) + le32(usize) + le16(len(m.local_name)) + le16(len(m.extra))
        out += m.local_name + m.extra + m.stored
        local = off if m.local_override is None else m.local_override
        central += le32(0x02014B50) + le16(20) + le16(20) + le16(m.flags) + le16(m.method) + le16(0) + le16(0) + le32(crc)
        central += le32(csize) + le32(usize) + le16(len(m.name)) + le16(len(m.cextra)) + le16(0)
        central += le16(0) + le16(0) + le32(0) + le32(local) + m.name + m.cextra
    cd_offset = len(out)
    out += central
    n = len(members) if count_override is None else count_override
    cd_size = len(central) if cd_size_override is None else cd_size_override
    cdo = cd_offset if cd_offset_override is None else cd_offset_override
    if zip64:
        rec = len(out) if zip64_rec_override is None else zip64_rec_override
        out += le32(0x06064B50) + le64(44) + le16(45) + le16(45) + le32(0) + le32(0)
        out += le64(n) + le64(n) + le64(cd_size) + le64(cdo)
        out += le32(0x07064B50) + le32(0) + le64(rec) + le32(1)
        out += le32(0x06054B50) + le16(0) + le16(0) + le16(0xFFFF) + le16(0xFFFF) + le32(0xFFFFFFFF) + le32(0xFFFFFFFF)
        out += le16(len(comment)) + comment
    else:
        out += le32(0x06054B50) + le16(0) + le16(0) + le16(n) + le16(n) + le32(cd_size) + le32(cdo)
        out += le16(len(comment)) + comment
    return bytes(out)


def archive(pkl, storages=(("0", GOOD_STORAGE),), prefix="archive", extra=(), pkl_member=None):
    """The member layout torch.save writes."""
    members = [pkl_member or M(f"{prefix}/data.pkl", pkl)]
    members += [M(f"{prefix}/byteorder", b"little")]
    members += [M(f"{prefix}/data/{k}", d) for k, d in storages]
    members += list(extra)
    members += [M(f"{prefix}/version", b"3\n")]
    return zipfile_bytes(members)


# ---------------------------------------------------------------- the corpus
cases = []  # (name, bytes, expect, why)


def case(name, data, expect, why):
    cases.append((name, data, expect, why))


R = "refusing global"

# Dangerous callables via GLOBAL + REDUCE.
for mod, fn in [("os", "system"), ("builtins", "eval"), ("builtins", "exec"), ("posix", "system"),
                ("nt", "system"), ("subprocess", "Popen"), ("subprocess", "check_output"),
                ("__builtin__", "eval"), ("pty", "spawn"), ("runpy", "_run_code"),
                ("torch.storage", "_load_from_bytes"), ("torch", "load"), ("numpy.core.multiarray", "_reconstruct"),
                ("pickle", "loads"), ("builtins", "__import__"), ("operator", "attrgetter"),
                ("torch._utils", "_rebuild_tensor"), ("torch", "system")]:
    tag = f"global-{mod.replace('.', '_')}-{fn}"
    case(tag, archive(system_call(mod, fn, tag)), f"{R} '{mod}.{fn}'", f"GLOBAL {mod}.{fn} then REDUCE")

# torch.storage._load_from_bytes with a nested legacy pickle that itself calls os.system.
inner = P().glob("os", "system").s(f"touch {MARKER}load-from-bytes-inner").tuple1().reduce().stop().bytes()
p = P().glob("torch.storage", "_load_from_bytes").raw(b"B" + le32(len(inner)) + inner).tuple1().reduce().stop()
case("load-from-bytes-nested", archive(p.bytes()), f"{R} 'torch.storage._load_from_bytes'",
     "_load_from_bytes with an inner pickle calling os.system")

# builtins.getattr(builtins.__import__('os'), 'system')('touch ...')
tag = "getattr-chain"
p = P().glob("builtins", "getattr").glob("builtins", "__import__").s("os").tuple1().reduce()
p.s("system").op(0x86).reduce().s(f"touch {MARKER}{tag}").tuple1().reduce().stop()
case(tag, archive(p.bytes()), f"{R} 'builtins.getattr'", "getattr(__import__('os'), 'system')(...)")

# The same chain hidden behind an allowed global first (refused at the second GLOBAL).
tag = "getattr-after-allowed"
p = P().op(0x7D).put(0).glob("collections", "OrderedDict").put(1).glob("builtins", "getattr").get(1)
p.s("__init__").op(0x86).reduce().stop()
case(tag, archive(p.bytes()), f"{R} 'builtins.getattr'", "getattr on an allowed global")

# STACK_GLOBAL (protocol 4, FRAME + MEMOIZE), as newer pickles spell globals.
tag = "stack-global-os-system"
body = P(4).raw(b"\x95" + le64(0)).short("os").op(0x94).short("system").op(0x94).op(0x93).op(0x94)
body.short(f"touch {MARKER}{tag}").op(0x94).tuple1().reduce().stop()
case(tag, archive(body.bytes()), f"{R} 'os.system'", "STACK_GLOBAL os.system (protocol 4)")

# STACK_GLOBAL whose module/name come from the memo.
tag = "stack-global-memo"
p = P().s("posix").put(0).s("system").put(1).get(0).get(1).op(0x93).s(f"touch {MARKER}{tag}").tuple1().reduce().stop()
case(tag, archive(p.bytes()), f"{R} 'posix.system'", "STACK_GLOBAL with names fetched by BINGET")

# Opcodes that construct or call objects: refused as opcodes.
tag = "inst-os-system"
p = P().mark().s(f"touch {MARKER}{tag}").raw(b"ios\nsystem\n").stop()
case(tag, archive(p.bytes()), "unsupported or disallowed opcode 0x69", "INST os.system")
tag = "inst-allowed-name"
p = P().mark().raw(b"icollections\nOrderedDict\n").stop()
case(tag, archive(p.bytes()), "unsupported or disallowed opcode 0x69", "INST even on an allowed name")
tag = "obj-os-system"
p = P().mark().glob("os", "system").s(f"touch {MARKER}{tag}").op(0x6F).stop()
case(tag, archive(p.bytes()), f"{R} 'os.system'", "OBJ os.system")
tag = "obj-allowed-global"
p = P().mark().glob("collections", "OrderedDict").op(0x6F).stop()
case(tag, archive(p.bytes()), "unsupported or disallowed opcode 0x6f", "OBJ on an allowed global")
tag = "newobj-subprocess"
p = P().glob("subprocess", "Popen").mark().s("touch").s(f"{MARKER}{tag}").tuple().tuple1().op(0x81).stop()
case(tag, archive(p.bytes()), f"{R} 'subprocess.Popen'", "NEWOBJ subprocess.Popen")
tag = "newobj-allowed-global"
p = P().glob("collections", "OrderedDict").op(0x29).op(0x81).stop()
case(tag, archive(p.bytes()), "unsupported or disallowed opcode 0x81", "NEWOBJ on an allowed global")
tag = "newobj-ex"
p = P(4).glob("collections", "OrderedDict").op(0x29).op(0x7D).op(0x92).stop()
case(tag, archive(p.bytes()), "unsupported or disallowed opcode 0x92", "NEWOBJ_EX")
for code, label in [(0x82, "ext1"), (0x83, "ext2"), (0x84, "ext4")]:
    tag = f"extension-{label}"
    arg = {0x82: b"\x01", 0x83: b"\x01\x00", 0x84: b"\x01\x00\x00\x00"}[code]
    p = P().op(code).raw(arg).s(f"touch {MARKER}{tag}").tuple1().reduce().stop()
    case(tag, archive(p.bytes()), f"unsupported or disallowed opcode 0x{code:02x}", f"{label.upper()} (copyreg extension registry)")
tag = "persid-text"
p = P().raw(b"Pos.system\n").stop()
case(tag, archive(p.bytes()), "unsupported or disallowed opcode 0x50", "text PERSID")
tag = "persid-binary-not-storage"
p = P().glob("os", "system").s("touch").tuple1().op(0x51).stop()
case(tag, archive(p.bytes()), f"{R} 'os.system'", "BINPERSID with a callable")
tag = "persid-wrong-shape"
p = P().mark().s("module").s("os").s("x").s("cpu").i(1).tuple().op(0x51).stop()
case(tag, archive(p.bytes()), "persistent id must be ('storage', type, key, location, numel)", "BINPERSID whose tag is not 'storage'")
tag = "next-buffer"
p = P(5).op(0x97).stop()
case(tag, archive(p.bytes()), "unsupported or disallowed opcode 0x97", "protocol 5 out-of-band buffer")
tag = "readonly-buffer"
p = P(5).op(0x98).stop()
case(tag, archive(p.bytes()), "unsupported or disallowed opcode 0x98", "READONLY_BUFFER")
tag = "legacy-get-text"
p = P().op(0x7D).put(0).raw(b"g0\n").stop()
case(tag, archive(p.bytes()), "unsupported or disallowed opcode 0x67", "text GET")
tag = "text-int"
p = P().raw(b"I99999999999999999999999999999999\n").stop()
case(tag, archive(p.bytes()), "unsupported or disallowed opcode 0x49", "text INT (unbounded)")

# REDUCE / BUILD on things outside the allow-list.
tag = "reduce-on-string"
p = P().s("os.system").s(f"touch {MARKER}{tag}").tuple1().reduce().stop()
case(tag, archive(p.bytes()), "REDUCE on a str", "REDUCE on a str naming os.system")
tag = "reduce-on-dict"
p = P().op(0x7D).s(f"touch {MARKER}{tag}").tuple1().reduce().stop()
case(tag, archive(p.bytes()), "REDUCE on a dict", "REDUCE on a dict")
tag = "reduce-ordereddict-args"
p = P().glob("collections", "OrderedDict").mark().s("k").s(f"touch {MARKER}{tag}").op(0x86).op(0x5D).tuple().reduce().stop()
case(tag, archive(p.bytes()), "REDUCE collections.OrderedDict: expected no arguments, got 2", "OrderedDict(key, payload)")
tag = "reduce-args-not-tuple"
p = P().glob("collections", "OrderedDict").op(0x5D).s(f"touch {MARKER}{tag}").op(0x61).reduce().stop()
case(tag, archive(p.bytes()), "REDUCE collections.OrderedDict: arguments must be a tuple, found list", "OrderedDict with list args")
tag = "reduce-ordereddict-items"
p = P().glob("collections", "OrderedDict").mark().s(f"touch {MARKER}{tag}").tuple().tuple1().reduce().stop()
case(tag, archive(p.bytes()), "REDUCE collections.OrderedDict: expected no arguments, got 1", "OrderedDict(items)")
tag = "reduce-storage-type"
p = P().glob("torch", "FloatStorage").s(f"touch {MARKER}{tag}").tuple1().reduce().stop()
case(tag, archive(p.bytes()), "REDUCE on torch.FloatStorage is not allowed", "calling a storage class")
tag = "rebuild-tensor-bad-storage"
p = P().glob("torch._utils", "_rebuild_tensor_v2").mark().s(f"touch {MARKER}{tag}").i(0).op(0x29).op(0x29).op(0x89).op(0x4E).tuple().reduce().stop()
case(tag, archive(p.bytes()), "_rebuild_tensor_v2: argument 0 must be a storage, found str", "_rebuild_tensor_v2 on a string")
tag = "rebuild-tensor-hooks"
p = P().op(0x7D).mark()
p.s("w").glob("torch._utils", "_rebuild_tensor_v2").mark()
p.mark().s("storage").glob("torch", "FloatStorage").s("0").s("cpu").i(6).tuple().op(0x51)
p.i(0).int_tuple([6]).int_tuple([1]).op(0x89)
p.glob("collections", "OrderedDict").op(0x29).reduce().s("hook").s(f"touch {MARKER}{tag}").op(0x73)
p.tuple().reduce().op(0x75).stop()
case(tag, archive(p.bytes()), "backward hooks are not supported", "a tensor with backward hooks")
tag = "build-on-global"
p = P().glob("collections", "OrderedDict").op(0x7D).s("__setstate__").s(f"touch {MARKER}{tag}").op(0x73).op(0x62).stop()
case(tag, archive(p.bytes()), "BUILD on a global collections.OrderedDict is not allowed", "BUILD (__setstate__) on a class")
tag = "build-on-list"
p = P().op(0x5D).op(0x7D).s("__class__").s("os.system").op(0x73).op(0x62).stop()
case(tag, archive(p.bytes()), "BUILD on a list is not allowed", "BUILD on a list")
tag = "build-on-string"
p = P().s(f"touch {MARKER}{tag}").op(0x7D).op(0x62).stop()
case(tag, archive(p.bytes()), "BUILD on a str is not allowed", "BUILD on a str")
tag = "build-on-storage"
p = P().mark().s("storage").glob("torch", "FloatStorage").s("0").s("cpu").i(6).tuple().op(0x51).op(0x7D).op(0x62).stop()
case(tag, archive(p.bytes()), "BUILD on a storage is not allowed", "BUILD on a storage")

# Memo abuse.
case("memo-binget-unset", archive(P().op(0x7D).get(0).stop().bytes()), "memo index 0 was never stored", "BINGET of an unset index")
case("memo-long-binget-huge", archive(P().op(0x7D).op(0x6A).raw(le32(0xFFFFFFFF)).stop().bytes()),
     "memo index 4294967295 was never stored", "LONG_BINGET 2^32-1")
case("memo-long-binput-huge", archive(P().op(0x7D).op(0x72).raw(le32(0xFFFFFFFF)).stop().bytes()),
     "memo index 4294967295 out of range", "LONG_BINPUT 2^32-1")
case("memo-put-empty-stack", archive(P().put(3).stop().bytes()), "memo put with an empty stack", "BINPUT with nothing to store")
case("memoize-empty-stack", archive(P(4).op(0x94).stop().bytes()), "memo put with an empty stack", "MEMOIZE with nothing to store")
tag = "memo-global-reuse"
p = P().glob("collections", "OrderedDict").put(0).op(0x30).s("os").s("system").get(0).op(0x29).reduce().op(0x30).op(0x93).stop()
case(tag, archive(p.bytes()), f"{R} 'os.system'", "STACK_GLOBAL after memo juggling")

# Deep / cyclic structures.
p = P().op(0x5D)
for _ in range(200):
    p.op(0x5D)
for _ in range(200):
    p.op(0x61)
case("deep-lists", archive(p.stop().bytes()), "nesting deeper than 64", "200 nested lists")
q = P().op(0x7D).put(0)
for k in range(1, 200):
    q.op(0x7D).put(k)              # stack: d0 d1 ... dk
for k in range(199, 0, -1):
    # stack top is d_k; SETITEM on d_{k-1}: need [d_{k-1}, key, d_k]
    q.put(250).op(0x30)            # save d_k, pop it (stack top d_{k-1})
    q.s("k").get(250).op(0x73)     # d_{k-1}['k'] = d_k
case("deep-dicts", archive(q.stop().bytes()), "nesting deeper than 64", "200 nested dicts")
p = P().op(0x29)
for _ in range(100):
    p.op(0x29).op(0x86)
case("deep-tuple-pairs", archive(p.stop().bytes()), "nesting deeper than 64", "100 nested 2-tuples")
tag = "self-referential-list"
p = P().op(0x5D).put(0)
for _ in range(100):
    p.get(0).op(0x61)
case(tag, archive(p.stop().bytes()), "nesting deeper than 64", "a list that contains itself, appended 100 times")
tag = "self-referential-dict"
p = P().op(0x7D).put(0).s("w").get(0).op(0x73).stop()
case(tag, archive(p.bytes()), "'w' is a dict, expected a tensor", "a dict that contains itself")
p = P()
for _ in range(300):
    p.mark()
case("many-marks", archive(p.stop().bytes()), "nested MARKs", "300 MARKs")
case("pop-past-mark", archive(P().op(0x4E).mark().tuple1().stop().bytes()), "TUPLE1: popped past a MARK", "TUPLE1 reaching below a MARK")
case("pop-empty", archive(P().op(0x30).stop().bytes()), "POP: stack underflow", "POP on an empty stack")

# Huge length prefixes.
case("binunicode-2g", archive(P().raw(b"X" + le32(0x7FFFFFFF) + b"A").stop().bytes()),
     "BINUNICODE needs 2147483647 bytes but only", "BINUNICODE claiming 2^31-1 bytes")
case("binunicode-4g", archive(P().raw(b"X" + le32(0xFFFFFFFF) + b"A").stop().bytes()),
     "BINUNICODE needs 4294967295 bytes but only", "BINUNICODE claiming 2^32-1 bytes")
case("binunicode8-huge", archive(P(4).raw(b"\x8d" + le64(1 << 62) + b"A").stop().bytes()),
     "BINUNICODE8 length 4611686018427387904 exceeds the pickle", "BINUNICODE8 claiming 2^62 bytes")
case("binunicode8-max", archive(P(4).raw(b"\x8d" + le64(2 ** 64 - 1) + b"A").stop().bytes()),
     "BINUNICODE8 length 18446744073709551615 exceeds the pickle", "BINUNICODE8 claiming 2^64-1 bytes")
case("binbytes-4g", archive(P(3).raw(b"B" + le32(0xFFFFFFFF) + b"A").stop().bytes()),
     "BINBYTES length 4294967295 exceeds", "BINBYTES claiming 2^32-1 bytes")
case("binbytes8-max", archive(P(4).raw(b"\x8e" + le64(2 ** 63) + b"A").stop().bytes()),
     "BINBYTES length 9223372036854775808 exceeds", "BINBYTES8 claiming 2^63 bytes")
case("binstring-negative", archive(P().raw(b"T" + le32(0xFFFFFFFF) + b"A").stop().bytes()),
     "BINSTRING needs -1 bytes", "BINSTRING with a negative length")
case("long4-huge", archive(P().raw(b"\x8b" + le32(0x80000000) + b"\x01").stop().bytes()),
     "LONG of 2147483648 bytes does not fit in 64 bits", "LONG4 claiming 2^31 bytes")
case("long1-9-bytes", archive(P().raw(b"\x8a\x09" + b"\xff" * 9).stop().bytes()),
     "LONG of 9 bytes does not fit in 64 bits", "a 72-bit integer")
case("frame-huge", archive(P(4).raw(b"\x95" + le64(2 ** 63)).op(0x7D).stop().bytes()),
     None, "FRAME claiming 2^63 bytes (frames are advisory; the dict loads empty)")
case("global-line-huge", archive(P().raw(b"c" + b"o" * 100000 + b"\nsystem\n").stop().bytes()),
     "GLOBAL name longer than 512 bytes", "a 100 kB module name")
case("global-unterminated", archive(P().raw(b"cos").bytes()), "GLOBAL: unterminated name", "GLOBAL without newline")

# Storages and tensor geometry.
case("offset-beyond-storage", archive(state_dict([("w", "0", 6, 5, [2, 3], [3, 1])])),
     "exceed storage '0' of 6 elements", "storage offset 5 + 6 elements > 6")
case("offset-huge", archive(state_dict([("w", "0", 6, 2 ** 62, [2, 3], [3, 1])])),
     "exceed storage '0'", "storage offset 2^62")
case("offset-overflow", archive(state_dict([("w", "0", 6, 2 ** 63 - 1, [2, 3], [3, 1])])),
     "exceed storage '0'", "offset + count overflows")
case("offset-negative", archive(state_dict([("w", "0", 6, -1, [2, 3], [3, 1])])),
     "negative storage offset -1", "storage offset -1")
case("shape-beyond-storage", archive(state_dict([("w", "0", 6, 0, [1 << 20, 1 << 20], [1 << 20, 1])])),
     "exceed storage '0' of 6 elements", "a 2^40-element view of a 6-element storage")
case("shape-beyond-file", archive(state_dict([("w", "0", 1 << 40, 0, [1 << 40], [1])])),
     "declares 1099511627776 x F32 but its entry holds 24 bytes", "storage numel 2^40 in a tiny file")
case("numel-negative", archive(state_dict([("w", "0", -6, 0, [2, 3], [3, 1])])),
     "declares -6 x F32", "negative storage numel")
case("numel-overflow", archive(state_dict([("w", "0", 2 ** 62, 0, [2, 3], [3, 1])])),
     "declares 4611686018427387904 x F32", "numel x 4 overflows")
case("shape-overflow", archive(state_dict([("w", "0", 6, 0, [2 ** 62, 4], [4, 1])])),
     "negative or overflows", "shape product overflows")
case("rank-mismatch", archive(state_dict([("w", "0", 6, 0, [2, 3], [1])])),
     "different ranks", "size and stride of different ranks")
case("stride-zero", archive(state_dict([("w", "0", 6, 0, [2, 3], [0, 0])])),
     "not contiguous", "broadcast (stride 0) view")
case("stride-negative", archive(state_dict([("w", "0", 6, 0, [2, 3], [-3, 1])])),
     "not contiguous", "negative stride")
case("storage-retyped", archive(state_dict([("w", "0", 6, 0, [6], [1]), ("v", "0", 3, 0, [3], [1], "DoubleStorage")])),
     "referenced with different types or sizes", "one storage referenced as F32 then F64")
case("storage-key-traversal", archive(state_dict([("w", "../../../../etc/passwd", 6, 0, [6], [1])])),
     "storage '../../../../etc/passwd' has no entry", "storage key with ../ (looked up in the archive only)")
case("storage-key-absolute", archive(state_dict([("w", "/etc/passwd", 6, 0, [6], [1])])),
     "storage '/etc/passwd' has no entry", "absolute storage key")
# Tied weights: two tensors viewing one storage, overlapping. torch writes this for tied
# embeddings, so it must load (read-only views, nothing is written through them).
case("overlapping-views", archive(state_dict([("a", "0", 6, 0, [4], [1]), ("b", "0", 6, 2, [4], [1])])),
     None, "two overlapping views of one storage (legal: tied weights)")
# Two zip entries whose data overlap (both central entries point at one local header).
pk = GOOD_PKL
members = [M("archive/data.pkl", pk), M("archive/data/0", GOOD_STORAGE)]
local0 = 30 + len("archive/data.pkl") + len(pk)
members.append(M("archive/data/1", GOOD_STORAGE, local_override=local0))
case("overlapping-entries", zipfile_bytes(members), None,
     "two zip entries sharing one local header / data range (harmless: mapped read-only, never extracted)")
case("storage-is-the-pickle", zipfile_bytes([M("archive/data.pkl", state_dict([("w", "0", len(GOOD_PKL) // 4, 0, [1], [1])]))]),
     "storage '0' has no entry", "storage key pointing nowhere")

# Zip container abuse.
comp = zlib.compressobj(9, zlib.DEFLATED, -15)
EVIL = system_call("os", "system", "zip-layer")
deflated = comp.compress(EVIL) + comp.flush()
case("zip-compressed-pickle", zipfile_bytes([M("archive/data.pkl", EVIL, method=8, stored_data=deflated),
                                             M("archive/data/0", GOOD_STORAGE)]),
     "entry 'archive/data.pkl' is compressed (method 8)", "deflated data.pkl")
comp2 = zlib.compressobj(9, zlib.DEFLATED, -15)
zeros = comp2.compress(b"\0" * (64 << 20)) + comp2.flush()
case("zip-bomb-storage", zipfile_bytes([M("archive/data.pkl", EVIL), M("archive/data/0", b"", method=8, stored_data=zeros, usize=64 << 20)]),
     "entry 'archive/data/0' is compressed (method 8)", "64 MB of zeros deflated to 64 kB")
case("zip-bzip2", zipfile_bytes([M("archive/data.pkl", EVIL, method=12)]), "is compressed (method 12)", "bzip2 method")
case("zip-encrypted", zipfile_bytes([M("archive/data.pkl", EVIL, flags=1), M("archive/data/0", GOOD_STORAGE)]),
     "entry 'archive/data.pkl' is encrypted", "traditional PKWARE encryption flag")
case("zip-strong-encryption", zipfile_bytes([M("archive/data.pkl", EVIL, flags=0x41), M("archive/data/0", GOOD_STORAGE)]),
     "is encrypted", "strong encryption flag")
case("zip-duplicate-pickle", zipfile_bytes([M("archive/data.pkl", EVIL), M("archive/data.pkl", system_call("os", "system", "dup")),
                                           M("archive/data/0", GOOD_STORAGE)]),
     "duplicate entry name 'archive/data.pkl'", "two data.pkl entries, the second one evil")
case("zip-two-prefixes", zipfile_bytes([M("a/data.pkl", GOOD_PKL), M("b/data.pkl", system_call("os", "system", "two-prefixes")),
                                       M("a/data/0", GOOD_STORAGE)]),
     "several data.pkl entries", "data.pkl under two prefixes")
case("zip-local-outside", zipfile_bytes([M("archive/data.pkl", EVIL, local_override=0x7FFFFFF0)]),
     "local header offset 2147483632 is outside the archive", "local header beyond the end")
case("zip-local-misplaced", zipfile_bytes([M("archive/data.pkl", EVIL, local_override=7)]),
     "bad signature", "local header offset into the middle of a member")
case("zip-size-outside", zipfile_bytes([M("archive/data.pkl", EVIL, csize=0x7FFFFFFF, usize=0x7FFFFFFF)]),
     "runs outside the archive's data area", "member size 2^31-1 in a tiny file")
case("zip-size-mismatch", zipfile_bytes([M("archive/data.pkl", EVIL, csize=10)]),
     "compressed size 10 != size", "stored member with differing sizes")
case("zip-cd-outside", zipfile_bytes([M("archive/data.pkl", EVIL)], cd_offset_override=0x7FFFFF00),
     "central directory [2147483392", "central directory offset outside the file")
case("zip-cd-size-huge", zipfile_bytes([M("archive/data.pkl", EVIL)], cd_size_override=0xFFFFFFF0),
     "lies outside the",
     "central directory size 2^32-16")
case("zip-count-huge", zipfile_bytes([M("archive/data.pkl", EVIL)], count_override=0xFFFE),
     "cannot hold 65534 entries", "65534 entries claimed")
case("zip64-count-huge", zipfile_bytes([M("archive/data.pkl", EVIL)], count_override=2 ** 62, zip64=True),
     "cannot hold 4611686018427387904 entries", "zip64 record claiming 2^62 entries")
case("zip64-count-max", zipfile_bytes([M("archive/data.pkl", EVIL)], count_override=2 ** 64 - 1, zip64=True),
     "64-bit field at offset", "zip64 record claiming 2^64-1 entries")
case("zip64-record-outside", zipfile_bytes([M("archive/data.pkl", EVIL)], zip64=True, zip64_rec_override=2 ** 40),
     "zip64 end-of-central-directory record at 1099511627776 is invalid or outside the file", "zip64 locator pointing past the end")
ex = le16(1) + le16(16) + le64(2 ** 62) + le64(2 ** 62)
case("zip64-extra-size-huge", zipfile_bytes([M("archive/data.pkl", EVIL, csize=0xFFFFFFFF, usize=0xFFFFFFFF, cextra=ex)]),
     "runs outside the archive's data area", "zip64 extra field claiming 2^62-byte member")
ex = le16(1) + le16(4) + le32(7)
case("zip64-extra-short", zipfile_bytes([M("archive/data.pkl", EVIL, csize=0xFFFFFFFF, usize=0xFFFFFFFF, cextra=ex)]),
     "zip64 extra field too short", "truncated zip64 extra field")
ex = le16(1) + le16(0xFFFF) + le64(1)
case("zip64-extra-overlong", zipfile_bytes([M("archive/data.pkl", EVIL, local_override=0xFFFFFFFF, cextra=ex)]),
     "saturated sizes but no zip64 extra field", "extra field length past its end")
case("zip-name-not-utf8", zipfile_bytes([M(b"archive/\xff\xfe.pkl", EVIL)]), "name is not valid UTF-8", "latin-1 member name")
case("zip-multidisk", zipfile_bytes([M("archive/data.pkl", EVIL)])[:-22] +
     le32(0x06054B50) + le16(1) + le16(0) + le16(1) + le16(1) + le32(0) + le32(0) + le16(0),
     "multi-disk archives are not supported", "disk number 1")
# Zip-slip names: nothing is ever extracted, so these are only names; the archive must not
# be able to smuggle a pickle through them either.
case("zipslip-only", zipfile_bytes([M(f"../../../../../..{MARKER}zipslip-only", system_call("os", "system", "zipslip-only"))]),
     "no '<prefix>/data.pkl' entry", "only a ../../ member")
case("zipslip-pickle-prefix", zipfile_bytes([M("../data.pkl", system_call("os", "system", "zipslip-pickle-prefix"))]),
     f"{R} 'os.system'", "data.pkl under the prefix '..' (never extracted; the pickle is still restricted)")
case("zipslip-extra-member", archive(GOOD_PKL, extra=[M(f"archive/../../../../..{MARKER}zipslip-extra", b"#!/bin/sh\ntouch x\n"),
                                                        M(f"{MARKER}zipslip-absolute", b"x")]),
     None, "a valid archive plus ../ and absolute members (ignored: nothing is extracted)")
case("zip-byteorder-big", archive(EVIL, extra=[]).replace(b"little", b"big\n\n\n"), "byteorder is 'big'", "big-endian byteorder")

# Not a zip at all.
case("legacy-pickle-os-system", system_call("os", "system", "legacy-pickle"), "legacy (pre-1.6) torch.save format",
     "a bare pickle (legacy torch.save) calling os.system")
case("empty", b"", "too short for a zip archive", "empty file")
case("eocd-only", le32(0x06054B50) + b"\0" * 18, "no '<prefix>/data.pkl' entry", "an empty zip")
case("eocd-comment-trick", zipfile_bytes([M("archive/data.pkl", EVIL)], comment=b"PK\x05\x06" + b"\0" * 18),
     "no '<prefix>/data.pkl' entry", "a fake empty EOCD inside the comment (found first)")


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".bin"):
            os.remove(os.path.join(OUT, f))
    manifest = {}
    total = 0
    for name, data, expect, why in cases:
        fn = f"{name}.bin"
        assert fn not in manifest, fn
        with open(os.path.join(OUT, fn), "wb") as fh:
            fh.write(data)
        total += len(data)
        manifest[fn] = {"expect": expect, "why": why}
    with open(os.path.join(OUT, "MANIFEST.json"), "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(f"{len(cases)} files, {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
