"""Accuracy evaluation over the public corpora in ``../shared/eval`` (read by
path at run time, never copied).  Used by ``tests/corpus`` and by
``bench/parsers_accuracy.py``."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import parsers
from parsers import levels
from parsers.multiline import MultilineJoiner

UTC = timezone.utc
# Reference "now" for year-less stamps where the corpus states one (syslog-ng tests).
SYSLOG_NG_NOW = datetime(2019, 2, 8, 8, 37, 49, tzinfo=UTC)


def eval_dir() -> Path:
    env = os.environ.get("LOGSHIP_EVAL_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "eval"


def rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def raw_bytes(row: dict) -> bytes:
    if "line_b64" in row:
        return base64.b64decode(row["line_b64"])
    return row["line"].encode("utf-8", "surrogateescape")


def as_text(value: str | None) -> str:
    """Expected text as our parser renders it (invalid UTF-8 -> U+FFFD, one BOM stripped)."""
    if value is None:
        return ""
    try:
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value[1:] if value.startswith("\ufeff") else value


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Score:
    total: int = 0
    ok: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, good: bool, what: str = "") -> None:
        self.total += 1
        self.ok += good
        if not good and len(self.failures) < 50:
            self.failures.append(what)

    @property
    def share(self) -> float:
        return self.ok / self.total if self.total else 1.0


# ---------------------------------------------------------------- syslog vectors

_SYSLOG_SIMPLE = {
    "priority": "log.syslog.priority",
    "facility": "log.syslog.facility.code",
    "severity": "log.syslog.severity.code",
    "version": "log.syslog.version",
    "hostname": "log.syslog.hostname",
    "appname": "log.syslog.appname",
    "procid": "log.syslog.procid",
    "msgid": "log.syslog.msgid",
}


def syslog_field_errors(row: dict, out: dict, *, full_instant: bool = True) -> list[str]:
    """Expected-vs-got mismatches for one syslog row (empty list = all right)."""
    exp = row["expect"]
    errs: list[str] = []
    for k, key in _SYSLOG_SIMPLE.items():
        if k in exp:
            want = exp[k]
            got = out.get(key)
            if k == "procid" and want is not None:
                want = str(want)
            if got != want:
                errs.append(f"{k}: want {want!r} got {got!r}")
    if "message" in exp:
        if as_text(exp["message"]) != as_text(out.get("message")):
            errs.append(f"message: want {as_text(exp['message'])!r} got {out.get('message')!r}")
    if "structured_data" in exp:
        got = out.get("log.syslog.structured_data")
        if (exp["structured_data"] or None) != (got or None):
            errs.append(f"sd: want {exp['structured_data']!r} got {got!r}")
    if "structured_data_subset" in exp:
        got = out.get("log.syslog.structured_data") or {}
        for sid, params in exp["structured_data_subset"].items():
            for p, v in params.items():
                if got.get(sid, {}).get(p) != v:
                    errs.append(f"sd[{sid}][{p}]: want {v!r} got {got.get(sid)!r}")
    ts = out.get("@timestamp")
    for k in ("timestamp", "timestamp_instant", "timestamp_utc"):
        if k not in exp:
            continue
        want = exp[k]
        if k == "timestamp" and row.get("format") == "rfc3164":
            continue  # rendered text, year-less: checked via month/day/time below
        if want is None:
            if ts is not None and not row.get("_source_time"):
                errs.append(f"{k}: want none got {ts}")
            continue
        if "YYYY" in want or (row.get("format") == "rfc3164" and k == "timestamp_instant" and not full_instant):
            w = instant(want.replace("YYYY", "2000"))
            if ts is None or (ts.month, ts.day, ts.hour, ts.minute, ts.second) != (
                    w.month, w.day, w.hour, w.minute, w.second):
                errs.append(f"{k}: want {want} got {ts}")
            continue
        if ts is None or ts != instant(want):
            errs.append(f"{k}: want {want} got {ts}")
    if ts is not None and out.get("logship.timestamp_ns", 0) // 1000 != int(ts.timestamp() * 1e6 + 0.5) and abs(
            out["logship.timestamp_ns"] // 1000 - ts.timestamp() * 1e6) > 1:
        errs.append("timestamp_ns disagrees with @timestamp")
    return errs


def rfc5424_rows() -> list[tuple[str, dict]]:
    d = eval_dir() / "syslog"
    out = []
    for f in sorted(d.glob("*.jsonl")):
        for r in rows(f):
            if r.get("format") == "rfc5424":
                out.append((f.name, r))
    return out


def evaluate_rfc5424() -> dict[str, Score]:
    """valid: every stated field right (lenient parse); invalid: strict validator rejects."""
    valid, invalid, lenient_valid = Score(), Score(), Score()
    for name, r in rfc5424_rows():
        raw = raw_bytes(r)
        verdict = parsers.validate_rfc5424(raw)
        if r["valid"]:
            out = parsers.parse(raw, hint="syslog")
            errs = syslog_field_errors(r, out)
            if "rsyslog" in name:  # rsyslog rows state rendered/rsyslog-specific values only
                errs = [e for e in errs if e.startswith(("priority", "facility", "severity"))]
            valid.add(not errs, f"{name}:{r['case']}: {errs}")
            lenient_valid.add(verdict is None, f"{name}:{r['case']}: validator says {verdict}")
        else:
            invalid.add(verdict is not None, f"{name}:{r['case']}: accepted {r['line'][:80]!r}")
    return {"valid_fields": valid, "invalid_rejected": invalid, "valid_accepted": lenient_valid}


def evaluate_rfc3164() -> Score:
    s = Score()
    d = eval_dir() / "syslog"
    for f in sorted(d.glob("*.jsonl")):
        for r in rows(f):
            if r.get("format") != "rfc3164" or not r["valid"]:
                continue
            flags = r.get("syslog_ng_flags") or ""
            if "syslog-ng" in f.name and "LP_EXPECT_HOSTNAME" not in str(flags):
                continue  # parsed by syslog-ng without a HOSTNAME field: a config choice
            if "bad-hostname" in (r.get("note") or ""):
                continue
            st = SYSLOG_NG_NOW if "syslog-ng" in f.name else None
            out = parsers.parse(raw_bytes(r), hint="syslog", source_time=st)
            errs = syslog_field_errors(r, out, full_instant=False)
            errs = [e for e in errs if not e.startswith(("tag", "procid"))] if "rsyslog" in f.name else errs
            s.add(not errs, f"{f.name}:{r['case']}: {errs}")
    return s


# ---------------------------------------------------------------- apps

def _eq_time(out: dict, want: str | None) -> bool:
    ts = out.get("@timestamp")
    if want is None:
        return True
    if "YYYY" in want:
        w = instant(want.replace("YYYY", "2000"))
        return ts is not None and (ts.month, ts.day, ts.hour, ts.minute, ts.second, ts.microsecond) == (
            w.month, w.day, w.hour, w.minute, w.second, w.microsecond)
    return ts is not None and ts == instant(want)


def _req(out: dict) -> str | None:
    if "http.request.method" not in out:
        return None
    s = f"{out['http.request.method']} {out.get('url.original', '')}"
    return s + (f" HTTP/{out['http.version']}" if "http.version" in out else "")


def _none_dash(v):
    return None if v in ("-", None) else v


def _check_app(fmt: str, e: dict, out: dict) -> list[str]:
    """Field checks per format (expected keys are the sources' own names)."""
    checks: list[tuple[str, object, object]] = []
    ts_want = (e.get("timestamp") or e.get("timestamp_utc")) if isinstance(e, dict) else None
    if ts_want is not None and not _eq_time(out, ts_want):
        checks.append(("timestamp", ts_want, out.get("@timestamp")))
    if fmt.startswith("apache_"):
        pairs = {"host": "source.address", "user": "user.name", "method": "http.request.method",
                 "path": "url.original", "status": "http.response.status_code", "size": "http.response.body.bytes",
                 "referrer": "http.request.referrer", "agent": "user_agent.original"}
        if fmt == "apache_error":
            pairs = {"pid": "process.pid", "client": "source.address", "port": "source.port",
                     "module": "apache.error.module"}
            if "message" in e and e["message"] != out.get("message"):
                checks.append(("message", e["message"], out.get("message")))
            if "severity" in e and levels.normalize(e["severity"]) != out.get("log.level"):
                checks.append(("severity", e["severity"], out.get("log.level")))
            if "thread" in e and str(out.get("process.thread.id")) != e["thread"]:
                checks.append(("thread", e["thread"], out.get("process.thread.id")))
        for k, key in pairs.items():
            if k in e and _none_dash(e[k]) != out.get(key):
                checks.append((k, e[k], out.get(key)))
        if "protocol" in e and e["protocol"] != "HTTP/" + str(out.get("http.version")):
            checks.append(("protocol", e["protocol"], out.get("http.version")))
    elif fmt in ("nginx_combined", "nginx_main", "nginx_ingress_upstreaminfo", "nginx_access"):
        pairs = {"client": "source.address", "status": "http.response.status_code",
                 "size": "http.response.body.bytes", "body_bytes": "http.response.body.bytes",
                 "referer": "http.request.referrer", "referrer": "http.request.referrer",
                 "agent": "user_agent.original", "user_agent": "user_agent.original", "user": "user.name",
                 "user_name": "user.name", "method": "http.request.method", "url": "url.original",
                 "http_version": "http.version"}
        for k, key in pairs.items():
            if k in e and _none_dash(e[k]) != out.get(key):
                checks.append((k, e[k], out.get(key)))
        if "request" in e and e["request"] != _req(out):
            checks.append(("request", e["request"], _req(out)))
        if "remote_ip_list" in e and out.get("source.address") not in e["remote_ip_list"]:
            checks.append(("remote_ip_list", e["remote_ip_list"], out.get("source.address")))
    elif fmt == "nginx_error":
        pairs = {"pid": "process.pid", "tid": "process.thread.id", "cid": "nginx.error.connection_id",
                 "message": "message", "client": "source.address", "server": "nginx.error.server",
                 "host": "url.domain", "referer": "http.request.referrer", "upstream": "nginx.error.upstream"}
        for k, key in pairs.items():
            if k in e and e[k] != out.get(key):
                checks.append((k, e[k], out.get(key)))
        if "severity" in e and levels.normalize(e["severity"]) != out.get("log.level"):
            checks.append(("severity", e["severity"], out.get("log.level")))
        if "request" in e and e["request"] != _req(out):
            checks.append(("request", e["request"], _req(out)))
    elif fmt == "redis":
        want_level = {"verbose": "debug"}.get(e.get("level") or "", e.get("level"))
        for k, want, got in (("level", want_level, out.get("log.level")), ("pid", e.get("pid"), out.get("process.pid")),
                             ("role", e.get("role"), out.get("redis.log.role")),
                             ("message", e.get("message"), out.get("message"))):
            if k in e and want != got:
                checks.append((k, want, got))
    elif fmt in ("klog", "glog"):
        for k, key in (("id", "process.thread.id"), ("file", "log.origin.file.name"),
                       ("line", "log.origin.file.line"), ("message", "message")):
            if k in e and e[k] != out.get(key):
                checks.append((k, e[k], out.get(key)))
        if levels.normalize(e.get("level")) != out.get("log.level"):
            checks.append(("level", e.get("level"), out.get("log.level")))
    elif fmt == "linux_auth_syslog":
        for k, key in (("appname", "log.syslog.appname"), ("hostname", "log.syslog.hostname"),
                       ("message", "message"), ("procid", "process.pid")):
            if e[k] != out.get(key):
                checks.append((k, e[k], out.get(key)))
    elif fmt == "json" and not isinstance(e, dict):  # array / scalar: the line is the message
        if out.get("message") != out.get("event.original", out.get("message")) or "logship.parse_error" in out:
            checks.append(("value", e, out.get("message")))
        elif json.loads(out["message"]) != e:
            checks.append(("value", e, out.get("message")))
    elif fmt == "aws_alb":
        checks += _check_alb(e, out)
    elif fmt in ("json", "logfmt", "key_value"):
        ns = "json." if fmt == "json" else "logfmt."
        flat = e
        if fmt == "json":
            from parsers.formats._structured import flatten
            flat, _ = flatten(e)
        mapped = {"msg": "message", "message": "message", "log": "message"}
        for k, v in flat.items():
            got = out.get(ns + k, out.get(mapped.get(k, "")))
            if k in ("level", "lvl", "severity", "at") and ns + k not in out:
                got, v = out.get("log.level"), levels.normalize(str(v)) or v
            if k in ("time", "ts", "timestamp", "t", "@timestamp") and ns + k not in out:
                continue  # moved to @timestamp
            if isinstance(v, (list, dict)) and isinstance(got, str):
                got = json.loads(got)
            if got != v:
                checks.append((k, v, got))
    else:
        return ["no parser for this format"]
    return [f"{k}: want {w!r} got {g!r}" for k, w, g in checks]


# parse_aws_alb_log key (VRL) -> our field; None values must be absent.
_ALB_FIELDS = {
    "type": "aws.elb.type", "elb": "aws.elb.name", "request_processing_time": "aws.elb.request_processing_time.sec",
    "target_processing_time": "aws.elb.backend_processing_time.sec",
    "response_processing_time": "aws.elb.response_processing_time.sec", "received_bytes": "http.request.body.bytes",
    "sent_bytes": "http.response.body.bytes", "request_method": "http.request.method", "request_url": "url.original",
    "user_agent": "user_agent.original", "ssl_cipher": "aws.elb.ssl_cipher", "ssl_protocol": "aws.elb.ssl_protocol",
    "target_group_arn": "aws.elb.target_group.arn", "trace_id": "aws.elb.trace_id", "domain_name": "url.domain",
    "chosen_cert_arn": "aws.elb.chosen_cert.arn", "matched_rule_priority": "aws.elb.matched_rule_priority",
    "request_creation_time": "event.start", "redirect_url": "aws.elb.redirect_url",
    "error_reason": "aws.elb.error.reason", "target_port_list": "aws.elb.target_port",
    "target_status_code_list": "aws.elb.target_status_code", "classification": "aws.elb.classification",
    "classification_reason": "aws.elb.classification_reason", "traceability_id": "aws.elb.conn_trace_id",
}


def _check_alb(e: dict, out: dict) -> list[tuple]:
    checks = []
    for k, key in _ALB_FIELDS.items():
        want = None if e.get(k) in ([], -1.0) else e.get(k)  # VRL's "-" list / "-1" time: Filebeat leaves them out
        if k in e and want != out.get(key):
            checks.append((k, e[k], out.get(key)))
    for k, key in (("elb_status_code", "http.response.status_code"),
                   ("target_status_code", "aws.elb.backend.http.response.status_code")):
        got = out.get(key)
        if e.get(k) != (None if got is None else str(got)):
            checks.append((k, e.get(k), got))
    want = e.get("actions_executed")
    if (want.split(",") if want else None) != out.get("aws.elb.action_executed"):
        checks.append(("actions_executed", want, out.get("aws.elb.action_executed")))
    client = f"{out.get('source.address')}:{out.get('source.port')}"
    if e.get("client_host") != client:
        checks.append(("client_host", e.get("client_host"), client))
    target = out.get("aws.elb.backend.ip")
    target = None if target is None else f"{target}:{out.get('aws.elb.backend.port')}"
    if e.get("target_host") != target:
        checks.append(("target_host", e.get("target_host"), target))
    if e.get("request_protocol") != (None if "http.version" not in out else "HTTP/" + out["http.version"]):
        checks.append(("request_protocol", e.get("request_protocol"), out.get("http.version")))
    return checks


EXPECTED_DATASET = {
    "apache_common": ("apache.access", "nginx.access"), "apache_combined": ("apache.access", "nginx.access"),
    "apache_error": ("apache.error",), "nginx_combined": ("nginx.access", "apache.access"),
    "nginx_main": ("nginx.access",), "nginx_ingress_upstreaminfo": ("nginx.access",),
    "nginx_access": ("nginx.access", "apache.access"), "nginx_error": ("nginx.error",), "redis": ("redis.log",),
    "json": ("json",), "logfmt": ("logfmt",), "key_value": ("logfmt",), "klog": ("klog",), "glog": ("klog",),
    "linux_auth_syslog": ("syslog.rfc3164",), "aws_alb": ("aws.elb",),
}


def evaluate_apps() -> dict[str, dict[str, Score]]:
    """Per format: valid rows with every checked field right; invalid rows not
    silently accepted (unknown dataset or a parse_error)."""
    res: dict[str, dict[str, Score]] = {}
    for f in sorted((eval_dir() / "apps").glob("*.jsonl")):
        if f.name.startswith("multiline"):
            continue
        for r in rows(f):
            fmt: str = r.get("format") or ""
            args = (r.get("parser") or {}).get("args") or {}
            if fmt == "key_value" and args or (fmt == "json" and args):
                continue  # custom delimiters / max_depth options we do not implement
            sc = res.setdefault(fmt, {"valid": Score(), "invalid": Score()})
            out = parsers.parse(raw_bytes(r), tz=UTC)
            ds = out.get("event.dataset")
            if r["valid"]:
                errs = [] if ds in EXPECTED_DATASET.get(fmt, ()) else [f"dataset {ds}"]
                if not errs:
                    errs = _check_app(fmt, r["expect"], out)
                sc["valid"].add(not errs, f"{r['case']}: {errs} line={r['line'][:100]!r}")
            else:
                ok = ds not in EXPECTED_DATASET.get(fmt, ()) or "logship.parse_error" in out
                sc["invalid"].add(ok, f"{r['case']}: accepted as {ds}")
    return res


def evaluate_multiline() -> Score:
    s = Score()
    for r in rows(eval_dir() / "apps" / "multiline_stacktraces.jsonl"):
        j = MultilineJoiner()
        got = []
        for i, line in enumerate(r["lines"]):
            got += [e.text for e in j.feed(line, i * 0.001)]
        got += [e.text for e in j.flush()]
        want = [x[:-1] if x.endswith("\n") else x for x in r["expect"]["records"]]
        s.add(got == want, r["case"])
    return s


# ---------------------------------------------------------------- loghub

def _ms(frac: str) -> int:
    return int((frac + "000")[:3])


def _gt_time(system: str, g: dict) -> tuple:
    """Ground truth (year|None, month, day, h, m, s, millis|None)."""
    if system == "Android":
        mo, d = g["Date"].split("-")
        hms, ms = g["Time"].split(".")
        return (None, int(mo), int(d), *map(int, hms.split(":")), int(ms))
    if system == "Apache":
        t = datetime.strptime(g["Time"], "%a %b %d %H:%M:%S %Y")
        return (t.year, t.month, t.day, t.hour, t.minute, t.second, None)
    if system == "HDFS":
        d, t = g["Date"].zfill(6), g["Time"].zfill(6)
        return (2000 + int(d[:2]), int(d[2:4]), int(d[4:]), int(t[:2]), int(t[2:4]), int(t[4:]), None)
    if system in ("Hadoop", "Zookeeper"):
        y, mo, d = map(int, g["Date"].split("-"))
        hms, ms = g["Time"].split(",")
        return (y, mo, d, *map(int, hms.split(":")), int(ms))
    if system in ("Linux", "OpenSSH", "Mac"):
        mon = g["Date"] if system == "OpenSSH" else g["Month"]
        day = g["Day"] if system == "OpenSSH" else g["Date"]
        mo = datetime.strptime(mon, "%b").month
        return (None, mo, int(day), *map(int, g["Time"].split(":")), None)
    if system == "Spark":
        y, mo, d = map(int, g["Date"].split("/"))
        return (2000 + y, mo, d, *map(int, g["Time"].split(":")), None)
    return _gt_time_extra(system, g)


def _gt_time_extra(system: str, g: dict) -> tuple:
    """The loghub systems that are not in ../shared/eval (LOGSHIP_EXTRA_LOGHUB)."""
    if system == "BGL":  # 2005-06-03-15.42.50.363779
        d, t = g["Time"][:10], g["Time"][11:]
        h, mi, s, frac = t.split(".")
        return (*map(int, d.split("-")), int(h), int(mi), int(s), _ms(frac))
    if system == "HPC":  # epoch seconds
        t = datetime.fromtimestamp(int(g["Time"]), UTC)
        return (t.year, t.month, t.day, t.hour, t.minute, t.second, None)
    if system == "HealthApp":  # 20171223-22:15:29:606; every field unpadded ("0:0:5:7"), milliseconds too
        d, t = g["Time"].split("-")
        h, mi, s, ms = t.split(":")
        return (int(d[:4]), int(d[4:6]), int(d[6:]), int(h), int(mi), int(s), int(ms))
    if system == "OpenStack":
        hms, _, frac = g["Time"].partition(".")
        return (*map(int, g["Date"].split("-")), *map(int, hms.split(":")), _ms(frac) if frac else None)
    if system == "Proxifier":  # 10.30 16:49:06
        md, t = g["Time"].split(" ")
        mo, d = md.split(".")
        return (None, int(mo), int(d), *map(int, t.split(":")), None)
    if system == "Thunderbird":
        mo = datetime.strptime(g["Month"], "%b").month
        return (int(g["Date"][:4]), mo, int(g["Day"]), *map(int, g["Time"].split(":")), None)
    if system == "Windows":
        return (*map(int, g["Date"].split("-")), *map(int, g["Time"].split(":")), None)
    raise KeyError(system)


def _got_time(ts: datetime | None, want: tuple) -> bool:
    if ts is None:
        return False
    got = (ts.year if want[0] is not None else None, ts.month, ts.day, ts.hour, ts.minute, ts.second,
           ts.microsecond // 1000 if want[6] is not None else None)
    return got == want


LOGHUB_SYSTEMS = ("Android", "Apache", "HDFS", "Hadoop", "Linux", "OpenSSH", "Spark", "Zookeeper")
# Loghub's other systems: not in ../shared/eval; read from LOGSHIP_EXTRA_LOGHUB (a checkout
# or copy of github.com/logpai/loghub, outside this repository) when it is set.
EXTRA_SYSTEMS = ("BGL", "HPC", "HealthApp", "Mac", "OpenStack", "Proxifier", "Thunderbird", "Windows")
_NO_LEVEL = ("Linux", "OpenSSH", "HPC", "HealthApp", "Mac", "Proxifier", "Thunderbird")  # no Level column


def extra_dir() -> Path | None:
    env = os.environ.get("LOGSHIP_EXTRA_LOGHUB")
    return Path(env) if env else None


def evaluate_loghub(systems: tuple[str, ...] = LOGHUB_SYSTEMS, root: Path | None = None) -> dict[str, dict[str, Score]]:
    res: dict[str, dict[str, Score]] = {}
    ref = datetime(2020, 1, 1, tzinfo=UTC)
    root = root or eval_dir() / "loghub"
    for system in systems:
        base = root / system
        if not (base / f"{system}_2k.log").is_file():
            continue
        with (base / f"{system}_2k.log").open("rb") as f:
            lines = f.read().split(b"\n")
        with (base / f"{system}_2k.log_structured.csv").open(encoding="utf-8", newline="") as f:
            truth = list(csv.DictReader(f))
        sc = {k: Score() for k in ("timestamp", "level", "message", "all")}
        has_level = system not in _NO_LEVEL  # (Linux's "Level" column holds the host name)
        for line, g in zip(lines, truth, strict=False):
            out = parsers.parse(line, source_time=ref, tz=UTC)
            t_ok = _got_time(out.get("@timestamp") if out.get("@timestamp") != ref else None, _gt_time(system, g))
            m_ok = out.get("message", "").strip() == g["Content"].strip()
            l_ok = (levels.normalize(g["Level"]) == out.get("log.level")) if has_level else True
            sc["timestamp"].add(t_ok, f"{line[:90]!r} -> {out.get('@timestamp')}")
            sc["message"].add(m_ok, f"{line[:90]!r} -> {out.get('message', '')[:60]!r} want {g['Content'][:60]!r}")
            if has_level:
                sc["level"].add(l_ok, f"{line[:90]!r} -> {out.get('log.level')} want {g['Level']}")
            sc["all"].add(t_ok and m_ok and l_ok)
        res[system] = sc
    return res


def report() -> dict:
    """Everything, as plain numbers (shares in %)."""
    r5424 = evaluate_rfc5424()
    result: dict = {
        "rfc5424": {k: round(100 * v.share, 2) for k, v in r5424.items()},
        "rfc5424_counts": {k: [v.ok, v.total] for k, v in r5424.items()},
        "rfc3164": round(100 * evaluate_rfc3164().share, 2),
        "multiline": round(100 * evaluate_multiline().share, 2),
        "apps": {},
        "loghub": {},
    }
    for fmt, sc in evaluate_apps().items():
        result["apps"][fmt] = {k: [v.ok, v.total] for k, v in sc.items()}
    for system, sc in evaluate_loghub().items():
        result["loghub"][system] = {k: (round(100 * v.share, 2) if v.total else None) for k, v in sc.items()}
    extra = extra_dir()
    if extra is not None:
        result["loghub_extra"] = {
            system: {k: (round(100 * v.share, 2) if v.total else None) for k, v in sc.items()}
            for system, sc in evaluate_loghub(EXTRA_SYSTEMS, extra).items()}
    integrations = integrations_dir()
    if integrations is not None:
        result["integrations"] = integrations_report(integrations)
    return result


# ---------------------------------------------------------------- elastic/integrations pipeline tests

# Packages whose pipeline tests are plain text lines a container could write (server/app logs),
# read from LOGSHIP_EXTRA_INTEGRATIONS (a checkout or copy of github.com/elastic/integrations,
# outside this repository).  Network-device syslog and JSON-only cloud APIs are left out.
INTEGRATION_PACKAGES = (
    "activemq", "apache", "apache_tomcat", "cassandra", "ceph", "coredns", "couchdb", "elasticsearch", "etcd",
    "haproxy", "iis", "kafka", "kibana", "logstash", "mongodb", "mysql", "nats", "nginx", "nginx_ingress_controller",
    "postgresql", "rabbitmq", "redis", "squid", "tomcat", "traefik", "zookeeper")


def integrations_dir() -> Path | None:
    env = os.environ.get("LOGSHIP_EXTRA_INTEGRATIONS")
    return Path(env) if env else None


def _test_config(log: Path) -> dict:
    """The test's own ``<log>-config.yml``, else the folder's ``test-common-config.yml``."""
    import yaml

    for p in (log.with_name(log.name + "-config.yml"), log.with_name("test-common-config.yml")):
        if p.is_file():
            return yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    return {}


def _events(text: str, cfg: dict) -> list[str]:
    """The test runner's events: one a line, or lines joined by ``multiline.first_line_pattern``
    (a line that does not match it continues the event before)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    pattern = (cfg.get("multiline") or {}).get("first_line_pattern")
    if not pattern:
        return lines
    first = re.compile(pattern)
    events: list[str] = []
    for line in lines:
        if events and not first.search(line):
            events[-1] += "\n" + line
        else:
            events.append(line)
    return events


def _config_tz(fields: dict) -> tzinfo:
    """The zone a test config gives stamps without one: ``event.timezone`` ("GMT+2", "+0200",
    "Europe/Paris") or ``_conf.tz_offset``; UTC otherwise."""
    name = str(fields.get("event.timezone") or (fields.get("_conf") or {}).get("tz_offset") or "UTC")
    m = re.fullmatch(r"(?:GMT|UTC)?([+-])(\d{1,2}):?(\d{2})?", name)
    if m:
        mins = int(m[2]) * 60 + int(m[3] or 0)
        return timezone(timedelta(minutes=mins if m[1] == "+" else -mins))
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return UTC


def _dig(doc: dict, key: str):
    """A field of an expected document, nested (``{"log": {"level": ..}}``) or dotted."""
    if key in doc:
        return doc[key]
    head, _, rest = key.partition(".")
    sub = doc.get(head)
    return _dig(sub, rest) if rest and isinstance(sub, dict) else None


def _stamp_right(got: datetime | None, want: str, event: str) -> bool:
    """Same instant to the millisecond; a stamp whose line states no year is judged without it
    (the pipeline took the year it ran in)."""
    if got is None:
        return False
    w = instant(want)
    if str(w.year) not in event:
        try:
            got = got.replace(year=w.year)
        except ValueError:  # Feb 29
            return False
    return int(got.timestamp() * 1000) == int(w.timestamp() * 1000)


def evaluate_integrations(root: Path) -> dict[str, dict[str, Score]]:
    """Per package/data stream: ``lines``; ``timestamp``, ``level`` (expected word known to
    levels.normalize), ``message`` where the expected document has one; ``level_unmapped``
    counts expected level words levels.normalize does not know (not scored)."""
    res: dict[str, dict[str, Score]] = {}
    for exp in sorted(root.glob("packages/*/data_stream/*/_dev/test/pipeline/test-*.log-expected.json")):
        pkg, ds = exp.parts[-7], exp.parts[-5]
        log = exp.with_name(exp.name[: -len("-expected.json")])
        if pkg not in INTEGRATION_PACKAGES or not log.is_file():
            continue
        cfg = _test_config(log)
        fields = cfg.get("fields") or {}
        tz = _config_tz(fields)
        ref = instant(fields["@timestamp"]) if "@timestamp" in fields else None
        docs = json.loads(exp.read_text(encoding="utf-8"))["expected"]
        events = _events(log.read_bytes().decode("utf-8", "replace"), cfg)
        sc = res.setdefault(f"{pkg}/{ds}", {k: Score() for k in ("lines", "timestamp", "level", "message",
                                                                 "level_unmapped", "files_skipped")})
        if len(events) != len(docs):  # the runner's grouping is not what we rebuilt: say so, score nothing
            sc["files_skipped"].add(False, f"{log.name}: {len(events)} events, {len(docs)} documents")
            continue
        for ev, doc in zip(events, docs, strict=True):
            out = parsers.parse(ev.encode("utf-8"), tz=tz, source_time=ref)
            sc["lines"].add(True)
            show = f"{log.name}: {ev[:100]!r}"
            if "@timestamp" in doc:
                sc["timestamp"].add(_stamp_right(out.get("@timestamp"), doc["@timestamp"], ev),
                                    f"{show} -> {out.get('@timestamp')} want {doc['@timestamp']}")
            word = _dig(doc, "log.level")
            if isinstance(word, str):
                want = levels.normalize(word)
                if want is None:
                    sc["level_unmapped"].add(True, word)
                else:
                    sc["level"].add(out.get("log.level") == want, f"{show} -> {out.get('log.level')} want {word}")
            msg = doc.get("message")
            if isinstance(msg, str):
                sc["message"].add(as_text(out.get("message")).strip() == as_text(msg).strip(),
                                  f"{show} -> {out.get('message', '')[:80]!r} want {msg[:80]!r}")
    return res


def integrations_report(root: Path) -> dict:
    """Shares in % per package/data stream, plus line-weighted and package-averaged totals."""
    res = evaluate_integrations(root)
    rows: dict[str, dict] = {}
    for key, sc in res.items():
        row: dict = {"lines": sc["lines"].total, "files_skipped": sc["files_skipped"].total,
                     "level_unmapped": sc["level_unmapped"].total}
        for k in ("timestamp", "level", "message"):
            row[k] = round(100 * sc[k].share, 2) if sc[k].total else None
            row[k + "_n"] = sc[k].total
        rows[key] = row
    totals: dict = {}
    for k in ("timestamp", "level", "message"):
        ok = sum(sc[k].ok for sc in res.values())
        tot = sum(sc[k].total for sc in res.values())
        per_pkg: dict[str, list[int]] = {}  # package -> [ok, total] over its data streams
        for key, sc in res.items():
            acc = per_pkg.setdefault(key.split("/")[0], [0, 0])
            acc[0] += sc[k].ok
            acc[1] += sc[k].total
        shares = [o / t for o, t in per_pkg.values() if t]
        totals[k] = {"line_weighted": round(100 * ok / tot, 2) if tot else None,
                     "package_averaged": round(100 * sum(shares) / len(shares), 2) if shares else None}
    totals["lines"] = sum(sc["lines"].total for sc in res.values())
    return {"streams": rows, "total": totals}
