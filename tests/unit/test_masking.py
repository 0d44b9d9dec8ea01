"""Credentials inside URLs are masked wherever they are shown (shipper.core.masking)."""

import io
import json
import logging

from shipper import config
from shipper.cli.main import MaskingFormatter
from shipper.core.masking import error_text, mask_credentials


def test_mask_forms() -> None:
    assert mask_credentials("https://elastic:s3cret@es:9200") == "https://elastic:***@es:9200"
    assert mask_credentials("https://TOKEN@es:9200/x") == "https://***@es:9200/x"
    assert mask_credentials("http://es:9200/a@b") == "http://es:9200/a@b"
    assert mask_credentials("no url user@example.com") == "no url user@example.com"
    assert mask_credentials("cannot reach http://u:p%40ss@h:1 and https://v:w@k") == \
        "cannot reach http://u:***@h:1 and https://v:***@k"


def test_config_redacted_masks_urls() -> None:
    cfg = config.load({"LOGSHIP_ES_URL": "https://elastic:s3cret@es1:9200,http://es2:9200",
                       "LOGSHIP_KIBANA_URL": "http://k:pw@kibana:5601", "LOGSHIP_HTTP_TOKEN": "tok"})
    shown = json.dumps(cfg.redacted(), default=str)
    assert "s3cret" not in shown and ":pw@" not in shown and "tok\"" not in shown
    assert "https://elastic:***@es1:9200" in shown and "http://es2:9200" in shown


def test_log_formatter_masks() -> None:
    buf = io.StringIO()
    h = logging.StreamHandler(buf)
    h.setFormatter(MaskingFormatter("%(message)s"))
    lg = logging.getLogger("test.masking")
    lg.addHandler(h)
    lg.propagate = False
    try:
        lg.error("bulk to %s failed", "https://elastic:s3cret@es:9200")
    finally:
        lg.removeHandler(h)
    assert buf.getvalue() == "bulk to https://elastic:***@es:9200 failed\n"


def test_health_probe_masks_the_url_it_reports() -> None:
    import asyncio

    from shipper.config import ElasticsearchSettings
    from shipper.runtime.http import EsProbe

    status = asyncio.run(EsProbe(ElasticsearchSettings(url=("http://elastic:s3cret@127.0.0.1:9",))).status())
    assert status["reachable"] is False and status["url"] == "http://elastic:***@127.0.0.1:9"
    assert "s3cret" not in json.dumps(status)


def test_logship_config_output_masks(capsys: object) -> None:
    import argparse

    from shipper.cli.config_cmd import cmd_config
    cfg = config.load({"LOGSHIP_ES_URL": "https://elastic:s3cret@es:9200"})
    cmd_config(cfg, argparse.Namespace(markdown=False))
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "s3cret" not in out and "https://elastic:***@es:9200" in out


def test_error_text_is_the_masked_text_else_the_kind() -> None:
    """An exception is always truthy: `exc or type(exc).__name__` logged a timeout as ''."""
    assert error_text(TimeoutError()) == "TimeoutError"
    assert error_text(OSError("connect to https://u:pw@es:9200 failed")) == "connect to https://u:***@es:9200 failed"
