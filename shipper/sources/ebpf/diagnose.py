"""Why the eBPF source cannot start on this host, said once, with the fix."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
TRACEFS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))


@dataclass(frozen=True)
class Facts:
    """What the probe needs, as found on this host."""
    bcc_error: str | None  # the ImportError of `import bcc`, None when it imports
    cap_eff: int  # effective capability mask of this process
    tracefs: bool  # syscall tracepoints visible under a mounted tracefs
    headers: bool  # /lib/modules/<release>/build, or the kernel's kheaders
    btf: bool
    release: str

    @classmethod
    def gather(cls) -> "Facts":
        try:
            import bcc  # noqa: F401 - importing is the check
            bcc_error = None
        except Exception as exc:  # noqa: BLE001 - a broken install is as absent as a missing one
            bcc_error = f"{type(exc).__name__}: {exc}"
        release = os.uname().release
        return cls(
            bcc_error=bcc_error,
            cap_eff=_cap_eff(),
            tracefs=any((t / "events" / "syscalls" / "sys_enter_write").exists() for t in TRACEFS),
            headers=Path(f"/lib/modules/{release}/build").exists() or Path("/sys/kernel/kheaders.tar.xz").exists(),
            btf=Path("/sys/kernel/btf/vmlinux").exists(),
            release=release,
        )


def _cap_eff() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def diagnose(f: Facts) -> str | None:
    """The first reason the probe cannot load, as `cause; fix`, or None when all is there."""
    if f.bcc_error is not None:
        return (f"bcc is not importable ({f.bcc_error}); install the distribution's bcc Python package "
                "(Debian: apt-get install python3-bpfcc) and run from a virtualenv made with --system-site-packages")
    caps = f.cap_eff
    has_admin = bool(caps >> CAP_SYS_ADMIN & 1)
    if not has_admin and not (caps >> CAP_BPF & 1 and caps >> CAP_PERFMON & 1):
        return ("missing privileges to load BPF programs (needs CAP_SYS_ADMIN, or CAP_BPF + CAP_PERFMON); run as root "
                "or grant them (docker run --cap-add SYS_ADMIN, or --cap-add BPF --cap-add PERFMON)")
    if not f.tracefs:
        return ("syscall tracepoints are not visible (tracefs not mounted); mount it: "
                "mount -t tracefs nodev /sys/kernel/tracing "
                "(in a container: -v /sys/kernel/tracing:/sys/kernel/tracing)")
    if not f.headers:
        return (f"no kernel headers for {f.release} (bcc compiles the probe against them); install "
                f"linux-headers-{f.release} or link the nearest headers to /lib/modules/{f.release}/build "
                "(scripts/provision.sh headers)" + ("" if f.btf else "; this kernel also has no BTF"))
    return None


def explain_failure(exc: BaseException, f: Facts) -> str:
    """A load failure worded for the operator: the diagnosed cause when there is one."""
    cause = diagnose(f)
    if cause:
        return cause
    return f"the probe failed to compile or load ({exc}); run with LOGSHIP_LOG_LEVEL=debug for bcc's output"
