"""The README stays true: every LOGSHIP_* setting is in its configuration table (regenerate
it with `logship config --markdown`, see the README's Development section), and the two
local commands it documents exist in the Makefile."""

from __future__ import annotations

import re
from dataclasses import fields

from shipper.config import SECTIONS, env_name, markdown_table
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def _table() -> str:
    m = re.search(r"<!-- config-table:[^>]*-->\n(.*?)<!-- config-table end -->", README, re.S)
    assert m, "README lost its config-table markers"
    return m.group(1)


def test_every_setting_is_in_the_readme_table() -> None:
    table = _table()
    missing = [env_name(section, f.name) for section, (_, cls) in SECTIONS.items() for f in fields(cls)
               if f"`{env_name(section, f.name)}`" not in table]
    assert not missing, f"settings missing from README.md (regenerate the table): {missing}"


def test_readme_table_is_the_generated_one() -> None:
    assert _table().strip() == markdown_table().strip(), "README's table is stale: regenerate it (README, Development)"


def test_documented_make_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run", "test"):
        assert f"`make {target}`" in README
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no `{target}` target"


def test_readme_sections() -> None:
    for title in ("## The flow", "## Quick start", "## Configuration", "## Opting out", "## Snapshots",
                  "## Troubleshooting", "## Development", "## Why these libraries"):
        assert title in README, title
    for lib in ("aiohttp", "uvloop", "orjson", "python-dateutil", "docker", "elasticsearch", "bcc", "hypothesis",
                "prometheus-client"):
        assert f"**{lib}**" in README, lib


def test_every_logship_variable_the_docs_name_is_accepted() -> None:
    """A LOGSHIP_* name in the README or the compose file that `logship run` rejects (unknown
    setting) would send users into a configuration error."""
    from shipper.config import load
    docs = README + (ROOT / "docker-compose.yml").read_text()
    named = sorted(set(re.findall(r"\bLOGSHIP_[A-Z0-9_]*[A-Z0-9]\b", docs)) - {"LOGSHIP_CONFIG"})
    rejected = []
    for name in named:
        try:
            load(env={name: ""})
        except Exception as exc:  # noqa: BLE001 - only "unknown setting" matters here
            if "unknown setting" in str(exc):
                rejected.append(name)
    assert not rejected, rejected
