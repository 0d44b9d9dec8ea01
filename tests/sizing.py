"""How hard the property tests try. Hypothesis profiles, registered in tests/conftest.py:

- `dev` (default): a tenth of the examples, so `make test-unit` stays under a minute on a laptop;
- `ci` (selected when CI=true, or with `--hypothesis-profile=ci` / HYPOTHESIS_PROFILE=ci): the
  full counts the tests were sized for.

A test asks for `examples(n)`: n under `ci`, scaled down with the active profile otherwise."""

from __future__ import annotations

from hypothesis import settings

FULL = 100  # the `ci` profile's max_examples: Hypothesis' default, the scale the counts were written for


def examples(n: int) -> int:
    """`n` examples under the ci profile; proportionally fewer (at least 10) under smaller ones."""
    return max(10, n * settings().max_examples // FULL)


def cases(n: int) -> int:
    """The same scaling for hand-rolled random loops (no minimum beyond one case)."""
    return max(1, n * settings().max_examples // FULL)
