"""Accuracy over the public corpora in ../shared/eval (read by path, never copied).

Floors are the values measured when this suite was written (see
bench/parsers_accuracy.py for the full table); a drop below them is a regression.
"""

from __future__ import annotations


import pytest

from tests.conftest import infra_missing

from . import evaluate as ev


@pytest.fixture(scope="module", autouse=True)
def _corpora_present():
    if not ev.eval_dir().is_dir():
        infra_missing(f"the eval corpora at {ev.eval_dir()}",
                      "they sit in ../shared/eval beside the checkout; or set LOGSHIP_EVAL_DIR")


def test_rfc5424_valid_lines_every_field():
    res = ev.evaluate_rfc5424()
    sc = res["valid_fields"]
    assert sc.total >= 559
    assert sc.ok == sc.total, sc.failures[:10]


def test_rfc5424_strict_validator_rejects_every_invalid_line():
    sc = ev.evaluate_rfc5424()["invalid_rejected"]
    assert sc.total >= 159
    assert sc.ok == sc.total, sc.failures[:10]


def test_rfc5424_strict_validator_accepts_every_valid_line():
    sc = ev.evaluate_rfc5424()["valid_accepted"]
    assert sc.ok == sc.total, sc.failures[:10]


def test_rfc3164_vectors_floor():
    sc = ev.evaluate_rfc3164()
    assert sc.share >= 0.80, sc.failures


def test_multiline_grouping_matches_fluent_bit():
    sc = ev.evaluate_multiline()
    assert sc.ok == sc.total, sc.failures


# format -> minimum valid rows fully right (measured), invalid rows must never be silently accepted
APP_FLOORS = {
    "apache_combined": 3, "apache_common": 2, "apache_error": 4, "nginx_combined": 3, "nginx_main": 5,
    "nginx_ingress_upstreaminfo": 4, "nginx_access": 7, "nginx_error": 7, "redis": 23, "json": 9,
    "logfmt": 8, "klog": 2, "glog": 3, "linux_auth_syslog": 1, "aws_alb": 15,
}


def test_app_formats_floors():
    res = ev.evaluate_apps()
    for fmt, floor in APP_FLOORS.items():
        assert res[fmt]["valid"].ok >= floor, (fmt, res[fmt]["valid"].failures)
        inv = res[fmt]["invalid"]
        assert inv.ok == inv.total, (fmt, inv.failures)


LOGHUB_FLOORS = {  # share of lines with timestamp, level and message all right
    "Android": 1.0, "Apache": 0.98, "HDFS": 1.0, "Hadoop": 1.0, "Linux": 0.99, "OpenSSH": 1.0,
    "Spark": 0.99, "Zookeeper": 1.0,
}


@pytest.mark.parametrize("system", ev.LOGHUB_SYSTEMS)
def test_loghub_floor(system):
    sc = ev.evaluate_loghub()[system] if system not in _cache else _cache[system]
    _cache[system] = sc
    assert sc["timestamp"].share == 1.0, sc["timestamp"].failures[:5]
    assert sc["all"].share >= LOGHUB_FLOORS[system], sc["message"].failures[:5]


_cache: dict = {}
