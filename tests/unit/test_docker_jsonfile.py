"""Reading json-file logs directly: the decoder gives exactly the lines the API's stream gives
for the same entries (so ids and checkpoints match), rotated files are read in order, and the
follower crosses rotations."""

from __future__ import annotations

import asyncio
import json
import struct
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.sources.docker.jsonfile import JsonFileDecoder, JsonFileStream, log_files, readable_log
from shipper.sources.docker.stream import Line, StreamDecoder

T0 = 1_795_217_699_049_677_385


def go_time(ns: int, fixed: bool) -> bytes:
    """RFC3339Nano as Go writes it: json-file trims trailing fraction zeros, the API does not."""
    secs, frac = divmod(ns, 1_000_000_000)
    digits = f"{frac:09d}" if fixed else f"{frac:09d}".rstrip("0")
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + (f".{digits}" if digits else "") + "Z").encode()


def json_file_line(stream: str, ns: int, text: bytes, attrs: dict | None = None) -> bytes:
    """One entry as dockerd's json-file driver writes it (Go's escaping, HTML characters too)."""
    log = json.dumps(text.decode(), ensure_ascii=False)
    log = log.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    a = f',"attrs":{json.dumps(attrs, separators=(",", ":"))}' if attrs else ""
    return f'{{"log":{log},"stream":"{stream}"{a},"time":"{go_time(ns, False).decode()}"}}\n'.encode()


def api_frame(stream: str, ns: int, text: bytes) -> bytes:
    payload = go_time(ns, True) + b" " + text
    return struct.pack(">BxxxI", 1 if stream == "stdout" else 2, len(payload)) + payload


def decode(decoder, data: bytes, cut: int) -> list[Line]:
    return [Line(*x) for x in decoder.feed(data[:cut]) + decoder.feed(data[cut:]) + decoder.flush()]


_text = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=60)
_entries = st.lists(st.tuples(st.sampled_from(["stdout", "stderr"]), st.integers(0, 3), _text, st.booleans()),
                    min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(_entries, st.integers(0, 4000), st.integers(8, 200))
def test_the_same_entries_give_the_same_lines_from_the_file_and_from_the_api(entries, cut, max_bytes):
    file_bytes, api_bytes, ns = b"", b"", T0
    for stream, step, text, complete in entries:
        ns += step * 1000
        body = text.encode() + (b"\n" if complete else b"")
        file_bytes += json_file_line(stream, ns, body)
        api_bytes += api_frame(stream, ns, body)
    from_file = decode(JsonFileDecoder(max_bytes), file_bytes, cut % (len(file_bytes) + 1))
    from_api = decode(StreamDecoder(max_bytes), api_bytes, cut % (len(api_bytes) + 1))
    assert from_file == from_api


def test_common_lines_pieces_attrs_and_since():
    data = (json_file_line("stdout", T0, b'GET "/" 200 <ok> & \\ done\ttab\n')
            + json_file_line("stderr", T0 + 1, b"first half ")
            + json_file_line("stderr", T0 + 2, b"second half\n")
            + json_file_line("stdout", T0 + 3, b"labelled\n", {"com.example": "x"}))
    d = JsonFileDecoder()
    assert [Line(*x) for x in d.feed(data) + d.flush()] == [
        Line("stdout", T0, b'GET "/" 200 <ok> & \\ done\ttab'),
        Line("stderr", T0 + 1, b"first half second half", False, True),
        Line("stdout", T0 + 3, b"labelled"),
    ]
    d = JsonFileDecoder(since_ns=T0 + 3)
    assert [x[2] for x in d.feed(data)] == [b"labelled"]
    assert d.bad_entries == 0


def test_tty_line_ends_and_bad_entries():
    d = JsonFileDecoder(tty=True)
    out = d.feed(json_file_line("stdout", T0, b"prompt\r\n") + b"not json at all\n" + b'{"log":1}\n')
    assert [Line(*x) for x in out] == [Line("stdout", T0, b"prompt")]
    assert d.bad_entries == 2


def test_rotated_files_oldest_first(tmp_path: Path):
    cur = tmp_path / "abc-json.log"
    for name in ("abc-json.log", "abc-json.log.1", "abc-json.log.2", "abc-json.log.10", "other-json.log.1"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in log_files(cur)] == ["abc-json.log.10", "abc-json.log.2", "abc-json.log.1", "abc-json.log"]


def test_which_containers_are_read_from_files(tmp_path: Path):
    d = tmp_path / "cid"
    d.mkdir()
    (d / "cid-json.log").write_bytes(b"")
    path = str(d / "cid-json.log")
    assert readable_log("json-file", path, "cid", "") == d / "cid-json.log"
    assert readable_log("json-file", "/elsewhere/cid/cid-json.log", "cid", str(tmp_path)) == d / "cid-json.log"
    assert readable_log("local", path, "cid", "") is None
    assert readable_log("json-file", str(tmp_path / "missing.log"), "cid", "") is None
    (d / "cid-json.log.1.gz").write_bytes(b"")
    assert readable_log("json-file", path, "cid", "") is None  # compressed rotations: the API reads those


def test_follower_reads_rotated_files_in_order_and_ends_when_the_container_stops(tmp_path: Path):
    cur = tmp_path / "c-json.log"
    cur.write_bytes(json_file_line("stdout", T0, b"one\n"))
    stopped = asyncio.Event()

    async def running() -> bool:
        return not stopped.is_set()

    async def go() -> list[bytes]:
        d, out = JsonFileDecoder(), list[bytes]()

        async def read() -> None:
            async for chunk in JsonFileStream(cur, 0, True, running).chunks():
                out.extend(x[2] for x in d.feed(chunk))

        task = asyncio.create_task(read())
        await asyncio.sleep(0.1)
        with open(cur, "ab") as f:
            f.write(json_file_line("stdout", T0 + 1, b"two\n"))
        # two rotations between polls: .2 is the file we hold, .1 the one after it
        cur.rename(tmp_path / "c-json.log.1")
        (tmp_path / "c-json.log.1").write_bytes((tmp_path / "c-json.log.1").read_bytes()
                                                + json_file_line("stdout", T0 + 2, b"three\n"))
        (tmp_path / "c-json.log.1").rename(tmp_path / "c-json.log.2")
        (tmp_path / "c-json.log.1").write_bytes(json_file_line("stdout", T0 + 3, b"four\n"))
        cur.write_bytes(json_file_line("stdout", T0 + 4, b"five\n"))
        await asyncio.sleep(0.5)
        with open(cur, "ab") as f:
            f.write(json_file_line("stdout", T0 + 5, b"six\n"))
        stopped.set()
        await asyncio.wait_for(task, 10)
        return out

    assert asyncio.run(go()) == [b"one", b"two", b"three", b"four", b"five", b"six"]
