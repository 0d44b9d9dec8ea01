"""Configuration: `LOGSHIP_*` environment variables over an optional TOML file over defaults.

Every setting is a field of one of the section dataclasses below; its environment
name is ``LOGSHIP_<SECTION PREFIX><FIELD>`` (upper case) and its file key is
``[section] field``. Adding a setting is adding a field with a default and a ``doc``:
the loader, the README table (``logship config --markdown``) and the validation all
follow from the declaration.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from shipper.core.masking import mask_credentials


class ConfigError(ValueError):
    """A setting has a bad value; the message names the variable and what it expects."""


def setting(default: Any, doc: str, *, secret: bool = False, choices: tuple[str, ...] = (), minimum: float = 0) -> Any:
    """A setting; numbers below `minimum` (0 unless said) are refused with the variable's name."""
    return field(default=default, metadata={"doc": doc, "secret": secret, "choices": choices, "minimum": minimum})


def setting_factory(factory: Any, doc: str) -> Any:
    return field(default_factory=factory, metadata={"doc": doc, "secret": False, "choices": (), "minimum": 0})


@dataclass(frozen=True, slots=True)
class DockerSettings:
    host: str = setting("unix:///var/run/docker.sock", "Docker engine API endpoint (unix socket).")
    include: tuple[str, ...] = setting((), "Only ship containers whose name matches one of these globs (comma-separated; empty = all).")
    exclude: tuple[str, ...] = setting((), "Never ship containers whose name matches one of these globs (comma-separated).")
    exclude_label: str = setting("", "logspout-style opt-out label: `key` or `key:value`; containers carrying it are not shipped.")
    max_line_bytes: int = setting(1 << 20, "Docker's 16 KiB partial lines are merged up to this size; longer lines are cut and flagged `logship.truncated`.", minimum=1)
    reconnect_max_s: float = setting(30.0, "Longest backoff between reconnects to a vanished Docker socket.")
    include_image: tuple[str, ...] = setting((), "Only ship containers whose image name matches one of these globs (comma-separated; empty = all).")
    exclude_image: tuple[str, ...] = setting((), "Never ship containers whose image name matches one of these globs (comma-separated).")
    include_labels: tuple[str, ...] = setting((), "Only ship containers carrying one of these labels: `key` or `key=value-glob` (comma-separated; empty = all).")
    exclude_labels: tuple[str, ...] = setting((), "Never ship containers carrying one of these labels: `key` or `key=value-glob` (comma-separated).")
    labels: tuple[str, ...] = setting(("com.docker.compose.project", "com.docker.compose.service"), "Container label keys (or globs) copied into `container.labels.<key, dots as _>`.")
    checkpoint_interval_s: float = setting(1.0, "Checkpoints (last delivered Docker timestamp per container) are written at most this often, and at shutdown.")
    read_files: str = setting("auto", "`auto`: a container on the json-file log driver whose files are readable here is read from its files (dockerd then does not stream it; same lines, ids and checkpoints); others, and `never`, through the Docker API.", choices=("auto", "never"))
    files_root: str = setting("", "Where `<id>/<id>-json.log` files are found: the daemon's `<data-root>/containers` as mounted here (read-only is enough); empty = the `LogPath` the daemon reports.")
    resume_overlap_s: float = setting(1.0, "On restart a container is re-read from its checkpoint minus this much (stdout/stderr clocks may interleave); the overlap is answered 409, never duplicated.")


