"""`logship check`: can this host run the shipper? One line per check:
`ok|FAIL|warn  name  detail  (fix: ...)`; exit code 1 when any check FAILs."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from shipper.cli.exit_codes import EXIT_FAILURE, EXIT_OK
from shipper.config import Config
from shipper.core.masking import error_text, mask_credentials

CAP_SYS_ADMIN, CAP_BPF = 21, 39


@dataclass
class Result:
    status: str  # ok | FAIL | warn
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f"  (fix: {self.fix})" if self.fix and self.status != "ok" else ""
        return f"{self.status:<5} {self.name:<14} {self.detail}{fix}"


def _effective_caps() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def check_docker(cfg: Config) -> Result:
    try:
        import docker
        client = docker.DockerClient(base_url=cfg.docker.host, timeout=5)
        v = client.version()
        return Result("ok", "docker",
                      f"{cfg.docker.host} (engine {v.get('Version', '?')}, API {v.get('ApiVersion', '?')})")
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot talk to the engine"
        return Result("FAIL", "docker", f"{cfg.docker.host}: {exc}",
                      "start dockerd, mount /var/run/docker.sock, or set LOGSHIP_DOCKER_HOST")


def _ebpf_missing(cfg: Config, name: str, detail: str, fix: str) -> Result:
    # With LOGSHIP_EBPF=auto a missing eBPF prerequisite only costs the in-container file/syslog lines.
    if cfg.pipeline.ebpf == "off":
        return Result("ok", name, detail + " (not needed: LOGSHIP_EBPF=off)")
    return Result("FAIL" if cfg.pipeline.ebpf == "on" else "warn", name, detail, fix)


def check_bpf(cfg: Config) -> Result:
    caps = _effective_caps()
    if os.geteuid() == 0 and caps & (1 << CAP_SYS_ADMIN) or caps & (1 << CAP_BPF):
        return Result("ok", "bpf", f"may load BPF programs (uid {os.geteuid()}, CapEff {caps:#x})")
    return _ebpf_missing(cfg, "bpf", f"no CAP_BPF/CAP_SYS_ADMIN (uid {os.geteuid()}, CapEff {caps:#x})",
                  "run as root or grant CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN; or LOGSHIP_EBPF=off")


def check_headers(cfg: Config) -> Result:
    build = Path(f"/lib/modules/{os.uname().release}/build")
    if build.exists():
        return Result("ok", "kernel-headers", str(build.resolve()))
    return _ebpf_missing(cfg, "kernel-headers", f"{build} missing (bcc compiles the probe against it)",
                  "install linux-headers-$(uname -r), or link a close version there; mount /lib/modules and /usr/src")


def check_btf(cfg: Config) -> Result:
    btf = Path("/sys/kernel/btf/vmlinux")
    if btf.exists():
        return Result("ok", "btf", str(btf))
    return Result("warn", "btf", f"{btf} missing", "a kernel built with CONFIG_DEBUG_INFO_BTF helps bcc; not required")


def check_tracefs(cfg: Config) -> Result:
    for d in (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing")):
        if (d / "events" / "syscalls").is_dir():
            return Result("ok", "tracefs", f"{d} (syscall tracepoints present)")
    return _ebpf_missing(cfg, "tracefs",
                         "no syscall tracepoints under /sys/kernel/tracing or /sys/kernel/debug/tracing",
                  "mount -t tracefs nodev /sys/kernel/tracing (in a container: bind-mount it)")


def check_snapshots(cfg: Config) -> Result:
    """Which mechanism the syscall rings will use: fentry/fexit where the kernel allows it,
    else per-syscall tracepoints (a small fentry program is loaded to find out)."""
    if cfg.pipeline.ebpf == "off" or not cfg.snapshot.enabled:
        return Result("ok", "snapshots", "off (LOGSHIP_EBPF=off or LOGSHIP_SNAPSHOT_ENABLED=false)")
    from shipper.snapshots.ring import fentry_refusal, ring_syscalls

    n = len(ring_syscalls())
    scope = f"scope: label {cfg.snapshot.scope_label}=true" + (
        f", LOGSHIP_SNAPSHOT_CONTAINERS={','.join(cfg.snapshot.containers)}" if cfg.snapshot.containers else "")
    if os.geteuid() != 0 and not _effective_caps() & (1 << CAP_BPF):
        return Result("warn", "snapshots", f"cannot load BPF to tell the rings' mechanism; {scope}",
                      "run `logship check` as root")
    why = fentry_refusal()
    if why is None:
        return Result("ok", "snapshots", f"rings on fentry/fexit ({n} syscalls); {scope}")
    return Result("ok", "snapshots",
                  f"rings on per-syscall tracepoints ({n} syscalls; fentry not used: {why}); {scope}")


def check_state_dir(cfg: Config) -> Result:
    """The shipper writes checkpoints and the spool there (fsync'd): write a file to know."""
    d = Path(cfg.pipeline.state_dir)
    probe = d / f".logship-check-{os.getpid()}"
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as exc:
        return Result("FAIL", "state-dir", f"{d}: cannot write ({exc.strerror or exc})",
                      "make it writable (a volume, not a read-only mount) or set LOGSHIP_STATE_DIR")
    return Result("ok", "state-dir", f"{d} (writable)")


SUPPORTED_MAJORS = ("8.", "9.")


def check_es(cfg: Config) -> Result:
    from shipper.sinks.elasticsearch.client import es_session, es_version

    async def probe() -> list[str]:
        found = []
        async with es_session(cfg.elasticsearch, timeout_s=5) as s:
            for url in cfg.elasticsearch.url:
                found.append(f"{url} {await es_version(s, url)}")
        return found

    try:
        found = asyncio.run(probe())
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot talk to Elasticsearch"
        return Result("FAIL", "elasticsearch", f"{','.join(cfg.elasticsearch.url)}: {error_text(exc)}",
                      "start Elasticsearch or set LOGSHIP_ES_URL / LOGSHIP_ES_USERNAME / LOGSHIP_ES_PASSWORD")
    versions = [f.rsplit(" ", 1)[1] for f in found]
    if any(not v.startswith(SUPPORTED_MAJORS) for v in versions):
        return Result("warn", "elasticsearch", "; ".join(found), "logship is built and tested against Elasticsearch "
                      "8.19 and 9.2 (8.x and 9.x)")
    return Result("ok", "elasticsearch", "; ".join(found))


def check_retention(cfg: Config) -> Result:
    """Who deletes expired indices (the ILM policy as stored, or the shipper), and the oldest index of each kind."""
    from shipper.sinks.elasticsearch import retention as r
    from shipper.sinks.elasticsearch.client import es_session

    s = cfg.elasticsearch

    async def probe() -> tuple[str, bool]:
        async with es_session(s, timeout_s=5) as session:
            url = s.url[0].rstrip("/")
            ilm, why = await r.has_ilm(session, url)
            use_ilm = ilm and s.retention in ("auto", "ilm")
            if s.retention == "off":
                who = "off: indices are kept forever"
            elif use_ilm:
                name = r.policy_name(s, r.KINDS[0])
                async with session.get(f"{url}/_ilm/policy/{name}") as resp:
                    body = await resp.json(content_type=None) if resp.status == 200 else {}
                delete = ((((body.get(name) or {}).get("policy") or {}).get("phases") or {}).get("delete") or {})
                who = f"ILM policy {name}: delete after {delete.get('min_age', '?')}" if delete else \
                    f"ILM policy {name} missing: run `logship setup`"
            else:
                who = f"{why}: the shipper deletes expired daily indices ({r.ages(s)})"
            today = dt.datetime.now(dt.timezone.utc).date()
            olds = r.oldest(s, await r.daily_indices(session, s))
            late = [k for k in r.KINDS
                    if k.name in olds and k.days(s) and (today - olds[k.name][1]).days > k.days(s) + 1]
            parts = [f"oldest {k} {i} ({(today - d).days} days)" for k, (i, d) in sorted(olds.items())]
            return f"{who}; {'; '.join(parts) or 'no daily index yet'}", bool(late) and s.retention != "off"

    try:
        detail, late = asyncio.run(probe())
    except Exception as exc:  # noqa: BLE001
        return Result("FAIL", "retention", error_text(exc), "check the Elasticsearch check above")
    if late:
        return Result("warn", "retention", detail, "an index outlived its retention: run `logship setup`, check ILM "
                      "(GET _ilm/explain) or that a shipper is running")
    return Result("ok", "retention", detail)


def check_kibana(cfg: Config) -> Result:
    if not cfg.kibana.url:
        return Result("warn", "kibana", "LOGSHIP_KIBANA_URL not set: `logship setup` skips the saved objects",
                      "set LOGSHIP_KIBANA_URL to import the data view and dashboard")
    from shipper.sinks.elasticsearch.client import kibana_session

    async def probe() -> str:
        async with kibana_session(cfg.kibana, cfg.elasticsearch, timeout_s=5) as s:
            async with s.get(cfg.kibana.url.rstrip("/") + "/api/status") as r:
                body = await r.json(content_type=None) if r.status == 200 else {}
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}")
                ver = (body.get("version") or {}).get("number", "?")
                level = ((body.get("status") or {}).get("overall") or {}).get("level", "?")
                return f"{cfg.kibana.url} {ver} ({level})"

    try:
        return Result("ok", "kibana", asyncio.run(probe()))
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot talk to Kibana"
        return Result("FAIL", "kibana", f"{cfg.kibana.url}: {error_text(exc)}",
                      "start Kibana, check LOGSHIP_KIBANA_URL and its user/password")


CHECKS: tuple[Callable[[Config], Result], ...] = (
    check_docker, check_state_dir, check_bpf, check_headers, check_btf, check_tracefs, check_snapshots, check_es,
    check_retention,
    check_kibana,
)


def cmd_check(cfg: Config, args: argparse.Namespace) -> int:
    failed = False
    for check in CHECKS:
        r = check(cfg)
        failed |= r.status == "FAIL"
        print(mask_credentials(r.line()), flush=True)  # the URLs quoted may carry a password
    return EXIT_FAILURE if failed else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check",
                       help="check Docker, the state dir, BPF, kernel headers, BTF, tracefs, Elasticsearch and Kibana",
                       description="Prints one line per check: `ok|FAIL|warn  name  detail  (fix: ...)`. "
                                   "eBPF prerequisites are FAIL with LOGSHIP_EBPF=on, warn with auto. "
                                   "Exit code 0 when nothing FAILed, 1 otherwise.")
    p.set_defaults(func=cmd_check)
