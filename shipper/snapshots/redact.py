"""Scrubbing secrets out of syscall data excerpts before they leave the shipper.

Redaction sees the consecutive excerpts of one fd together, as a stream: an
`Authorization:` header split over two writes, a JWT cut between two reads, a MySQL
client's packets up to the server's OK are all one text to it. Per fd and direction the
excerpts are joined and the text rules run over the join; per fd (both directions, in
order) the protocol rules follow a conversation (MySQL, PostgreSQL, SMTP/IMAP SASL).
Masks are mapped back onto each excerpt. A secret is replaced, its key kept, so a reader
still sees *that* a password was sent.

Bytes are handled as latin-1 text (one character per byte: positions are byte offsets).
The built-in patterns are ours and written to run in linear time; operators' extra
patterns are RE2 (safe_regex.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Iterator

from shipper.transforms.safe_regex import RegexError, SafeRegex

MASK = b"***"
IN, OUT = "in", "out"  # read family / write family

# ---- text rules: (name, pattern, group to mask; 0 = the whole match) ------------------------
_LINE = r"[^\r\n]*"
TEXT_RULES: tuple[tuple[str, re.Pattern[str], int], ...] = tuple((n, re.compile(p), g) for n, p, g in (
    # HTTP headers that carry credentials: the value, to the end of its line.
    ("header", r"(?im)^[ \t]*(?:proxy-authorization|authorization|cookie|set-cookie|x-api-key|x-auth-token"
               r"|x-amz-security-token|x-goog-api-key|private-token)[ \t]*:[ \t]*(" + _LINE + ")", 1),
    ("bearer", r"(?i)\b(?:bearer|basic)[ \t]+([A-Za-z0-9._~+/=-]{8,})", 1),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*", 0),
    ("uri-userinfo", r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://(?:[^:/?#@\s]*:)?([^:/?#@\s]+)@", 1),
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})", 0),
    ("gitlab-token", r"\bglpat-[A-Za-z0-9_-]{20,}", 0),
    ("aws-key-id", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b", 0),
    ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", 0),
    ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}", 0),
    ("stripe-key", r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}", 0),
    ("npm-token", r"\bnpm_[A-Za-z0-9]{36}", 0),
    ("api-secret-key", r"\bsk-[A-Za-z0-9_-]{20,}", 0),
    # Line protocols: SMTP/POP3/Redis inline AUTH, POP3 PASS, IMAP LOGIN/AUTHENTICATE.
    ("auth-command", r"(?im)^[ \t]*(?:AUTH|PASS)[ \t]+(" + _LINE + ")", 1),
    ("imap-login", r"(?im)^[A-Za-z0-9.]+[ \t]+(?:LOGIN|AUTHENTICATE)[ \t]+(" + _LINE + ")", 1),
    # Redis RESP: AUTH (alone or in HELLO) and CONFIG SET requirepass/masterauth, then 1-2 bulk strings.
    ("redis-auth", r"(?i)\$4\r\nAUTH\r\n((?:\$[0-9]{1,6}\r\n[^\r\n]*(?:\r\n)?){1,2})", 1),
    ("redis-config", r"(?i)\$[0-9]{1,2}\r\n(?:requirepass|masterauth)\r\n(\$[0-9]{1,6}\r\n[^\r\n]*)", 1),
    ("redis-config", r"(?im)\b(?:requirepass|masterauth)[ \t]+(" + _LINE + ")", 1),
    # SQL: IDENTIFIED BY 'x', PASSWORD 'x'.
    ("sql-password", r"(?i)\b(?:identified[ \t]+by|password)[ \t]+('[^'\r\n]*'?|\"[^\"\r\n]*\"?)", 1),
))
PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----")
PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----")

# key = value for secret key names, also inside identifiers (AWS_SECRET_ACCESS_KEY, id_token,
# sessionToken, x-api-key). The key starts where an identifier starts (no backtracking into it).
KEY_VALUE = re.compile(r"(?<![A-Za-z0-9_.\-])([A-Za-z_][A-Za-z0-9_.\-]{0,80})[\"']?[ \t]*(?:=>|:=|=|:)[ \t]*")
_SEGMENT = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
SECRET_PARTS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "credential", "privatekey",
                "accesskey", "authkey", "sessionid", "signature")
SECRET_WORDS = frozenset({"pass", "pwd", "pw", "auth", "psk", "otp", "cookie"})
NOT_A_VALUE = re.compile(r"(?i)(?:yes|no|true|false|null|none|nil|undefined)\b|[\r\n,;})\]]|$")


def is_secret_key(ident: str) -> bool:
    """password, db_password, AWS_SECRET_ACCESS_KEY, id_token, sessionToken, x-api-key: yes;
    author, keyboard, passenger: no."""
    segs = [s.lower() for s in _SEGMENT.findall(ident)]
    if any(s in SECRET_WORDS for s in segs):
        return True
    joined = "".join(segs)
    return any(p in joined for p in SECRET_PARTS)


def _value_end(text: str, start: int) -> int:
    """A value runs to its closing quote or to the end of its line (passwords hold spaces and ;)."""
    eol = len(text)
    for i in range(start, len(text)):
        if text[i] in "\r\n":
            eol = i
            break
    if start < len(text) and text[start] in "\"'`":
        close = text.find(text[start], start + 1, eol)
        return close if close != -1 else eol
    return eol


def key_value_spans(text: str) -> Iterator[tuple[int, int]]:
    for m in KEY_VALUE.finditer(text):
        if not is_secret_key(m.group(1)):
            continue
        v = m.end()
        if NOT_A_VALUE.match(text, v):
            continue  # "using password: YES", "token": null, password=, ...
        start = v + 1 if text[v] in "\"'`" else v
        end = _value_end(text, v)
        if end > start:
            yield start, end


def pem_spans(text: str) -> Iterator[tuple[int, int]]:
    pos = 0
    while (b := PEM_BEGIN.search(text, pos)) is not None:
        e = PEM_END.search(text, b.end())
        end = e.start() if e else len(text)
        yield b.end(), end
        pos = e.end() if e else len(text)


# ---- protocol rules (both directions of one fd, in order) ------------------------------------
SASL_START = re.compile(r"(?im)^(?:[A-Za-z0-9.]+[ \t]+)?(?:AUTH|AUTHENTICATE)[ \t]+(?:LOGIN|PLAIN|CRAM-MD5|XOAUTH2"
                        r"|OAUTHBEARER|NTLM|GSSAPI|SCRAM-SHA-[0-9-]+)(?:[ \t]+\S+)?[ \t]*\r?$")


def _mysql_len(d: bytes) -> int:
    return d[0] | d[1] << 8 | d[2] << 16 if len(d) >= 4 else -1


def is_mysql_handshake_response(data: bytes) -> bool:
    """A MySQL HandshakeResponse41 on its own (its greeting unseen): header length matching
    the bytes, sequence 1, CLIENT_PROTOCOL_41 and CLIENT_SECURE_CONNECTION, 23 zero bytes."""
    if len(data) < 36 or data[3] != 1:
        return False
    length = _mysql_len(data)
    if length + 4 < len(data) or length < 32:
        return False
    caps = int.from_bytes(data[4:8], "little")
    return bool(caps & 0x200) and bool(caps & 0x8000) and data[13:36] == bytes(23)


def is_mysql_greeting(d: bytes) -> bool:
    """Server greeting: sequence 0, protocol version 10, then a NUL-ended version string."""
    return len(d) >= 6 and d[3] == 0 and d[4] == 0x0A and 0 < _mysql_len(d) < 1 << 16 and 0x20 <= d[5] < 0x7F


def is_mysql_change_user(d: bytes) -> bool:
    return len(d) >= 5 and d[3] == 0 and d[4] == 0x11 and 1 < _mysql_len(d) < 1 << 16


def is_postgres_password(d: bytes) -> bool:
    """PasswordMessage / SASLInitialResponse / SASLResponse: 'p', then a length that fits."""
    return len(d) >= 5 and d[0] == 0x70 and 4 < int.from_bytes(d[1:5], "big") < 1 << 16


@dataclass(slots=True)
class _Conversation:
    """What one fd's protocol state says about the next excerpt."""
    mysql_server: str | None = None  # while a MySQL auth exchange runs: the server's direction
    sasl_client: str | None = None  # while an SMTP/IMAP SASL exchange runs: the client's direction

    def masks(self, direction: str, d: bytes) -> tuple[str, int] | None:
        """(rule, offset from which the excerpt is masked), or None; advances the state."""
        text = d.decode("latin-1")
        if self.mysql_server is not None:
            if direction != self.mysql_server:
                return "mysql-auth", min(4, len(d))
            if len(d) >= 5 and d[4] in (0x00, 0xFF):  # the server's OK or ERR ends the exchange
                self.mysql_server = None
            return None
        if is_mysql_greeting(d):
            self.mysql_server = direction
            return None
        if is_mysql_change_user(d):
            self.mysql_server = IN if direction == OUT else OUT
            return "mysql-auth", 5
        if is_mysql_handshake_response(d):
            return "mysql-auth", 4
        if is_postgres_password(d):
            return "postgres-password", 5
        if self.sasl_client is not None:
            if direction == self.sasl_client:
                return "sasl-continuation", 0
            if not (text.startswith("334") or text.startswith("+")):
                self.sasl_client = None
            return None
        if SASL_START.search(text):
            self.sasl_client = direction
        return None


