"""The trigger rule language: `key=value`, `key~regex`, joined by `and`.

    container=web and message~"Database (error|gone)"

Keys: container (name, glob or id prefix with `=`; regex on the name with `~`), level,
message, stream, path. `=` is equality, `~` a regex search (RE2: linear time, see
safe_regex.py). Values may be quoted with '...' or "..." (needed when they contain spaces
or the word `and`). Rules are bounded: MAX_RULE_CHARS, MAX_CONDITIONS."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Iterable

from shipper.transforms.safe_regex import RegexError, SafeRegex

KEYS = ("container", "level", "message", "stream", "path")
MAX_RULE_CHARS = 1024
MAX_CONDITIONS = 8


def name_matches(c: Any, globs: Iterable[str]) -> bool:
    """A container name glob, or an id prefix of at least 4 characters."""
    return any(fnmatch.fnmatchcase(c.name, g) or (len(g) >= 4 and c.id.startswith(g)) for g in globs)


class RuleError(ValueError):
    """A rule that does not parse; the message says where and what was expected."""


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    op: str  # "=" | "~"
    value: str
    regex: SafeRegex | None = None

    def matches_container(self, c: Any) -> bool:
        if self.regex is not None:  # op "~"
            return self.regex.search(c.name)
        return name_matches(c, (self.value,))

    def matches(self, record: Any) -> bool:
        if self.key == "container":
            return self.matches_container(record.container)
        actual = field_value(record, self.key)
        if actual is None:
            return False
        if self.regex is not None:  # op "~"
            return self.regex.search(actual)
        return actual == self.value if self.key != "level" else actual.lower() == self.value.lower()


def field_value(record: Any, key: str) -> str | None:
    if key == "message":
        return record.message.decode("utf-8", "replace")
    if key == "level":
        return record.fields.get("log.level")
    if key == "stream":
        return record.stream
    if key == "path":
        return record.path
    return None


@dataclass(frozen=True, slots=True)
class Rule:
    text: str
    conditions: tuple[Condition, ...]

    def matches(self, record: Any) -> bool:
        return all(c.matches(record) for c in self.conditions)

    def container_conditions(self) -> tuple[Condition, ...]:
        """The conditions on the container: they bring the containers they name into snapshot scope."""
        return tuple(c for c in self.conditions if c.key == "container")


_TOKEN = re.compile(r"""\s*(?:(?P<q>"(?:[^"\\]|\\.)*"|'[^']*')|(?P<op>[=~])|(?P<word>[^\s=~"']+))""")


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise RuleError(f"rule {text!r}: unexpected {text[pos:].strip()[:20]!r} at column {pos + 1}")
        if m.group("q") is not None:
            q = m.group("q")
            out.append(("value", q[1:-1].replace('\\"', '"') if q[0] == '"' else q[1:-1], m.start("q")))
        elif m.group("op") is not None:
            out.append(("op", m.group("op"), m.start("op")))
        else:
            out.append(("word", m.group("word"), m.start("word")))
        pos = m.end()
    return out


def parse_rule(text: str) -> Rule:
    """`container=web and message~Database` -> Rule; RuleError says what is wrong."""
    if len(text) > MAX_RULE_CHARS:
        raise RuleError(f"rule longer than {MAX_RULE_CHARS} characters ({len(text)})")
    toks = _tokens(text)
    if not toks:
        raise RuleError("empty rule: expected e.g. `container=web and message~Database`")
    conds: list[Condition] = []
    i = 0
    while True:
        kt, key, kpos = toks[i]
        if kt != "word" or key not in KEYS:
            raise RuleError(f"rule {text!r}: unknown key {key!r} at column {kpos + 1}; keys: {', '.join(KEYS)}")
        if i + 1 >= len(toks):
            raise RuleError(f"rule {text!r}: incomplete condition {key!r}; expected key=value or key~regex")
        ot, op, opos = toks[i + 1]
        if ot != "op":
            raise RuleError(f"rule {text!r}: expected `=` or `~` after {key!r} at column {opos + 1}")
        if i + 2 >= len(toks):
            raise RuleError(f"rule {text!r}: missing value after `{key}{op}`")
        _, value, vpos = toks[i + 2]
        if toks[i + 2][0] == "op":
            raise RuleError(f"rule {text!r}: missing value after `{key}{op}` at column {vpos + 1}")
        regex = None
        if op == "~":
            try:
                regex = SafeRegex(value)
            except RegexError as exc:
                raise RuleError(f"rule {text!r}: bad regex {value!r} for {key}: {exc}") from None
        conds.append(Condition(key, op, value, regex))
        if len(conds) > MAX_CONDITIONS:
            raise RuleError(f"rule {text!r}: more than {MAX_CONDITIONS} conditions")
        i += 3
        if i == len(toks):
            return Rule(text.strip(), tuple(conds))
        if toks[i][:2] != ("word", "and"):
            raise RuleError(f"rule {text!r}: expected `and` at column {toks[i][2] + 1}, found {toks[i][1]!r}"
                            " (quote values that contain spaces)")
        i += 1
        if i == len(toks):
            raise RuleError(f"rule {text!r}: a condition must follow the final `and`")
