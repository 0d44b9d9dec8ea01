"""The probe and the eBPF source without Elasticsearch: the kernel filter (own process,
dockerd), and the write shapes (writev, sendto/sendmsg to /dev/log, connect + send)."""

from __future__ import annotations

import asyncio
import ctypes
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from shipper.sources.ebpf.cgroups import cgroup_id, container_of_path
from shipper.config import EbpfSettings
from shipper.core.container import Container, ContainerRegistry
from shipper.core.record import Record
from tests.conftest import wait_until


def _probe(**kw: Any) -> tuple[Any, list[Any]]:
    from shipper.sources.ebpf import events
    from shipper.sources.ebpf.loader import Probe

    p = Probe(**kw)
    seen: list[Any] = []
    p.open_events(lambda _c, data, size: seen.append(events.decode(ctypes.string_at(data, size))))
    return p, seen


def _own_cgroup() -> int:
    rel = Path("/proc/self/cgroup").read_text().splitlines()[-1].split("::", 1)[1].lstrip("/")
    for root in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        if (root / rel / "cgroup.procs").exists():
            return os.stat(root / rel).st_ino
    raise AssertionError("no cgroup v2 directory for this process")


def test_own_process_is_excluded_in_the_kernel_and_children_are_not(bpf_ready, tmp_path):
    from shipper.sources.ebpf import events as E

    p, seen = _probe(self_tgid=os.getpid())
    try:
        p.add_cgroup(_own_cgroup())  # trace this process's cgroup: only the tgid check keeps us out
        path = f"/tmp/logship-self-{uuid.uuid4().hex}.log"
        with open(path, "ab", buffering=0) as f:
            f.write(b"self-line\n")
        subprocess.run(["sh", "-c", f"echo child-line >> {path}"], check=True)
        p.remove_cgroup(_own_cgroup())
        time.sleep(0.05)
        p.consume()
        writes = [e for e in seen if e.kind == E.WRITE]
        assert any(e.data == b"child-line\n" for e in writes), "the child's write was not captured"
        assert not any(b"self-line" in e.data for e in writes)
        assert not any(e.tgid == os.getpid() for e in seen)
    finally:
        p.close()
        Path(path).unlink(missing_ok=True)


# A child of the test writes one buffered flush of each size (write, then writev of 3 iovecs).
FLUSHES = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
for n in (8192, 16384, 32768, 40000):
    os.write(fd, bytes([97 + n % 26]) * (n - 1) + b"\n")
