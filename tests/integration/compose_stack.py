"""The images `docker-compose up` needs here, built locally (no image registry is reachable):
the real shipper image (compose/shipper/Dockerfile) and the two test stand-ins under
tests/compose/ for the official Elasticsearch and Kibana images. Build contexts are prepared from
files on this machine (the integ-test zip, the host's OpenJDK 17 and curl) so no build runs apt."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import yaml

from tests.conftest import ROOT

STANDINS = ROOT / "tests" / "compose"
SHIM = ROOT / "tests" / "integration" / "es_plugin"
OVERRIDE = STANDINS / "docker-compose.standin.yml"
SHIPPER_IMAGE = "logship/shipper:local"  # docker-compose.yml's image: for setup and shipper
JDK = Path("/usr/lib/jvm/java-17-openjdk-amd64")
GLIBC = re.compile(r"^(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so")


def _run(args: list[str], timeout: float = 1800, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]


def _check(r: subprocess.CompletedProcess[str], what: str) -> None:
    if r.returncode != 0:
        raise RuntimeError(f"{what}: {r.stdout[-2000:]}{r.stderr[-2000:]}")


def _curl(opt: Path) -> None:
    """The official images have curl (their health checks use it): the host's, with its libraries
    except glibc, behind a wrapper that points only curl at them."""
    lib = opt / "curl" / "lib"
    (opt / "curl" / "bin").mkdir(parents=True)
    lib.mkdir(parents=True)
    curl = shutil.which("curl")
    if curl is None:
        raise RuntimeError("no curl on the host (scripts/provision.sh packages)")
    for line in _run(["ldd", curl], 60).stdout.splitlines():
        m = re.search(r"=> (/\S+)", line)
        if m and not GLIBC.match(Path(m.group(1)).name):
            shutil.copy(m.group(1), lib)
    shutil.copy(curl, lib / "curl.bin")
    wrapper = opt / "curl" / "bin" / "curl"
    wrapper.write_text('#!/bin/sh\nLD_LIBRARY_PATH=/opt/curl/lib exec /opt/curl/lib/curl.bin "$@"\n')
    wrapper.chmod(0o755)


def _es_dist() -> Path:
    r = _run([str(ROOT / "scripts/provision.sh"), "es-download"], 1800)
    _check(r, "scripts/provision.sh es-download")
    return Path(r.stdout.strip().splitlines()[-1])


def _shim(dist: Path, build: Path) -> Path:
    """tests/integration/es_plugin compiled against this distribution: the analysis filters the
    .security index needs, which the integ-test zip lacks (analysis-common is not in it)."""
    javac = JDK / "bin" / "javac"
    if not javac.exists():
        raise RuntimeError("no javac: install openjdk-17-jdk-headless (scripts/provision.sh packages)")
    classes = build / "classes"
    sources = [str(p) for p in (SHIM / "src").rglob("*.java")]
    _check(_run([str(javac), "-d", str(classes), "-cp", f"{dist / 'lib'}/*", *sources], 600), "javac")
    plugin = build / "logship-analysis-shim"
    plugin.mkdir()
    _check(_run([str(JDK / "bin" / "jar"), "cf", str(plugin / "logship-analysis-shim.jar"), "-C", str(classes), "."],
                600), "jar")
    version = dist.name.rsplit("-", 1)[1]
    (plugin / "plugin-descriptor.properties").write_text(
        (SHIM / "plugin-descriptor.properties").read_text().replace("@VERSION@", version))
    return plugin


def _build(tag: str, dockerfile: Path, context: Path, extra: list[str] = ()) -> float:  # type: ignore[assignment]
    t0 = time.monotonic()
    args = ["docker", "build", "-q", "-f", str(dockerfile), "-t", tag, *extra, str(context)]
    r = _run(args)
    if r.returncode != 0 and "Temporary failure" in r.stdout + r.stderr:
        r = _run([*args[:-1], "--network", "host", args[-1]])  # some hosts give build containers no DNS
    _check(r, f"docker build {tag}")
    return time.monotonic() - t0


def build_images(work: Path, stack_version: str) -> dict[str, float]:
    """Builds the three images; returns each build's wall time in seconds."""
    times: dict[str, float] = {}
    ca = "".join(p.read_text() for p in sorted(Path("/usr/local/share/ca-certificates").glob("*.crt")))
    extra = ["--build-arg", f"EXTRA_CA_PEM={ca}"] if ca else []  # PyPI through a TLS-inspecting proxy
    times["shipper"] = _build(SHIPPER_IMAGE, ROOT / "compose/shipper/Dockerfile", ROOT, extra)

    es_ctx = work / "es-context"
    dist = _es_dist()
    shutil.copytree(dist, es_ctx / "es", symlinks=True)
    shutil.rmtree(es_ctx / "es" / "logs", ignore_errors=True)
    (es_ctx / "es" / "data").mkdir()  # the esdata volume's mount point, owned by uid 1000
    (es_ctx / "es" / "logs").mkdir()
    shutil.copytree(_shim(dist, work / "shim-build"), es_ctx / "es" / "plugins" / "logship-analysis-shim")
    shutil.copy(STANDINS / "elasticsearch" / "standin-entrypoint.sh", es_ctx / "es" / "bin")
    # The JRE only, symlinks resolved (several point into /etc); no compiler, sources or docs.
    shutil.copytree(JDK, es_ctx / "opt" / "jdk", symlinks=False, ignore_dangling_symlinks=True,
                    ignore=shutil.ignore_patterns("jmods", "include", "man", "docs", "legal", "src.zip", "ct.sym"))
    _curl(es_ctx / "opt")
    times["elasticsearch"] = _build(f"logship-test/elasticsearch:{stack_version}",
                                    STANDINS / "elasticsearch" / "Dockerfile", es_ctx)

    kb_ctx = work / "kibana-context"
    _curl(kb_ctx / "opt")
    (kb_ctx / "opt" / "kibana-standin").mkdir()
    shutil.copy(STANDINS / "kibana" / "standin.py", kb_ctx / "opt" / "kibana-standin")
    shutil.copy(ROOT / "tests" / "contracts" / "kibana_import.json", kb_ctx / "opt" / "kibana-standin")
    times["kibana"] = _build(f"logship-test/kibana:{stack_version}", STANDINS / "kibana" / "Dockerfile", kb_ctx)
    return times