# ---- streams ----------------------------------------------------------------------------
@dataclass(slots=True)
class Excerpt:
    fd: Hashable  # one fd of one process, until it is closed (callers add a generation)
    direction: str  # IN | OUT
    data: bytes
    out: bytes = b""
    fired: list[str] = field(default_factory=list)


class Redactor:
    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.custom: list[tuple[str, SafeRegex]] = []
        for i, p in enumerate(extra):
            try:
                self.custom.append((f"custom{i}", SafeRegex(p)))
            except RegexError as exc:
                raise ValueError(f"redact pattern {p!r}: {exc}") from None

    def scrub(self, data: bytes) -> tuple[bytes, list[str]]:
        """One excerpt on its own: (scrubbed data, names of the rules that fired)."""
        ex = Excerpt(0, OUT, data)
        self.scrub_streams([ex])
        return ex.out, ex.fired

    def scrub_streams(self, excerpts: list[Excerpt]) -> None:
        """Excerpts in time order (any fds, both directions): sets each one's `out` and `fired`."""
        spans: list[list[tuple[int, int, str]]] = [[] for _ in excerpts]
        conv: dict[Hashable, _Conversation] = {}
        streams: dict[tuple[Hashable, str], list[int]] = {}
        for i, ex in enumerate(excerpts):
            streams.setdefault((ex.fd, ex.direction), []).append(i)
            hit = conv.setdefault(ex.fd, _Conversation()).masks(ex.direction, ex.data)
            if hit is not None and hit[1] < len(ex.data):
                spans[i].append((hit[1], len(ex.data), hit[0]))
        for idx in streams.values():
            text = "".join(excerpts[i].data.decode("latin-1") for i in idx)
            starts, pos = [], 0
            for i in idx:
                starts.append(pos)
                pos += len(excerpts[i].data)
            for a, b, rule in self._text_spans(text):
                for i, s in zip(idx, starts, strict=True):
                    n = len(excerpts[i].data)
                    lo, hi = max(a, s), min(b, s + n)
                    if lo < hi:
                        spans[i].append((lo - s, hi - s, rule))
        for ex, sp in zip(excerpts, spans, strict=True):
            ex.out, ex.fired = _apply(ex.data, sp)

    def _text_spans(self, text: str) -> Iterator[tuple[int, int, str]]:
        for name, pat, group in TEXT_RULES:
            for m in pat.finditer(text):
                if m.end(group) > m.start(group):
                    yield m.start(group), m.end(group), name
        for a, b in key_value_spans(text):
            yield a, b, "secret-key"
        for a, b in pem_spans(text):
            yield a, b, "private-key"
        for name, rx in self.custom:
            for a, b in rx.spans(text):
                yield a, b, name


def _apply(data: bytes, spans: list[tuple[int, int, str]]) -> tuple[bytes, list[str]]:
    if not spans:
        return data, []
    spans.sort()
    out, pos, fired = bytearray(), 0, []
    for a, b, rule in spans:
        if rule not in fired:
            fired.append(rule)
        if b <= pos:
            continue
        a = max(a, pos)
        out += data[pos:a] + MASK if a > pos or not out.endswith(MASK) else b""
        pos = b
    out += data[pos:]
    return bytes(out), fired
