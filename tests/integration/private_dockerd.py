"""A private Docker engine a test may kill and restart: never the shared dev dockerd.

Its own socket, data root, exec root (so its own managed containerd) and pid file under
/tmp/lsd-<n>; vfs storage, no bridge, no iptables. The busybox image is copied in from
the shared engine (`docker save | docker load`). Cleans up everything it made."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import infra_missing, wait_until

IMAGE = "local/busybox:latest"


class PrivateDockerd:
    def __init__(self, n: int) -> None:
        self.dir = Path(f"/tmp/lsd-{n}")
        self.sock = f"/tmp/lsd-{n}.sock"
        self.host = f"unix://{self.sock}"
        self.proc: subprocess.Popen[bytes] | None = None
        # Its own bridge: with --bridge=none dockerd DELETES docker0, the shared engine's bridge.
        self.bridge = f"lsd{n}"
        self.bridge_cidr = f"172.31.{n % 250}.1/24"

    def _args(self) -> list[str]:
        return ["dockerd", "-H", self.host, "--data-root", str(self.dir / "root"),
                "--exec-root", str(self.dir / "exec"), "--pidfile", str(self.dir / "pid"),
                "--storage-driver=vfs", f"--bridge={self.bridge}", "--iptables=false",
                "--ip-masq=false", "--ip-forward=false"]

    def docker(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["docker", "-H", self.host, *args], capture_output=True, timeout=120, **kw)

    def up(self) -> bool:
        return os.path.exists(self.sock) and self.docker("info", "--format", "{{.ID}}").returncode == 0

    def start(self) -> None:
        (self.dir / "root").mkdir(parents=True, exist_ok=True)
        if subprocess.run(["ip", "link", "show", self.bridge], capture_output=True).returncode != 0:
            for cmd in (["ip", "link", "add", self.bridge, "type", "bridge"],
                        ["ip", "addr", "add", self.bridge_cidr, "dev", self.bridge],
                        ["ip", "link", "set", self.bridge, "up"]):
                subprocess.run(cmd, check=True, capture_output=True)
        log = open(self.dir / "dockerd.log", "ab")
        proc = self.proc = subprocess.Popen(self._args(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: self.up() or proc.poll() is not None, 60, 0.3, what="the private dockerd")
        if proc.poll() is not None:
            raise RuntimeError((self.dir / "dockerd.log").read_text()[-2000:])

    def kill(self) -> None:
        """SIGKILL the daemon (its containers' shims live on); a restart re-adopts or restarts them."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> Any:
        import docker
        return docker.DockerClient(base_url=self.host, timeout=120)

    def load_image(self, image: str = IMAGE) -> None:
        """`image` from the host's engine into this one (no registry here)."""
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        r = self.docker("load", stdin=save.stdout)
        save.wait(120)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.decode())

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None and self.up():
            ids = self.docker("ps", "-aq").stdout.split()
            if ids:
                self.docker("rm", "-f", *[i.decode() for i in ids])
        self.stop()
        # The managed containerd is the daemon's child in its own session: end it by its pid file.
        for pidfile in (self.dir / "exec" / "containerd" / "containerd.pid",):
            try:
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        with open("/proc/self/mountinfo") as f:
            mounts = [ln.split()[4] for ln in f if str(self.dir) in ln.split()[4]]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        Path(self.sock).unlink(missing_ok=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


@pytest.fixture
def private_dockerd(docker_client: Any, busybox: str) -> Iterator[PrivateDockerd]:
    if shutil.which("dockerd") is None:
        infra_missing("dockerd", "run scripts/provision.sh docker")
    d = PrivateDockerd(os.getpid() % 1000)
    d.cleanup()  # a leftover of a crashed run
    try:
        d.start()
        d.load_image()
    except (RuntimeError, OSError, subprocess.TimeoutExpired, subprocess.CalledProcessError) as exc:
        d.cleanup()
        infra_missing("a private dockerd", str(exc)[-500:])
    yield d
    d.cleanup()