def _grantable(cap: str, image: str) -> str:
    """'' when this engine starts a container with `cap`, else why not."""
    r = _run(["docker", "run", "--rm", "--network", "none", "--cap-add", cap, image, "true"], 300)
    return "" if r.returncode == 0 else (r.stderr.strip().splitlines() or ["?"])[0]


def engine_compat(compose_text: str, image: str) -> tuple[str, list[str]]:
    """docker-compose.yml with the shipper's capabilities this engine cannot grant replaced, the way
    the README tells users of such engines: BPF/PERFMON unknown before Docker 23 -> SYS_ADMIN (it
    includes both); a capability the engine itself lacks (a dockerd without CAP_SYS_RESOURCE, as on
    these test machines) -> dropped. Returns the text and one note per change."""
    caps = yaml.safe_load(compose_text)["services"]["shipper"].get("cap_add", [])
    notes: list[str] = []
    out = compose_text
    for cap in caps:
        why = _grantable(cap, image)
        if not why:
            continue
        line = re.compile(rf"^([ \t]+)- {cap}\b[^\n]*\n", re.M)
        if cap in ("BPF", "PERFMON") and "unknown capability" in why and "SYS_ADMIN" not in caps:
            out, caps = line.sub(r"\1- SYS_ADMIN\n", out, count=1), [*caps, "SYS_ADMIN"]
            notes.append(f"{cap} -> SYS_ADMIN ({why})")
        else:
            out = line.sub("", out, count=1)
            notes.append(f"{cap} dropped ({why})")
    return out, notes