os.writev(fd, [b"a" * 5000, b"b" * 9000, b"c" * 20000])
"""


def test_a_write_is_copied_whole_up_to_the_capture_and_cut_flagged_beyond(bpf_ready, tmp_path):
    """Runtimes flush 8-32 KiB per write(); the default capture copies each whole, so a job
    that exits at once needs no read-back. Past it, the copy is cut and flagged."""
    from shipper.sources.ebpf import events as E

    p, seen = _probe(self_tgid=os.getpid())
    cap = EbpfSettings().capture_bytes
    assert p.capture == cap >= 32768
    path = tmp_path / "flush.log"
    try:
        p.add_cgroup(_own_cgroup())
        subprocess.run([sys.executable, "-c", FLUSHES, str(path)], check=True)
        p.remove_cgroup(_own_cgroup())
        time.sleep(0.05)
        p.consume()
        writes = [e for e in seen if e.kind == E.WRITE and e.fd > 2]
        body = path.read_bytes()
        sizes = [8192, 16384, 32768, 40000, 34000]
        assert [e.arg1 for e in writes] == sizes
        at = 0
        for e, n in zip(writes, sizes, strict=True):
            assert e.data == body[at:at + min(n, cap)]
            assert bool(e.flags & E.WF_TRUNCATED) == (n > cap)
            at += n
    finally:
        p.close()


def test_dockerd_json_file_writes_are_never_captured(bpf_ready, containers, busybox):
    from shipper.sources.ebpf import events as E

    p, seen = _probe()
    try:
        c = containers(busybox, ["sh", "-c", "sleep 1; seq 1 50; sleep 600"], network_mode="none")
        c.reload()
        cg = cgroup_id(c.id)
        assert cg is not None
        p.add_cgroup(cg)
        wait_until(lambda: b"50" in c.logs(), 20, what="the container's stdout in its json-file log")
        time.sleep(0.2)
        p.consume()
        dockerd = {int(x) for x in subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True,
                                                   text=True).stdout.split()}
        assert dockerd, "dockerd is not running"
        # Every new cgroup is told, whoever made it (dockerd's runc, here): the container's by id
        made = [(e.arg1, container_of_path(e.data.decode())) for e in seen if e.kind == E.CGROUP]
        assert (cg, c.id) in made, made
        syscalls = [e for e in seen if e.kind != E.CGROUP]
        assert all(e.cgroup == cg for e in syscalls)  # only the container's cgroup passes the filter
        assert not any(e.tgid in dockerd for e in syscalls)
        assert not [e for e in syscalls if e.kind == E.WRITE]  # stdout is a pipe, left to the Docker source
    finally:
        p.close()


WRITER = r"""
import os, socket, time
time.sleep(1.5)
fd = os.open("/var/log/v.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.writev(fd, [b"alpha ", b"beta\n", b"gamma\n"])
srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
srv.bind("/dev/log")
cli = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
cli.sendto(b"<14>unconnected sendto", "/dev/log")
cli.sendmsg([b"<13>via ", b"sendmsg"], [], 0, "/dev/log")
con = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
con.connect("/dev/log")
con.send(b"<12>connected send\n")
os.write(1, b"stdout line\n")
time.sleep(600)
"""


def test_writev_and_the_syslog_send_shapes(bpf_ready, containers, debian_image):
    from shipper.sources.ebpf.source import EbpfSource

    got: list[Record] = []

    async def emit(batch: list[Record]) -> None:
        got.extend(batch)

    async def scenario() -> None:
        registry = ContainerRegistry()
        task = await EbpfSource(EbpfSettings(), emit, registry, mode="on").start()
        c = containers(debian_image, ["python3", "-c", WRITER], network_mode="none")
        registry.add(Container(id=c.id, name=c.name, image=debian_image))
        deadline = time.monotonic() + 30
        while len(got) < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    files = [(r.message, r.path) for r in got if r.stream == "file"]
    assert files == [(b"alpha beta", "/var/log/v.log"), (b"gamma", "/var/log/v.log")]
    syslog = sorted(r.message for r in got if r.stream == "syslog")
    assert syslog == [b"<12>connected send", b"<13>via sendmsg", b"<14>unconnected sendto"]
    assert all(r.source == "ebpf" and r.comm == "python3" and r.pid for r in got)
    assert len({r.doc_id() for r in got}) == len(got)


def test_events_layout_is_the_compiled_programs(bpf_ready):
    """events.py reads probe.c's structs; the compiled program's own types (bcc's ctypes of
    the scratch maps' values) must have the same sizes and offsets."""
    from shipper.sources.ebpf import events as E

    p, _ = _probe()
    try:
        write_ev = p.bpf[b"scratch"].Leaf  # a plain array (a slot per CPU)
        path_ev = p.bpf[b"path_scratch"].Leaf._type_  # a per-CPU map: one value per CPU
        hdr = dict(write_ev._fields_)["h"]
        assert ctypes.sizeof(hdr) == E.HDR.size == E.HDR_SIZE
        for m in E.HDR_MEMBERS:
            assert (getattr(hdr, m.name).offset, getattr(hdr, m.name).size) == (m.offset, m.size), m.name
        assert write_ev.data.offset == E.DATA_OFFSET and ctypes.sizeof(write_ev) == E.DATA_OFFSET + write_ev.data.size
        assert (write_ev.comm.offset, write_ev.len.offset) == (E.HDR.size, E.HDR.size + 16)
        assert (path_ev.path.offset, path_ev.path.size) == (E.HDR.size, E.PATH_LEN)
    finally:
        p.close()