@dataclass(frozen=True, slots=True)
class ElasticsearchSettings:
    url: tuple[str, ...] = setting(("http://127.0.0.1:9200",), "Elasticsearch URL(s), comma-separated; requests go round-robin to those that answer.")
    username: str = setting("", "Basic-auth user name.")
    password: str = setting("", "Basic-auth password.", secret=True)
    api_key: str = setting("", "API key (the base64 `id:key` form), instead of basic auth.", secret=True)
    api_key_file: str = setting("", "Read the API key from this file at start (what `logship setup --api-key-file` writes); overrides LOGSHIP_ES_API_KEY.")
    ca_file: str = setting("", "CA certificate file (PEM) to verify the server's TLS certificate.")
    verify_certs: bool = setting(True, "Verify TLS certificates (never turn off outside a lab).")
    index_prefix: str = setting("logship", "Index name prefix: log lines go to `<prefix>-YYYY.MM.DD`.")
    bulk_max_docs: int = setting(5000, "A bulk request is sent when it holds this many documents ...", minimum=1)
    bulk_max_bytes: int = setting(5 << 20, "... or this many bytes ...", minimum=1)
    flush_interval_s: float = setting(1.0, "... or when its oldest document has waited this long (seconds).")
    linger_s: float = setting(0.05, "... or, while a request slot is free, when its oldest document has waited this long (low latency when ES keeps up; full bulks when it does not).")
    bulk_target_s: float = setting(0.1, "Bulks are sized to what Elasticsearch indexes in about this long (at most LOGSHIP_ES_BULK_MAX_DOCS): every line queued behind the bulks in flight waits for them, whatever its container, so shorter bulks mean less wait for a quiet container's line under a flood, longer ones fewer requests.", minimum=0.01)
    concurrency: int = setting(2, "Bulk requests in flight at once.", minimum=1)
    timeout_s: float = setting(30.0, "Timeout of one request to Elasticsearch (seconds).", minimum=0.1)
    shards: int = setting(1, "Primary shards of the log indices (index template).", minimum=1)
    replicas: int = setting(0, "Replicas of the log indices (index template); 0 suits one node.")
    refresh_interval: str = setting("1s", "Refresh interval of the log indices: how soon a line is searchable.")
    setup: bool = setting(True, "At start, create/update the index templates (idempotent; `logship setup` does the same).")
    retry_max_s: float = setting(30.0, "Longest backoff between retries of 429/5xx/unreachable bulk items (seconds, with jitter).")
    retention: str = setting("auto", "Who deletes expired daily indices: `ilm` (ILM policies attached through the index templates; fails when the cluster has no ILM), `shipper` (the shipper and `logship setup` delete them by the date in their name), `auto` (ILM when the cluster has it, else the shipper), `off` (kept forever).", choices=("auto", "ilm", "shipper", "off"))
    retention_days: int = setting(30, "Log line indices (`<prefix>-YYYY.MM.DD`) are deleted when older than this many days; 0 = kept forever.")
    deadletter_retention_days: int = setting(30, "Dead-letter indices are deleted when older than this many days; 0 = kept forever.")
    snapshot_retention_days: int = setting(7, "Snapshot indices are deleted when older than this many days; 0 = kept forever.")
    retention_check_s: float = setting(3600.0, "Without ILM: how often the shipper looks for expired indices (seconds).", minimum=1)


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    memory_limit_mb: int = setting(128, "Memory for lines in flight, in MiB (payload plus ~256 bytes per record): the Elasticsearch sink's bulks (2 x (LOGSHIP_ES_CONCURRENCY + 1) x LOGSHIP_ES_BULK_MAX_BYTES), one bulk's worth of encoded lines waiting for it, three eighths of a bulk for the express lane, and the rest for lines waiting to be parsed, shared fairly between containers (one over its share waits: its stream or log file is read when it is back under it). See README \"Memory and fairness\".", minimum=16)
    hostname: str = setting_factory(socket.gethostname, "`host.name` of every record (default: this host's name).")
    state_dir: Path = setting(Path("/var/lib/logship"), "Where checkpoints and the disk spool live; one shipper per state dir (a second one is refused).")
    log_level: str = setting("info", "The shipper's own log level.", choices=("debug", "info", "warning", "error"))
    timezone: str = setting("UTC", "Time zone for log timestamps that carry none (IANA name, e.g. Europe/Paris).")
    multiline: bool = setting(True, "Join stack traces, tracebacks, Go panics and indented continuation lines into one record.")
    multiline_timeout_s: float = setting(1.0, "A held line or trace is complete after this long without a continuation (seconds).")
    multiline_max_lines: int = setting(500, "A joined record is cut (and flagged `logship.truncated`) past this many lines.", minimum=1)
    ebpf: str = setting("auto", "eBPF source: `on` (fail if it cannot start), `off`, or `auto` (warn and go on without it).", choices=("auto", "on", "off"))


