"""The one sanitizer for container text shown on a terminal (shipper.core.terminal), and its users."""

from shipper.cli.tail import format_line
from shipper.core.terminal import inert
from shipper.runtime.http import plain_line
from shipper.snapshots.render import render

OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
CLEAR = "\x1b[2J\x1b[H"
OSC8 = "\x1b]8;;http://evil.example/\x1b\\click me\x1b]8;;\x1b\\"
HOSTILE = f"a{OSC52}b{CLEAR}c{OSC8}d"


def test_plain_text_unchanged() -> None:
    for s in ("hello world", "tab\there", "ünïcødé ✓ 日本", "back\\slash", ""):
        assert inert(s) == s


def test_escape_sequences_shown_escaped() -> None:
    out = inert(HOSTILE)
    assert "\x1b" not in out and "\x07" not in out
    assert out.startswith("a\\x1b]52;c;ZWNobyBwd25lZA==\\x07b\\x1b[2J")


def test_every_c0_but_tab_del_c1_and_bidi() -> None:
    for code in [*range(0x09), *range(0x0A, 0x20), 0x7F, *range(0x80, 0xA0)]:
        assert inert(chr(code)) == ("\\n" if code == 10 else "\\r" if code == 13 else f"\\x{code:02x}")
    for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c":
        assert inert(ch) == f"\\u{ord(ch):04x}"
    assert inert("\t") == "\t"


def test_tail_keeps_its_own_colours_only() -> None:
    doc = {"container.name": f"web{CLEAR}", "stream": "stdout", "message": f"error {OSC52}", "log.level": "error"}
    coloured = format_line(doc, colour=True)
    plain = format_line(doc, colour=False)
    assert "\x1b" not in plain
    # What remains of ESC in the coloured line are logship's own SGR sequences (ESC [ digits ; m).
    import re
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain
    assert "\\x1b]52" in plain and "\\x1b[2J" in plain


def test_plain_logs_stream_is_inert() -> None:
    line = plain_line({"container.name": "c", "stream": "stdout", "message": HOSTILE}).decode()
    assert line.endswith("\n") and line.count("\n") == 1
    assert "\x1b" not in line and "\x07" not in line


def test_snapshot_rendering_is_inert() -> None:
    doc = {"logship.snapshot.id": "s1", "container.name": "c", "process.name": f"x{CLEAR}", "message": OSC8,
           "snapshot": {"trigger": "level", "notes": [OSC52]},
           "events": [{"ts_ns": 1, "syscall": "write", "done": True, "ret": 5, "args": {"fd": f"1({OSC8})"},
                       "data": f"line\nwith\r{OSC52}"}]}
    text = render(doc)
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert all(line.startswith("#") or line[:2].isdigit() for line in text.splitlines())
