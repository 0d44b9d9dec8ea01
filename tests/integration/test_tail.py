"""`logship tail` against a real shipper and a real container: the container's
`ERROR boom` appears as a coloured line (container, stream, message in red)."""

from __future__ import annotations

import shlex
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import free_port, ROOT, wait_until

BOLD_RED = "\x1b[1;31m"


def subscribed_tail(ship: Any, name: str, color: str, out: Path) -> subprocess.Popen[bytes]:
    """`logship tail --container name` writing to `out` (stderr beside it), once the shipper counts it
    as a /logs subscriber: the container may start writing then."""
    with open(out, "wb") as f, open(out.with_suffix(".err"), "wb") as err:
        tail = subprocess.Popen([sys.executable, "-m", "shipper", "tail", color, "--container", name],
                                cwd=ROOT, env=ship.env, stdout=f, stderr=err)
    wait_until(lambda: "logship_http_logs_subscribers 1" in ship.metrics() or tail.poll() is not None, 20,
               what="`logship tail` to subscribe")
    return tail


def test_tail_shows_a_coloured_error_line(shipper: Callable[..., Any], containers: Callable[..., Any], busybox: str,
                                          tmp_path: Path) -> None:
    name = f"tail-{uuid.uuid4().hex[:8]}"
    ship = shipper(LOGSHIP_HTTP_ADDR=f"127.0.0.1:{free_port()}")
    out = tmp_path / "tail.out"
    tail = subscribed_tail(ship, name, "--color", out)
    try:
        # The tail subscribes before the container writes: the line is printed once, live.
        containers(busybox, ["sh", "-c", "sleep 1; echo 'ERROR boom'; echo 'all fine'; sleep 30"], name=name)
        text = wait_until(lambda: "all fine" in out.read_text(errors="replace") and out.read_text(errors="replace"),
                          30, what="the container's lines in `logship tail`")
        assert tail.poll() is None, text
        error_line = next(line for line in text.splitlines() if "ERROR boom" in line)
        assert name in error_line and "stdout" in error_line
        assert f"{BOLD_RED}ERROR boom" in error_line, repr(error_line)
        fine_line = next(line for line in text.splitlines() if "all fine" in line)
        assert BOLD_RED not in fine_line
        assert all(name in line for line in text.splitlines() if line.strip()), text  # the filter ran
        # The same shipper's /metrics carries the delivery series once a bulk went through.
        metrics = wait_until(lambda: "logship_es_bulk_latency_seconds_count" in (m := ship.metrics()) and m,
                             30, what="a bulk in /metrics")
        for series in ("logship_es_last_bulk_success_timestamp_seconds", "logship_checkpoint_lag_seconds",
                       "logship_lines_in_total", "logship_es_delivered_total"):
            assert series in metrics, series
    finally:
        tail.terminate()
        tail.wait(10)


def test_tail_shows_each_line_of_an_exited_container_once(shipper: Callable[..., Any], containers: Callable[..., Any],
                                                          busybox: str, tmp_path: Path, es: Any,
                                                          index_prefix: str) -> None:
    """The final read after a container stops starts at its newest line: that line used to be
    emitted again (the live view and logship_lines_in_total showed it twice; ES stored it once)."""
    from tests.conftest import count_docs
    name = f"once-{uuid.uuid4().hex[:8]}"
    # only this container: on a shared engine another test's flood would hold the shipper back
    ship = shipper(LOGSHIP_HTTP_ADDR=f"127.0.0.1:{free_port()}", LOGSHIP_DOCKER_INCLUDE=name)
    out = tmp_path / "tail.out"
    tail = subscribed_tail(ship, name, "--no-color", out)
    try:
        c = containers(busybox, ["sh", "-c", "sleep 1; echo first; echo second; echo last"], name=name)
        c.wait(timeout=30)
        wait_until(lambda: count_docs(es, f"{index_prefix}-2*", {"term": {"container.id": c.id}}) >= 3, 60,
                   what="3 documents")
        wait_until(lambda: f"stream of {name}" in ship.log() and "ended" in ship.log(), 30, what="the stream to end")
        import time
        time.sleep(1.0)  # a repeated line would show by now
        lines = [line.split()[-1] for line in out.read_text(errors="replace").splitlines() if name in line]
        assert lines == ["first", "second", "last"], lines
    finally:
        tail.terminate()
        tail.wait(10)


