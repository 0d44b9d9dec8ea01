"""The corpus accuracy tests need the public corpora in ../shared/eval (or LOGSHIP_EVAL_DIR).

A user's fresh clone has no ../shared beside it: there they are deselected, with a line in the
summary saying so. CI always has shared/ beside the checkout, so under CI=true they always run
and a missing corpus fails them (`infra_missing`), like any other missing infrastructure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from . import evaluate as ev

HERE = Path(__file__).resolve().parent
_deselected: list[pytest.Item] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CI") == "true" or ev.eval_dir().is_dir():
        return
    corpus = [i for i in items if HERE in i.path.resolve().parents]
    if corpus:
        _deselected.extend(corpus)
        config.hook.pytest_deselected(items=corpus)
        items[:] = [i for i in items if i not in corpus]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _deselected:
        terminalreporter.write_line(
            f"tests/corpus: {len(_deselected)} accuracy tests deselected: no corpora at {ev.eval_dir()} "
            "(put shared/eval beside the checkout or set LOGSHIP_EVAL_DIR; under CI=true they run and must pass)")
