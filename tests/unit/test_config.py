"""Settings: env over file over defaults, clear errors, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipper import config


def test_defaults_without_env_or_file():
    cfg = config.load(env={})
    assert cfg.elasticsearch.url == ("http://127.0.0.1:9200",)
    assert cfg.docker.max_line_bytes == 1 << 20
    assert cfg.pipeline.ebpf == "auto"


def test_env_overrides_file(tmp_path: Path):
    f = tmp_path / "logship.toml"
    f.write_text('[elasticsearch]\nindex_prefix = "fromfile"\nbulk_max_docs = 10\n[docker]\nexclude = ["db-*"]\n')
    cfg = config.load(env={"LOGSHIP_CONFIG": str(f), "LOGSHIP_ES_INDEX_PREFIX": "fromenv"})
    assert cfg.elasticsearch.index_prefix == "fromenv"
    assert cfg.elasticsearch.bulk_max_docs == 10
    assert cfg.docker.exclude == ("db-*",)


def test_lists_and_bools_from_env():
    cfg = config.load(env={"LOGSHIP_ES_URL": "http://a:9200, http://b:9200", "LOGSHIP_ES_VERIFY_CERTS": "no"})
    assert cfg.elasticsearch.url == ("http://a:9200", "http://b:9200")
    assert cfg.elasticsearch.verify_certs is False


@pytest.mark.parametrize("env, words", [
    ({"LOGSHIP_ES_BULK_MAX_DOCS": "many"}, ["LOGSHIP_ES_BULK_MAX_DOCS", "many"]),
    ({"LOGSHIP_ES_VERIFY_CERTS": "maybe"}, ["LOGSHIP_ES_VERIFY_CERTS", "true/false"]),
    ({"LOGSHIP_EBPF": "sometimes"}, ["LOGSHIP_EBPF", "auto"]),
    ({"LOGSHIP_ES_URLS": "x"}, ["unknown setting", "LOGSHIP_ES_URLS"]),
    ({"LOGSHIP_ES_CONCURRENCY": "0"}, ["LOGSHIP_ES_CONCURRENCY", "at least 1"]),  # 0 would never send
    ({"LOGSHIP_MEMORY_LIMIT_MB": "0"}, ["LOGSHIP_MEMORY_LIMIT_MB", "at least 16"]),
    ({"LOGSHIP_SPOOL_AFTER_S": "-5"}, ["LOGSHIP_SPOOL_AFTER_S", "at least 0"]),
])
def test_bad_values_name_the_variable(env, words):
    with pytest.raises(config.ConfigError) as e:
        config.load(env=env)
    for w in words:
        assert w in str(e.value)


def test_numbers_below_their_minimum_in_a_file_name_the_key(tmp_path: Path):
    f = tmp_path / "c.toml"
    f.write_text("[elasticsearch]\nbulk_max_docs = 0\n")
    with pytest.raises(config.ConfigError, match=r"\[elasticsearch\] bulk_max_docs=0: expected a number of at least 1"):
        config.load(env={"LOGSHIP_CONFIG": str(f)})
    assert config.load(env={"LOGSHIP_DOCKER_RESUME_OVERLAP_S": "0"}).docker.resume_overlap_s == 0


def test_bad_file_is_a_clear_error(tmp_path: Path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(config.ConfigError, match="no such file"):
        config.load(env={"LOGSHIP_CONFIG": str(missing)})
    bad = tmp_path / "bad.toml"
    bad.write_text("[elasticsearch\n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(env={"LOGSHIP_CONFIG": str(bad)})
    typo = tmp_path / "typo.toml"
    typo.write_text("[elasticsearch]\nindex_prefx = 'x'\n")
    with pytest.raises(config.ConfigError, match="index_prefx"):
        config.load(env={"LOGSHIP_CONFIG": str(typo)})


def test_secrets_are_masked():
    cfg = config.load(env={"LOGSHIP_ES_PASSWORD": "hunter2", "LOGSHIP_ES_USERNAME": "elastic"})
    red = cfg.redacted()
    assert red["elasticsearch"]["password"] == "***"
    assert "hunter2" not in repr(red)


def test_markdown_table_lists_every_setting():
    table = config.markdown_table()
    for name, (_, cls) in config.SECTIONS.items():
        for f in cls.__dataclass_fields__:
            assert f"`{config.env_name(name, f)}`" in table