@dataclass(frozen=True, slots=True)
class SpoolSettings:
    enabled: bool = setting(True, "Spool to disk (`<state_dir>/spool`) when Elasticsearch is unreachable (a slow one is waited for: the sources pause).")
    after_s: float = setting(5.0, "Elasticsearch unreachable (or failing every retry) this long before batches go to the disk spool (seconds).")
    max_bytes: int = setting(1 << 30, "Size bound of the disk spool; when full the sink stops taking input and the sources pause.", minimum=1)
    segment_bytes: int = setting(64 << 20, "Size of one spool segment file.", minimum=1)
    max_ack_records: int = setting(1_000_000, "Spooled records remembered in memory (~200 bytes each, payload on disk) to acknowledge them after the replay; at this bound the input pauses like a full spool.", minimum=1)
    fsync: str = setting("segment", "When spool writes are fsynced: `always` (every batch), `segment` (when a segment is closed), `never`.", choices=("always", "segment", "never"))


@dataclass(frozen=True, slots=True)
class HttpSettings:
    addr: str = setting("127.0.0.1:8080", "`host:port` of the TCP HTTP server: /health and /metrics; the control routes (/logs, /snapshots/*) only with LOGSHIP_HTTP_TOKEN set; empty = no TCP server.")
    socket: str = setting("", "Unix socket of the control plane (every route; `logship tail` and `logship snapshot` use it): empty = `<state_dir>/control.sock`, `off` = none.")
    socket_group: str = setting("", "Group allowed to use the control socket (mode 0660); empty = its owner only (0600).")
    token: str = setting("", "Opens the control routes on TCP to requests carrying it (`Authorization: Bearer TOKEN`, or Basic auth with it as the password); compared in constant time. Empty = control routes on the unix socket only.", secret=True)
    allowed_hosts: tuple[str, ...] = setting(("localhost", "127.0.0.1", "::1"), "Host header names (port ignored) the TCP server answers; any other gets 421 (DNS rebinding). Add the name a browser uses for LOGSHIP_KIBANA_SHIPPER_URL.")
    logs_queue_lines: int = setting(1000, "Lines buffered per /logs subscriber; a slower reader loses lines (counted), never the pipeline.", minimum=1)
    logs_max_subscribers: int = setting(16, "Readers of /logs at once; one more is answered 503 (counted).", minimum=0)


@dataclass(frozen=True, slots=True)
class KibanaSettings:
    url: str = setting("", "Kibana URL for `logship setup` (saved-objects import) and `logship check`; empty = skip Kibana.")
    username: str = setting("", "Kibana basic-auth user (default: the Elasticsearch user).")
    password: str = setting("", "Kibana basic-auth password (default: the Elasticsearch password).", secret=True)
    shipper_url: str = setting("http://127.0.0.1:8080", "Base URL of the shipper's HTTP server as a browser reaches it: the `logship.snapshot.id` links in Kibana point there.")
    setup_timeout_s: float = setting(300.0, "How long `logship setup` waits for Kibana to become available (seconds).")
    system_password: str = setting("", "When set, `logship setup` first sets the password of Elasticsearch's built-in `kibana_system` user (security API, as the ES user) so Kibana can log in; empty = leave it.", secret=True)


