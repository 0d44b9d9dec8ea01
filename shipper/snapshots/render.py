"""A snapshot document as sysdig-style text, one syscall a line:

    23:40:09.408938827 httpd (28599) < recvfrom fd=14(->127.0.0.1:3306) size=4096 res=72 data=...Access denied...

`<` is a completed syscall (its exit, with the arguments of its entry), `>` one still in
progress when the window closed. Gaps (ring overwrites, lost events) are shown, never hidden.
Every line goes through shipper.core.terminal.inert: the data excerpts, paths and the log
line are the container's bytes and must not act on the reader's terminal."""

from __future__ import annotations

from typing import Any

from shipper.core.terminal import inert


def clock(ts_ns: int) -> str:
    """Epoch ns -> HH:MM:SS.nnnnnnnnn (UTC)."""
    secs, frac = divmod(ts_ns, 1_000_000_000)
    sod = secs % 86400
    return f"{sod // 3600:02d}:{sod // 60 % 60:02d}:{sod % 60:02d}.{frac:09d}"


def event_line(ev: dict[str, Any], comm: str, tid: int) -> str:
    parts = [clock(ev["ts_ns"]), f"{comm} ({tid})", "<" if ev.get("done") else ">", ev["syscall"]]
    parts += [f"{k}={v}" for k, v in ev.get("args", {}).items()]
    if ev.get("done"):
        res = f"res={ev['ret']}"
        if ev.get("errno"):
            res += f"({ev['errno']})"
        parts.append(res)
    if "data" in ev:
        parts.append("data=" + ev["data"] + ("..." if ev.get("data_truncated") else ""))
    if ev.get("redacted"):
        parts.append("[redacted: " + ",".join(ev["redacted"]) + "]")
    return " ".join(parts)


def gap_lines(snap: dict[str, Any]) -> list[str]:
    out = []
    n = snap.get("ring_overwritten", 0)
    if n:
        out.append(f"# ring overwrote {n} events: the window may start before its oldest event shown")
    lost = snap.get("events_lost", 0)
    if lost:
        out.append(f"# {lost} events lost (stream buffer full) in the after half")
    for note in snap.get("notes", ()):
        out.append(f"# {note}")
    return out


def render(doc: dict[str, Any]) -> str:
    snap = doc.get("snapshot", {})
    comm = doc.get("process.name") or "?"
    tid = doc.get("process.thread.id", 0)
    lines = [f"# snapshot {doc.get('logship.snapshot.id')} of {doc.get('container.name', '?')} "
             f"thread {tid} ({comm}), trigger {snap.get('trigger', '?')}",
             f"# log line: {doc.get('message', '')}"]
    lines += gap_lines(snap)
    marked = False
    for ev in doc.get("events", ()):
        if not marked and ev.get("phase") == "after":
            lines.append("# ---- the log line was written above ----")
            marked = True
        lines.append(event_line(ev, comm, tid))
    if not doc.get("events"):
        lines.append("# no syscalls recorded for this thread in the window")
    return "".join(inert(line) + "\n" for line in lines)
