"""docker-compose.yml validates with Debian's docker-compose (1.29) once compose/init-env.sh
has generated a .env; the script keeps an existing .env; the stack's invariants hold."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, infra_missing


@pytest.fixture
def stack_dir(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    shutil.copytree(ROOT / "compose", tmp_path / "compose")
    return tmp_path


def _mount(v: object) -> tuple[str, tuple[str, bool]]:
    """target -> (source, read-only), from v1.29's `src:target:mode` strings or v2's dicts."""
    if isinstance(v, dict):
        return v["target"], (v["source"], bool(v.get("read_only")))
    src, target, *mode = str(v).split(":")
    return target, (src, mode == ["ro"])


def _config(d: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker-compose") is None:
        infra_missing("docker-compose", "apt-get install docker-compose")
    return subprocess.run(["docker-compose", "config"], cwd=d, capture_output=True, text=True, timeout=60)


def test_init_env_then_compose_config_validates(stack_dir: Path) -> None:
    r = subprocess.run([str(stack_dir / "compose" / "init-env.sh")], capture_output=True, text=True, check=True)
    assert "wrote" in r.stdout
    env = dict(line.split("=", 1) for line in (stack_dir / ".env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert len(env["ELASTIC_PASSWORD"]) >= 24 and env["ELASTIC_PASSWORD"] != env["KIBANA_SYSTEM_PASSWORD"]
    assert len(env["KIBANA_ENCRYPTION_KEY"]) >= 32 and len(env["LOGSHIP_HTTP_TOKEN"]) >= 32
    assert (stack_dir / ".env").stat().st_mode & 0o077 == 0  # secrets: owner only

    cfg = _config(stack_dir)
    assert cfg.returncode == 0, cfg.stderr
    stack = yaml.safe_load(cfg.stdout)["services"]
    assert stack["elasticsearch"]["image"] == "docker.elastic.co/elasticsearch/elasticsearch:8.19.9"
    assert stack["kibana"]["image"] == "docker.elastic.co/kibana/kibana:8.19.9"
    for name, svc in stack.items():
        for p in svc.get("ports", []):
            host_ip = p.get("host_ip") if isinstance(p, dict) else p.split(":")[0]  # v1.29 prints strings
            assert host_ip == "127.0.0.1", f"{name} publishes {p} beyond loopback"
        if name in ("elasticsearch", "kibana"):
            assert svc["environment"]["LOGSPOUT"] == "ignore" and "healthcheck" in svc
            assert svc["restart"] == "unless-stopped"
    es_env = stack["elasticsearch"]["environment"]
    assert es_env["xpack.security.enabled"] == "true" and es_env["ELASTIC_PASSWORD"] == env["ELASTIC_PASSWORD"]
    assert stack["kibana"]["environment"]["ELASTICSEARCH_PASSWORD"] == env["KIBANA_SYSTEM_PASSWORD"]
    assert stack["setup"]["environment"]["LOGSHIP_KIBANA_SYSTEM_PASSWORD"] == env["KIBANA_SYSTEM_PASSWORD"]
    assert stack["setup"]["command"] == ["logship", "setup", "--api-key-file", "/var/lib/logship-secrets/es-api-key"]
    assert stack["setup"]["environment"]["LOGSHIP_ES_USERNAME"] == "elastic"
    shipper = stack["shipper"]
    assert not shipper.get("privileged") and shipper["pid"] == "host"
    assert shipper["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert_hardened(shipper, env)


def assert_hardened(shipper: dict, env: dict[str, str]) -> None:
    """The shipper service's least privilege, as `docker-compose config` prints it (issue 17)."""
    # Elasticsearch: the writer API key setup minted, no superuser, no template management.
    senv = shipper["environment"]
    assert "LOGSHIP_ES_PASSWORD" not in senv and "LOGSHIP_ES_USERNAME" not in senv
    assert senv["LOGSHIP_ES_API_KEY_FILE"] == "/var/lib/logship-secrets/es-api-key"
    assert senv["LOGSHIP_ES_SETUP"] == "false"
    assert senv["LOGSHIP_HTTP_TOKEN"] == env["LOGSHIP_HTTP_TOKEN"] and len(env["LOGSHIP_HTTP_TOKEN"]) >= 32
    # The container: no new privileges, our seccomp profile (not unconfined), read-only root, limits.
    assert shipper["cap_drop"] == ["ALL"]
    assert set(shipper["cap_add"]) == {"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"}
    opts = shipper["security_opt"]
    assert "no-new-privileges:true" in opts and "seccomp:compose/shipper/seccomp.json" in opts
    assert not any("unconfined" in o for o in opts)
    assert shipper["read_only"] is True and any(t.startswith("/tmp") for t in shipper["tmpfs"])
    assert shipper["mem_limit"] and shipper["pids_limit"] == 256
    mounts = dict(_mount(v) for v in shipper["volumes"])
    for target in ("/var/run/docker.sock", "/sys/kernel/tracing", "/lib/modules", "/usr/src", "/sys/fs/cgroup",
                   "/var/lib/logship-secrets"):
        assert mounts[target][1], f"{target} must be read-only"
    assert "/sys/kernel/debug" not in mounts  # no debugfs
    assert mounts["/var/lib/logship"] == ("shipperstate", False)  # the named state volume, the only writable one
    assert mounts["/var/lib/logship-secrets"][0] == "shippersecrets"


def test_seccomp_profile_is_dockers_default_plus_bpf() -> None:
    import json
    prof = json.loads((ROOT / "compose/shipper/seccomp.json").read_text())
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {n for rule in prof["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
               and not rule.get("includes") for n in rule["names"]}
    assert {"bpf", "perf_event_open", "read", "write", "openat", "epoll_wait"} <= allowed
    # What Docker's default keeps for CAP_SYS_ADMIN & co. stays refused here.
    assert not allowed & {"mount", "umount2", "unshare", "setns", "ptrace", "init_module", "kexec_load", "reboot",
                          "open_by_handle_at", "keyctl", "add_key", "userfaultfd"}


def test_init_env_keeps_an_existing_env_and_compose_refuses_without_one(stack_dir: Path) -> None:
    (stack_dir / ".env").write_text("ELASTIC_PASSWORD=mine\nKIBANA_SYSTEM_PASSWORD=k\n"
                                    "KIBANA_ENCRYPTION_KEY=" + "x" * 32 + "\n")
    r = subprocess.run([str(stack_dir / "compose" / "init-env.sh")], capture_output=True, text=True, check=True)
    assert "added LOGSHIP_HTTP_TOKEN" in r.stdout and "ELASTIC_PASSWORD=mine" in (stack_dir / ".env").read_text()
    assert "LOGSHIP_HTTP_TOKEN=" in (stack_dir / ".env").read_text()
    r = subprocess.run([str(stack_dir / "compose" / "init-env.sh")], capture_output=True, text=True, check=True)
    assert "keeping it" in r.stdout
    (stack_dir / ".env").unlink()
    cfg = _config(stack_dir)
    assert cfg.returncode != 0 and "init-env.sh" in cfg.stderr


def test_env_is_git_ignored() -> None:
    r = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert r.returncode == 0