@dataclass(frozen=True, slots=True)
class SnapshotSettings:
    enabled: bool = setting(True, "Syscall windows: a per-thread ring of recent I/O syscalls in the kernel, turned into a snapshot document when a log line matches a trigger (needs the eBPF source). Only containers in scope (opt-in: the label, LOGSHIP_SNAPSHOT_CONTAINERS, armed rules) keep rings; with none in scope the ring programs are detached and cost nothing.")
    scope_label: str = setting("logship.snapshots", "Containers carrying this label with value `true` are in snapshot scope (empty = no label opt-in).")
    containers: tuple[str, ...] = setting((), "These containers (name globs or id prefixes, comma-separated) are in snapshot scope too; empty = only those that opt in by label or armed rule.")
    ring_entries: int = setting(64, "Syscalls kept per thread (rounded up to a power of two). Kernel memory = ring_entries x (88 + max(128, data_bytes)) x max_threads bytes, plus 8 x pid_max for the scope map.", minimum=1)
    max_threads: int = setting(1024, "Threads with a ring at once; the least recently active thread's ring is reused beyond this.", minimum=1)
    data_bytes: int = setting(80, "Bytes of I/O data (read/write/send/recv family) kept per syscall (sysdig's snaplen default); paths and sockaddrs keep up to max(128, this).")
    window_before_ms: int = setting(1000, "A snapshot shows the writing thread's syscalls this long before the log line's write ...")
    window_after_ms: int = setting(1000, "... and this long after it (the thread is armed to stream them).")
    rate_per_minute: int = setting(10, "At most this many snapshots per container per minute (more are counted, not taken).")
    min_level: str = setting("error", "Log lines at this level or more severe trigger a snapshot (containers in scope only); `off` = no level trigger.", choices=("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug", "off"))
    message_regex: str = setting("", "Log lines whose message matches this regex also trigger a snapshot (RE2 syntax, linear time; at most 512 characters).")
    capture_data: bool = setting(True, "Keep the first data_bytes of I/O data; false compiles the copy out: no payload byte is kept (paths and addresses still are).")
    redact: bool = setting(True, "Scrub secrets from data excerpts, per fd stream: secret key names, Authorization/Cookie headers, token shapes (JWT, PEM, URI userinfo, cloud and VCS tokens) and protocols (PostgreSQL, Redis, MySQL auth, SMTP/IMAP/POP3 AUTH).")
    redact_patterns: tuple[str, ...] = setting((), "Extra regexes (RE2) whose matches are scrubbed from data excerpts (comma-separated).")
    arming: bool = setting(False, "Allow adding and removing trigger rules at run time (POST /snapshots/arm, DELETE /snapshots/rules/N, `logship snapshot --arm`); off = those answer 403.")


@dataclass(frozen=True, slots=True)
class EbpfSettings:
    capture_bytes: int = setting(32768, "Bytes of each write/send copied by the eBPF probe (rounded up to a power of two, 64..65536; kernel memory: 3x this per CPU). Runtimes flush 8-32 KiB at a time, and a job that exits at once leaves no file to read back. The rest of a longer write to a log file is read back from the file; a longer /dev/log datagram, or a file write whose file cannot be read any more, is cut and flagged `logship.truncated`.", minimum=1)
    paths: tuple[str, ...] = setting(("*.log*", "*_log*", "/var/log/*"), "In-container paths whose writes are shipped: globs (`*` crosses `/`), comma-separated.")
    exclude_paths: tuple[str, ...] = setting(("*.gz", "*.log.[0-9]*", "*.log-[0-9]*"), "Paths never shipped even when they match `paths` (globs, comma-separated). The defaults are logrotate's old files: what a rotation copies into them was shipped when it was first written.")
    partial_timeout_s: float = setting(1.0, "A line written without its newline is shipped after this long without more bytes (seconds).")
    max_line_bytes: int = setting(65536, "Lines longer than this are cut and flagged `logship.truncated`; the rest up to the newline is counted as dropped.", minimum=1)
    ring_pages: int = setting(4096, "Size of the kernel ring buffer in 4 KiB pages (a power of two; 4096 = 16 MiB, about 1.5 s of 50k lines/s): a full ring drops events (counted in logship_ebpf_drops_total).", minimum=1)
    container_ring_bytes_per_s: int = setting(4 << 20, "Per-container budget of the kernel ring, in bytes of write events per second (a write costs its captured bytes + 80): a container over it has its excess write events dropped in the kernel and counted (logship_ebpf_dropped_total{container,reason=\"budget\"}), so one flooding container cannot fill the ring the others share. A log file's dropped writes are read back from the file (with its next write that gets through, or once it is idle for 1 s). 0 = no budget.")
    container_ring_burst_bytes: int = setting(4 << 20, "How far ahead of its budget a container may burst (bytes; default a quarter of the default ring).")


