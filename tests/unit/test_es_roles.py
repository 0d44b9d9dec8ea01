"""The least-privilege role bodies and the key file setting (shipper/sinks/elasticsearch/security.py,
shipper/config.py); tested against a secured Elasticsearch in tests/integration/test_es_security.py."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from shipper import config
from shipper.sinks.elasticsearch.security import index_patterns, roles, shipper_key_roles, write_secret


def test_writer_is_exactly_what_the_shipper_calls() -> None:
    w = roles("logship")["logship_writer"]
    assert w["cluster"] == ["monitor"]
    assert w["indices"] == [{"names": list(index_patterns("logship").values()),
                             "privileges": ["create_doc", "create_index", "auto_configure"]}]
    assert set(shipper_key_roles("logship")) == {"logship_writer", "logship_snapshot_reader"}
    assert roles("logship")["logship_snapshot_reader"]["indices"][0]["privileges"] == ["read"]


def test_log_index_regex_matches_daily_indices_only() -> None:
    lucene = index_patterns("log.ship")["logs"]
    assert lucene.startswith("/") and lucene.endswith("/")
    rx = re.compile(lucene[1:-1].replace("\\.", r"\.") + r"\Z")
    assert rx.match("log.ship-2026.12.01")
    for other in ("logxship-2026.12.01", "log.ship-other", "log.ship-deadletter-x"):
        assert not rx.match(other), other


def test_api_key_file(tmp_path: Path) -> None:
    f = tmp_path / "k"
    write_secret(f, "aWQ6a2V5")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    cfg = config.load({"LOGSHIP_ES_API_KEY_FILE": str(f)})
    assert cfg.elasticsearch.api_key == "aWQ6a2V5" and cfg.redacted()["elasticsearch"]["api_key"] == "***"
    with pytest.raises(config.ConfigError, match="LOGSHIP_ES_API_KEY_FILE"):
        config.load({"LOGSHIP_ES_API_KEY_FILE": str(tmp_path / "missing")})