# ---- a hostile line, read in a real terminal (tmux) --------------------------------
CLIPBOARD_PAYLOAD = "cHduZWQ="  # base64("pwned")
HOSTILE_SCRIPT = ("sleep 1; echo 'before-the-attack'; "
                  f"printf 'osc52 \\033]52;c;{CLIPBOARD_PAYLOAD}\\007 clear \\033[2J\\033[H "
                  "link \\033]8;;http://evil.example/\\033\\\\click-me\\033]8;;\\033\\\\ end-of-attack\\n'; sleep 60")


class Tmux:
    """A private tmux server (own socket, own config): OSC 52 from a pane sets a tmux paste buffer
    (set-clipboard on), so `list-buffers` shows whether anything wrote the clipboard."""

    def __init__(self, tmp: Path) -> None:
        self.sock = f"logship-test-{uuid.uuid4().hex[:8]}"
        self.conf = tmp / "tmux.conf"
        self.conf.write_text("set -g set-clipboard on\nset -g history-limit 1000\n")

    def __call__(self, *args: str) -> str:
        r = subprocess.run(["tmux", "-L", self.sock, "-f", str(self.conf), *args], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 0, f"tmux {args}: {r.stderr}"
        return r.stdout

    def buffers(self) -> str:
        r = subprocess.run(["tmux", "-L", self.sock, "list-buffers", "-F", "#{buffer_sample}"], capture_output=True,
                           text=True, timeout=20)
        return r.stdout

    def pane(self, target: str) -> str:
        return self("capture-pane", "-p", "-J", "-t", target)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True, timeout=20)


def test_hostile_escapes_print_inert_in_a_real_terminal(shipper: Callable[..., Any], containers: Callable[..., Any],
                                                        busybox: str, tmp_path: Path) -> None:
    if subprocess.run(["sh", "-c", "command -v tmux"], capture_output=True).returncode != 0:
        from tests.conftest import infra_missing
        infra_missing("tmux", "apt-get install -y tmux")
    ship = shipper(LOGSHIP_HTTP_ADDR=f"127.0.0.1:{free_port()}")
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "tail.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in ship.env.items() if k.isidentifier())
    script.write_text(f"{exports}cd {shlex.quote(str(ROOT))}\nexec {shlex.quote(sys.executable)} -m shipper tail "
                      f"--container {name}\n")
    tmux = Tmux(tmp_path)
    try:
        tmux("new-session", "-d", "-s", "t", "-x", "250", "-y", "40", f"sh {shlex.quote(str(script))}")
        # The capture method can see an attack: a raw OSC 52 in another window does set a buffer.
        tmux("new-window", "-d", "-t", "t:9", f"printf '\\033]52;c;{CLIPBOARD_PAYLOAD}\\007'; sleep 30")
        wait_until(lambda: "pwned" in tmux.buffers(), 20, what="tmux to take a raw OSC 52 into a buffer (control)")
        tmux("delete-buffer")
        assert "pwned" not in tmux.buffers()
        wait_until(lambda: "logship_http_logs_subscribers 1" in ship.metrics(), 30, what="`logship tail` to subscribe")
        containers(busybox, ["sh", "-c", HOSTILE_SCRIPT], name=name)
        screen = wait_until(lambda: "end-of-attack" in (p := tmux.pane("t:0")) and p, 30,
                            what="the hostile line in the tmux pane")
        print(screen)
        assert "before-the-attack" in screen  # ESC[2J did not clear the screen
        line = next(x for x in screen.splitlines() if "end-of-attack" in x)
        assert f"\\x1b]52;c;{CLIPBOARD_PAYLOAD}\\x07" in line  # shown, not obeyed
        assert "\\x1b[2J\\x1b[H" in line
        assert "\\x1b]8;;http://evil.example/\\x1b\\click-me" in line  # the link target is visible text
        assert "pwned" not in tmux.buffers()  # the clipboard was not written
    finally:
        tmux.kill()