SECTIONS: dict[str, tuple[str, type[Any]]] = {
    # section name -> (environment prefix, settings class)
    "pipeline": ("", PipelineSettings),
    "docker": ("DOCKER_", DockerSettings),
    "elasticsearch": ("ES_", ElasticsearchSettings),
    "spool": ("SPOOL_", SpoolSettings),
    "http": ("HTTP_", HttpSettings),
    "kibana": ("KIBANA_", KibanaSettings),
    "snapshot": ("SNAPSHOT_", SnapshotSettings),
    "ebpf": ("EBPF_", EbpfSettings),
}


@dataclass(frozen=True, slots=True)
class Config:
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    docker: DockerSettings = field(default_factory=DockerSettings)
    elasticsearch: ElasticsearchSettings = field(default_factory=ElasticsearchSettings)
    spool: SpoolSettings = field(default_factory=SpoolSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    kibana: KibanaSettings = field(default_factory=KibanaSettings)
    snapshot: SnapshotSettings = field(default_factory=SnapshotSettings)
    ebpf: EbpfSettings = field(default_factory=EbpfSettings)

    def control_socket(self) -> Path | None:
        """Where the control plane's unix socket is (None: `LOGSHIP_HTTP_SOCKET=off`)."""
        if self.http.socket == "off":
            return None
        return Path(self.http.socket) if self.http.socket else self.pipeline.state_dir / "control.sock"

    def redacted(self) -> dict[str, dict[str, Any]]:
        """The settings as a dict with secrets masked, for logs and `logship config`: secret
        settings whole, and the password inside any URL (`LOGSHIP_ES_URL=https://u:pw@es`)."""
        out: dict[str, dict[str, Any]] = {}
        for name in SECTIONS:
            sect = getattr(self, name)
            out[name] = {
                f.name: ("***" if f.metadata["secret"] and getattr(sect, f.name) else _masked(getattr(sect, f.name)))
                for f in fields(sect)
            }
        return out


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_credentials(value)
    if isinstance(value, tuple):
        return tuple(mask_credentials(v) if isinstance(v, str) else v for v in value)
    return value


def env_name(section: str, field_name: str) -> str:
    return "LOGSHIP_" + SECTIONS[section][0] + field_name.upper()


def _convert(raw: Any, typ: Any, where: str, choices: tuple[str, ...], minimum: float = 0) -> Any:
    value = _convert_type(raw, typ, where, choices)
    if typ in (int, float) and value < minimum:
        raise ConfigError(f"{where}={raw!r}: expected a number of at least {minimum:g}")
    return value


def _convert_type(raw: Any, typ: Any, where: str, choices: tuple[str, ...]) -> Any:
    origin = typing.get_origin(typ)
    try:
        if typ is bool:
            if isinstance(raw, bool):
                return raw
            low = str(raw).strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if typ is int:
            if isinstance(raw, bool):
                raise ValueError("expected an integer")
            return int(raw)
        if typ is float:
            return float(raw)
        if typ is Path:
            return Path(raw)
        if origin is tuple:
            items = raw if isinstance(raw, (list, tuple)) else [s for s in str(raw).split(",")]
            return tuple(str(s).strip() for s in items if str(s).strip())
        if typ is str:
            value = str(raw)
            if choices and value not in choices:
                raise ValueError(f"expected one of {', '.join(choices)}")
            return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}={raw!r}: {exc}") from None
    raise ConfigError(f"{where}: unsupported setting type {typ!r}")  # a programming error, said clearly


