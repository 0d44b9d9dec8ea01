"""The one clear reason the eBPF source cannot start, with its fix."""

from __future__ import annotations

from typing import Any

from shipper.sources.ebpf.diagnose import CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, Facts, diagnose, explain_failure

ROOT = (1 << 41) - 1


def facts(**kw) -> Facts:
    base: dict[str, Any] = dict(bcc_error=None, cap_eff=ROOT, tracefs=True, headers=True, btf=True,
                                release="6.1.0-test")
    base.update(kw)
    return Facts(**base)


def test_all_there():
    assert diagnose(facts()) is None


def test_no_bcc():
    msg = diagnose(facts(bcc_error="ModuleNotFoundError: No module named 'bcc'", cap_eff=0)) or ""
    assert "bcc" in msg and "python3-bpfcc" in msg and "system-site-packages" in msg


def test_no_privileges():
    msg = diagnose(facts(cap_eff=0)) or ""
    assert "CAP_SYS_ADMIN" in msg and "CAP_BPF" in msg and "--cap-add" in msg


def test_bpf_plus_perfmon_is_enough():
    assert diagnose(facts(cap_eff=(1 << CAP_BPF) | (1 << CAP_PERFMON))) is None
    assert diagnose(facts(cap_eff=1 << CAP_BPF)) is not None
    assert diagnose(facts(cap_eff=1 << CAP_SYS_ADMIN)) is None


def test_no_tracefs():
    assert "mount -t tracefs" in str(diagnose(facts(tracefs=False)))


def test_no_headers_names_the_release():
    msg = diagnose(facts(headers=False, btf=False)) or ""
    assert "linux-headers-6.1.0-test" in msg and "/lib/modules/6.1.0-test/build" in msg and "no BTF" in msg


def test_load_failure_without_a_diagnosed_cause():
    assert "failed to compile or load" in explain_failure(RuntimeError("verifier"), facts())
    assert "tracefs" in explain_failure(RuntimeError("x"), facts(tracefs=False))


def test_gather_reads_this_host():
    f = Facts.gather()
    assert isinstance(f.cap_eff, int) and f.release
