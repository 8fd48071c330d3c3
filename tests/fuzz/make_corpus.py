#!/usr/bin/env python3
"""chronicle — writes the seed corpus of the fuzz targets: tests/fuzz/corpus/<target>/.

Small hand-made inputs, one per interesting shape (see each target's header comment for
its input format). Run from anywhere; it replaces the corpus directories it writes.
    python3 tests/fuzz/make_corpus.py
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

SEG = 16384
HDR = 4096  # header_size of a 16 KiB segment
TS0 = 1_790_000_000_000_000_000
DATA = b"DATA"
SEAL = b"SEAL"


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def patches(*items):
    """fuzz_segment patch list: (segment 0/1, offset, bytes)..."""
    out = b""
    for seg, off, b in items:
        out += struct.pack("<HB", (seg << 15) | off, len(b)) + b
    return out


def segment():
    names = ["rolled", "single", "batch-preparing", "roll-no-seal", "fresh",
             "seal-missing-next", "uncommitted-after-tail", "base-1000"]
    for layout, name in enumerate(names):
        write("segment", f"layout{layout}-{name}", bytes([layout, 0, 0]))
    # Flags: stale .next.seg.tmp, odd file size, roll after recovery, reader across.
    write("segment", "tmp-left-over", bytes([0x08, 3, 0]))
    write("segment", "short-file", bytes([0x10 | 1, 0, 2]))
    write("segment", "long-file", bytes([0x10, 0, 5]))
    write("segment", "roll-after-recovery", bytes([0x20 | 1, 9, 0]))
    write("segment", "reader-across-recovery", bytes([0x40 | 0x20, 40, 0]))
    # XOR damage: a flipped byte in each header field of the first segment.
    for field, off in [("magic", 0), ("version", 8), ("header_size", 13), ("segment_size", 17),
                       ("base_seq", 24), ("stride", 40), ("slots", 44), ("seg_state", 48),
                       ("written_hw", 57), ("slot0", 64), ("slot1", 72)]:
        write("segment", f"xor-{field}", bytes([1, 0, 0]) + bytes(off) + b"\x01")
    # XOR damage in the records: the first record's state and length.
    write("segment", "xor-record0-state", bytes([1, 0, 0]) + bytes(256) + b"\x01")
    write("segment", "xor-record0-length", bytes([1, 0, 0]) + bytes(256 + 4) + b"\x40")
    # Patches (ctrl bit 7): values a damaged file could hold.
    p = 0x80
    write("segment", "patch-seg-state-preparing",
          bytes([p | 1, 0, 0]) + patches((0, 48, struct.pack("<I", 0))))
    write("segment", "patch-state-garbage",
          bytes([p | 1, 0, 0]) + patches((0, HDR, b"XXXX")))
    write("segment", "patch-length-huge",
          bytes([p | 1, 0, 0]) + patches((0, HDR + 4, struct.pack("<I", 0xFFFFFFF0))))
    write("segment", "patch-written-hw-huge",
          bytes([p | 1, 0, 0]) + patches((0, 56, struct.pack("<Q", 1 << 62))))
    write("segment", "patch-slot-past-end",
          bytes([p | 1, 0, 0]) + patches((0, 64 + 8, struct.pack("<Q", (3 << 32) | 16000))))
    write("segment", "patch-slot-unaligned",
          bytes([p | 1, 0, 0]) + patches((0, 64, struct.pack("<Q", HDR + 4))))
    write("segment", "patch-base-mismatch",
          bytes([p | 0, 0, 0]) + patches((1, 24, struct.pack("<Q", 7))))
    write("segment", "patch-seal-first",
          bytes([p | 1, 0, 0]) + patches((0, HDR, SEAL + struct.pack("<IQ", 0, TS0))))
    write("segment", "patch-seal-first-of-next",
          bytes([p | 0, 0, 0]) + patches((1, HDR, SEAL + struct.pack("<IQ", 0, TS0))))
    write("segment", "patch-record-after-tail",
          bytes([p | 1, 0, 0]) + patches((0, 12000, DATA + struct.pack("<IQ", 3, TS0) + b"abc")))


def cursor():
    for k in (0, 3, 19, 20, 25):
        write("cursor", f"valid-at-{k}", bytes([0, k]))
    page = bytearray(4096)
    struct.pack_into("<QIIQQQ", page, 0, 0x3152554331524843, 1, 4096, TS0, 5, TS0)
    write("cursor", "raw-valid-page", bytes([1, 0]) + bytes(page))
    write("cursor", "raw-header-only", bytes([1, 0]) + bytes(page[:64]))
    write("cursor", "raw-empty", bytes([1, 0]))
    write("cursor", "follow", bytes([2, 4]))
    write("cursor", "reset-and-delete", bytes([4, 7]))
    write("cursor", "reset-dry-run", bytes([4 | 8, 30]))
    write("cursor", "anonymous-too", bytes([0x10 | 2, 1]))
    write("cursor", "xor-magic", bytes([0, 2, 1]))
    write("cursor", "xor-version", bytes([0, 2]) + bytes(8) + b"\x02")
    write("cursor", "xor-position", bytes([0, 2]) + bytes(24) + bytes(7) + b"\x80")
    write("cursor", "xor-sleep-word", bytes([2, 2]) + bytes(64) + b"\x01")


def efd():
    base = {"version": 1, "name": "fz", "pid": 1, "fd": 8, "start_time": 238149,
            "eventfd_id": 1, "fifo": "fz.fifo", "cursor": "fz.cursor",
            "created_ns": TS0, "ephemeral": False}
    write("efd", "valid", json.dumps(base, separators=(",", ":")) + "\n")
    write("efd", "portable", json.dumps(dict(base, fd=-1, eventfd_id=0, fifo="")) + "\n")
    e = dict(base, name="~anon.1.0", fifo="~anon.1.0.fifo", cursor="~anon.1.0.cursor",
             ephemeral=True)
    write("efd", "ephemeral", json.dumps(e) + "\n")
    write("efd", "other-name", json.dumps(dict(base, name="mon", fifo="mon.fifo",
                                               cursor="mon.cursor")) + "\n")
    minimal = {k: base[k] for k in ("version", "name", "pid", "fd", "start_time", "cursor")}
    write("efd", "minimal", json.dumps(minimal))
    write("efd", "path-trick", json.dumps(dict(base, cursor="../writer.lock")) + "\n")
    write("efd", "big-numbers", json.dumps(dict(base, pid=2**40, fd=2**31,
                                                start_time=2**64 - 1)) + "\n")
    write("efd", "wrong-types", json.dumps(dict(base, pid="1", eventfd_id=-1)) + "\n")
    write("efd", "not-json", "pid=1 fd=8\n")


def writer_lock():
    write("writer_lock", "valid", '{"pid":1234,"start_time":238149,"started_ns":%d}\n' % TS0)
    write("writer_lock", "empty", "")
    write("writer_lock", "pid-only", '{"pid":1}')
    write("writer_lock", "pid-big", '{"pid":4294967297,"start_time":18446744073709551615}')
    write("writer_lock", "pid-negative", '{"pid":-1,"start_time":-5}')
    write("writer_lock", "truncated", '{"pid":12')
    write("writer_lock", "array", "[1,2,3]")
    write("writer_lock", "binary", bytes(range(0, 256, 7)))


def retention():
    base = {"version": 1, "max_bytes": 0, "max_age_ms": 0, "max_records": 0,
            "keep_free_bytes": 0, "keep_free_percent": 0, "mode": "soft"}
    cases = {
        "max-bytes": {"max_bytes": 40000},
        "max-bytes-hard": {"max_bytes": 1, "mode": "hard"},
        "max-records": {"max_records": 50},
        "max-age": {"max_age_ms": 1000},
        "keep-free-percent": {"keep_free_percent": 99},
        "keep-free-bytes": {"keep_free_bytes": 1 << 62},
        "all": {"max_bytes": 30000, "max_age_ms": 86400000, "max_records": 100,
                "keep_free_percent": 1, "mode": "hard"},
    }
    for name, fields in cases.items():
        write("retention", name, json.dumps({**base, **fields}, indent=2) + "\n")
    write("retention", "version-2", '{"version": 2}')
    write("retention", "both-keep-free", '{"version":1,"keep_free_bytes":1,"keep_free_percent":1}')
    write("retention", "minimal", '{"version":1,"max_records":1}')


def framing():
    write("framing", "lines", b"\x00" + b"one\ntwo\n\nthree")
    write("framing", "nul", b"\x01" + b"a\x00bc\x00\x00d")
    write("framing", "long-lines", b"\x00" + b"".join(b"%d\n" % i for i in range(40)))
    write("framing", "stop-at-3", bytes([3 << 1]) + b"".join(b"line %d\n" % i for i in range(20)))
    frames = b"".join(struct.pack(">I", len(p)) + p for p in (b"", b"x", b"hello", bytes(70)))
    write("framing", "len32", b"\x00" + frames + b"\x00\x00")
    write("framing", "names", b"\x00len32")


def cli_parsers():
    for i, s in enumerate(["64M", "16K", "1G", "4096", "16KiB", "2MB", "500ms", "1.5s", "2m",
                           "1h", "1d", "90us", "10", "2026-11-24T13:05:00Z",
                           "2026-11-24T13:05:00.250+01:00", "2026-11-24 13:05", "2026-11-24",
                           "@1795528496.5", "@1795528496", "-1", "1e3", "inf", "nan", "0x10",
                           "18446744073709551615", "18446744073709551616", " 7", "+5", "5.",
                           ".5ms", "2024-02-29T23:59:59.999999999+14:00", "2026-02-29",
                           "2026-13-45T99:99:99Z", "2026-11-24T13:05+0530", "@18446744073",
                           "@18446744073.709551615", "1969-12-31T23:59:59Z", "86400.5"]):
        write("cli_parsers", "%02d" % i, s)


def format_():
    def rec(seq, ts, tmpl, payload):
        return struct.pack("<QQB", seq, ts, len(tmpl)) + tmpl + payload
    write("format", "text", rec(7, TS0, b"%q\t%s\\n", b"hello world"))
    write("format", "all-fields", rec(2**64 - 1, 2**64 - 1, b"%q %t %T %l %s %%\\t\\0\\\\", b"x"))
    write("format", "escapes", rec(0, 0, b"", b"quote\" backslash\\ tab\t nl\n ctl\x01"))
    write("format", "utf8", rec(1, TS0, b"%s", "héllo €𝄞".encode()))
    write("format", "binary", rec(1, TS0, b"%l", b"\xff\xfe\x00\x80\xc0\xaf"))
    write("format", "bad-field", rec(1, TS0, b"%x", b""))


if __name__ == "__main__":
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    segment()
    cursor()
    efd()
    writer_lock()
    retention()
    framing()
    cli_parsers()
    format_()