def _section_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def load(env: Mapping[str, str] | None = None, file: str | os.PathLike[str] | None = None) -> Config:
    """Build the Config from env (default os.environ) and the TOML file named by
    `file` or `LOGSHIP_CONFIG`. Unknown `LOGSHIP_*` variables and file keys are errors:
    a typo must not silently fall back to a default."""
    env = os.environ if env is None else env
    file = file or env.get("LOGSHIP_CONFIG") or None
    from_file: dict[str, Any] = {}
    if file:
        try:
            from_file = tomllib.loads(Path(file).read_text())
        except FileNotFoundError:
            raise ConfigError(f"LOGSHIP_CONFIG={file}: no such file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"LOGSHIP_CONFIG={file}: not valid TOML: {exc}") from None
        unknown = set(from_file) - set(SECTIONS)
        if unknown:
            raise ConfigError(f"{file}: unknown section(s) {sorted(unknown)}; known: {sorted(SECTIONS)}")

    known_env = {"LOGSHIP_CONFIG"}
    sections: dict[str, Any] = {}
    for name, (_, cls) in SECTIONS.items():
        types_ = _section_types(cls)
        file_sect = from_file.get(name, {})
        if not isinstance(file_sect, dict):
            raise ConfigError(f"{file}: [{name}] must be a table")
        unknown = set(file_sect) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"{file}: unknown key(s) {sorted(unknown)} in [{name}]")
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            var = env_name(name, f.name)
            known_env.add(var)
            if var in env:
                kwargs[f.name] = _convert(env[var], types_[f.name], var, f.metadata["choices"], f.metadata["minimum"])
            elif f.name in file_sect:
                kwargs[f.name] = _convert(file_sect[f.name], types_[f.name], f"{file}: [{name}] {f.name}",
                                          f.metadata["choices"], f.metadata["minimum"])
        sections[name] = cls(**kwargs)
    unknown_env = sorted(k for k in env if k.startswith("LOGSHIP_") and k not in known_env and k not in _NOT_SETTINGS)
    if unknown_env:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown_env)}; `logship config --markdown` lists them all")
    return Config(**{**sections, "elasticsearch": _with_key_file(sections["elasticsearch"])})


def _with_key_file(es: ElasticsearchSettings) -> ElasticsearchSettings:
    """The key file read once here, so every Elasticsearch client sees a plain `api_key`."""
    if not es.api_key_file:
        return es
    try:
        key = Path(es.api_key_file).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"LOGSHIP_ES_API_KEY_FILE={es.api_key_file}: {exc.strerror} "
                          "(`logship setup --api-key-file` writes it)") from None
    if not key:
        raise ConfigError(f"LOGSHIP_ES_API_KEY_FILE={es.api_key_file}: the file is empty")
    return dataclasses.replace(es, api_key=key)


# Variables that belong to the tooling (provisioning, tests), not to the shipper.
_NOT_SETTINGS = frozenset({"LOGSHIP_CGROUP_ROOT_OVERRIDE", "LOGSHIP_ES_CLUSTER_PORTS", "LOGSHIP_ES_EXTRA_OPTS", "LOGSHIP_ES_HEAP", "LOGSHIP_ES_JAVA_HOME",
                          "LOGSHIP_ES_PORT", "LOGSHIP_ES_SERIES", "LOGSHIP_EXTRA_INTEGRATIONS", "LOGSHIP_EXTRA_LOGHUB", "LOGSHIP_EVAL_DIR",
                          "LOGSHIP_TEST_KEEP"})


def markdown_table() -> str:
    """Every setting with its default: the README's configuration table."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, (_, cls) in SECTIONS.items():
        for f in fields(cls):
            if f.default is not dataclasses.MISSING:
                d = f.default
                shown = ",".join(d) if isinstance(d, tuple) else ("true" if d is True else "false" if d is False else str(d))
                shown = shown or "(empty)"
            else:
                shown = "(this host's name)" if name == "pipeline" and f.name == "hostname" else "(computed)"
            rows.append(f"| `{env_name(name, f.name)}` | `{shown}` | {f.metadata['doc']} |")
    return "\n".join(rows)


__all__ = ["Config", "ConfigError", "load", "markdown_table", "env_name", "SECTIONS"]
