#!/usr/bin/env bash
# Provisions everything logship needs on a fresh Debian 12 host, idempotently:
# Debian packages, dockerd, local test images, kernel headers for bcc,
# Elasticsearch, and the project virtualenv. Shared by `make run`, `make test`
# and `.ci/run`. One line of progress per step; a failure says what and how to fix.
#
# usage: scripts/provision.sh [all|packages|tracefs|headers|docker|images|debian-image|es-download|es-start|es-stop|es-url|venv|bench-tools]...
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="$ROOT/.cache"
STATE="$ROOT/.state"
# The supported series: 8.19 (the default) and 9.2 (LOGSHIP_ES_SERIES=9.2; needs Java 21+).
ES_MAJOR_MINOR=${LOGSHIP_ES_SERIES:-8.19}
# Newest patch of each series seen on Maven Central when this was written; newer ones are probed on first download.
case "$ES_MAJOR_MINOR" in 8.19) ES_FLOOR_PATCH=9 ;; 9.2) ES_FLOOR_PATCH=4 ;; *) ES_FLOOR_PATCH=0 ;; esac
case "$ES_MAJOR_MINOR" in 7.*|8.*) ES_JAVA_MIN=17 ;; *) ES_JAVA_MIN=21 ;; esac
ES_PORT=${LOGSHIP_ES_PORT:-9200}
ES_HEAP=${LOGSHIP_ES_HEAP:-1g}
# A multi-node cluster on loopback: the HTTP ports of all its nodes (transport = HTTP + 100), e.g. 9281,9282,9283;
# each node is started by its own `es-start` with LOGSHIP_ES_PORT set to one of them. Empty: single-node discovery.
ES_CLUSTER_PORTS=${LOGSHIP_ES_CLUSTER_PORTS:-}
ES_USER=logship-es
DOCKER_SOCK=/var/run/docker.sock
SPEEDUPS='import parsers._keywords, parsers._stamps, shipper.sources.docker._frames'  # built in place by `pip install -e .` (setup.py)
APT_PACKAGES=(docker.io busybox-static python3-bpfcc bpfcc-tools linux-headers-amd64 python3-venv
              debootstrap docker-compose nginx-light openssl unzip curl iproute2 procps maven
              gcc python3-dev openjdk-17-jdk-headless tmux)  # gcc, python3-dev: the C speed-ups (setup.py);
              # javac: the tests' Elasticsearch security shim (tests/integration/es_plugin); tmux: terminal tests

say() { printf 'provision: %s\n' "$*"; }
die() { printf 'provision: FAILED: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step_packages() {
  local extra=()
  if ! command -v java >/dev/null 2>&1; then extra+=(openjdk-17-jre-headless); fi
  apt_ensure "${APT_PACKAGES[@]}" "${extra[@]}"
}

# What only the benchmarks run (bench/snapshots.py drives nginx with wrk).
step_bench_tools() { apt_ensure wrk; }

apt_ensure() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then say "packages: all present"; return; fi
  say "packages: installing ${missing[*]}"
  as_root apt-get update -qq >/dev/null || die "apt-get update failed (network to Debian mirrors?)"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >"$CACHE/apt.log" 2>&1 \
    || die "apt-get install ${missing[*]} failed; see $CACHE/apt.log"
}

step_tracefs() {
  # bcc reads tracepoint formats from tracefs (and the debugfs path on older setups).
  if [ -d /sys/kernel/tracing/events/syscalls ] && [ -d /sys/kernel/debug/tracing/events ]; then
    say "tracefs: mounted"; return
  fi
  [ -d /sys/kernel/tracing/events ] || as_root mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
  grep -qs ' /sys/kernel/debug ' /proc/mounts || as_root mount -t debugfs nodev /sys/kernel/debug 2>/dev/null || true
  [ -d /sys/kernel/tracing/events/syscalls ] || die "tracefs: cannot mount /sys/kernel/tracing (needs root and CONFIG_FTRACE_SYSCALLS)"
  say "tracefs: mounted /sys/kernel/tracing and /sys/kernel/debug"
}

step_headers() {
  local k="/lib/modules/$(uname -r)"
  if [ -e "$k/build/include" ]; then say "headers: $k/build present"; return; fi
  local hdr common
  hdr=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -1)
  common=$(ls -d /usr/src/linux-headers-*-common 2>/dev/null | sort -V | tail -1)
  [ -n "$hdr" ] && [ -n "$common" ] || die "headers: no /usr/src/linux-headers-*-amd64; install linux-headers-amd64"
  as_root mkdir -p "$k"
  as_root ln -sfn "$hdr" "$k/build"
  as_root ln -sfn "$common" "$k/source"
  say "WARNING: no headers for kernel $(uname -r); bcc will compile against $(basename "$hdr") (struct layouts differ: the probe uses tracepoint args and helpers only)"
}

docker_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

step_docker() {
  if docker_up; then say "docker: daemon answers on $DOCKER_SOCK"; return; fi
  command -v dockerd >/dev/null || die "docker: no dockerd; install docker.io"
  mkdir -p "$STATE"
  say "docker: starting dockerd (vfs storage), log in $STATE/dockerd.log"
  as_root sh -c "nohup dockerd --storage-driver=vfs >'$STATE/dockerd.log' 2>&1 &"
  for _ in $(seq 1 60); do docker_up && { say "docker: daemon ready"; return; }; sleep 0.5; done
  die "docker: dockerd did not answer within 30 s; see $STATE/dockerd.log"
}

step_images() {
  if docker image inspect local/busybox:latest >/dev/null 2>&1; then say "images: local/busybox present"; return; fi
  local bb=/bin/busybox
  [ -x "$bb" ] || die "images: /bin/busybox missing; install busybox-static"
  local root; root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/var/log" "$root/etc" "$root/dev"
  cp "$bb" "$root/bin/busybox"
  for a in $("$bb" --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' - local/busybox:latest >/dev/null \
    || die "images: docker import of local/busybox failed"
  rm -rf "$root"
  say "images: built local/busybox from busybox-static"
}

# A Debian rootfs image, for tests that need python3 or a real server in a container.
step_debian_image() {
  if docker image inspect local/debian:bookworm >/dev/null 2>&1; then say "images: local/debian:bookworm present"; return; fi
  local dir="$CACHE/debian-rootfs"
  if [ ! -x "$dir/usr/bin/python3" ]; then
    say "images: debootstrap bookworm (minbase + python3), a few minutes once"
    as_root rm -rf "$dir"
    as_root debootstrap --variant=minbase --include=python3 bookworm "$dir" >"$CACHE/debootstrap.log" 2>&1 \
      || die "images: debootstrap failed; see $CACHE/debootstrap.log"
  fi
  as_root tar -C "$dir" -c . | docker import -c 'CMD ["/bin/bash"]' - local/debian:bookworm >/dev/null \
    || die "images: docker import of local/debian:bookworm failed"
  say "images: built local/debian:bookworm"
}

es_healthy() {
  curl -fsS --max-time 2 "$1/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1
}

es_version_installed() {  # newest unpacked version of the series, or nothing
  local d best=""
  for d in "$CACHE"/elasticsearch-"$ES_MAJOR_MINOR".*/; do [ -x "$d/bin/elasticsearch" ] && best="$best ${d%/}"; done
  for d in $best; do echo "${d##*/elasticsearch-}"; done | sort -V | tail -1
}

mvn_fetch() {  # version -> 0 when the zip is in the local Maven repository
  mvn -q dependency:get -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$1:zip" >"$CACHE/mvn-$1.log" 2>&1
}

step_es_download() {
  local have; have=$(es_version_installed)
  if [ -n "$have" ]; then say "elasticsearch: $have cached in .cache"; return; fi
  command -v mvn >/dev/null || die "elasticsearch: no mvn; install maven"
  mkdir -p "$CACHE"
  local v="" p=$ES_FLOOR_PATCH
  # Newest patch of the series that exists: probe upwards from the floor, then downwards if the floor is gone.
  while mvn_fetch "$ES_MAJOR_MINOR.$p"; do v="$ES_MAJOR_MINOR.$p"; p=$((p + 1)); done
  if [ -z "$v" ]; then
    for p in $(seq $((ES_FLOOR_PATCH - 1)) -1 0); do mvn_fetch "$ES_MAJOR_MINOR.$p" && { v="$ES_MAJOR_MINOR.$p"; break; }; done
  fi
  [ -n "$v" ] || die "elasticsearch: no $ES_MAJOR_MINOR.x integ-test zip from Maven Central; errors: $(tail -3 "$CACHE/mvn-$ES_MAJOR_MINOR.$ES_FLOOR_PATCH.log")"
  local zip="$HOME/.m2/repository/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$v/elasticsearch-$v.zip"
  unzip -q -o "$zip" -d "$CACHE" || die "elasticsearch: unzip $zip failed"
  say "elasticsearch: downloaded $v into .cache"
}

es_url() { echo "http://127.0.0.1:$ES_PORT"; }

java_major() {  # JAVA_HOME -> its feature version (17, 21, 25), or nothing
  [ -x "$1/bin/java" ] || return 0
  "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -1
}

es_java_home() {  # a JDK that runs this series: LOGSHIP_ES_JAVA_HOME, the `java` on PATH, then /usr/lib/jvm/* and /opt/*
  local c m cands=()
  [ -n "${LOGSHIP_ES_JAVA_HOME:-}" ] && cands+=("$LOGSHIP_ES_JAVA_HOME")
  command -v java >/dev/null 2>&1 && cands+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
  for c in /usr/lib/jvm/* /opt/* /opt/java/*; do [ -x "$c/bin/java" ] && cands+=("$c"); done
  for c in "${cands[@]}"; do
    m=$(java_major "$c")
    if [ -n "$m" ] && [ "$m" -ge "$ES_JAVA_MIN" ]; then echo "$c"; return 0; fi
  done
  return 1
}

# The nodes of a cluster start at once from one home: the first start of each would unzip it and create
# its config/elasticsearch.keystore, and concurrent ones race (a node dies on elasticsearch.keystore.tmp:
# NoSuchFileException / FileAlreadyExistsException). So the download and the keystore happen once, under a lock.
es_home_ready() {  # java_home
  local v home
  exec 9>"$CACHE/es-$ES_MAJOR_MINOR.lock"
  flock 9
  step_es_download
  v=$(es_version_installed); home="$CACHE/elasticsearch-$v"
  as_root chown -R "$ES_USER" "$home"
  if [ ! -f "$home/config/elasticsearch.keystore" ]; then
    as_root runuser -u "$ES_USER" -- env ES_JAVA_HOME="$1" "$home/bin/elasticsearch-keystore" create >/dev/null \
      || die "elasticsearch: elasticsearch-keystore create failed in $home/config"
  fi
  exec 9>&-
}

step_es_start() {
  if [ -n "${LOGSHIP_ES_URL:-}" ]; then
    es_healthy "$LOGSHIP_ES_URL" && { say "elasticsearch: using LOGSHIP_ES_URL=$LOGSHIP_ES_URL"; return; }
    die "elasticsearch: LOGSHIP_ES_URL=$LOGSHIP_ES_URL does not answer; unset it to use a local one"
  fi
  local url; url=$(es_url)
  if es_healthy "$url"; then say "elasticsearch: already healthy at $url"; return; fi
  local java_home
  java_home=$(es_java_home) || die "elasticsearch: $ES_MAJOR_MINOR needs Java $ES_JAVA_MIN+; none under PATH, /usr/lib/jvm or /opt (Debian 12 ships 17 only): install a JDK $ES_JAVA_MIN+ (e.g. Temurin) and set LOGSHIP_ES_JAVA_HOME"
  id -u "$ES_USER" >/dev/null 2>&1 || as_root useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
  es_home_ready "$java_home"
  local v home data
  v=$(es_version_installed); home="$CACHE/elasticsearch-$v"; data="$STATE/es-$ES_PORT"
  mkdir -p "$data/data" "$data/logs"
  as_root chown -R "$ES_USER" "$data"
  local discovery=(-Ediscovery.type=single-node) p seeds="" masters=""
  if [ -n "$ES_CLUSTER_PORTS" ]; then
    for p in ${ES_CLUSTER_PORTS//,/ }; do seeds="$seeds,127.0.0.1:$((p + 100))"; masters="$masters,node-$p"; done
    discovery=(-Ediscovery.seed_hosts="${seeds#,}" -Ecluster.initial_master_nodes="${masters#,}"
               -Ecluster.name="logship-${ES_CLUSTER_PORTS%%,*}" -Enode.name="node-$ES_PORT")
  fi
  say "elasticsearch: starting $v on $url ($ES_HEAP heap, Java $(java_major "$java_home"), data in ${data#"$ROOT"/})"
  as_root runuser -u "$ES_USER" -- env ES_JAVA_HOME="$java_home" ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP" "$home/bin/elasticsearch" -d -p "$data/pid" \
    "${discovery[@]}" -Enetwork.host=127.0.0.1 -Ehttp.port="$ES_PORT" -Etransport.port=$((ES_PORT + 100)) \
    -Epath.data="$data/data" -Epath.logs="$data/logs" -Ecluster.routing.allocation.disk.threshold_enabled=false \
    -Eaction.destructive_requires_name=false -Expack.security.enabled=false ${LOGSHIP_ES_EXTRA_OPTS:-} >"$data/start.log" 2>&1 \
    || die "elasticsearch: start failed; see ${data#"$ROOT"/}/start.log"
  for _ in $(seq 1 180); do
    es_healthy "$url" && { say "elasticsearch: healthy"; return; }
    kill -0 "$(cat "$data/pid" 2>/dev/null || echo 0)" 2>/dev/null || die "elasticsearch: exited while starting; see ${data#"$ROOT"/}/logs/elasticsearch.log"
    sleep 1
  done
  die "elasticsearch: not healthy after 180 s; see ${data#"$ROOT"/}/logs/"
}

step_es_stop() {
  [ -n "${LOGSHIP_ES_URL:-}" ] && return 0
  local pidf="$STATE/es-$ES_PORT/pid"
  [ -f "$pidf" ] || return 0
  local pid; pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    say "elasticsearch: stopped"
  fi
  rm -f "$pidf"
}

step_venv() {
  local venv="$ROOT/.venv" stamp="$ROOT/.venv/.logship-stamp" want
  want=$(cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT"/parsers/*.c "$ROOT"/shipper/sources/docker/*.c | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c "$SPEEDUPS" 2>/dev/null; then
    say "venv: up to date"; return
  fi
  [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv" \
    || die "venv: /usr/bin/python3 -m venv failed; install python3-venv"
  say "venv: installing the project with its test and bench extras"
  "$venv/bin/pip" install -q --disable-pip-version-check -e "$ROOT[test,bench]" >"$CACHE/pip.log" 2>&1 \
    || die "venv: pip install failed; see .cache/pip.log"
  "$venv/bin/python" -c 'import bcc' 2>/dev/null || die "venv: 'import bcc' fails; install python3-bpfcc"
  "$venv/bin/python" -c "$SPEEDUPS" 2>/dev/null || die "venv: the C speed-ups did not build (gcc, python3-dev?); see .cache/pip.log"
  echo "$want" >"$stamp"
}

mkdir -p "$CACHE" "$STATE"
[ $# -gt 0 ] || set -- all
for s in "$@"; do
  case "$s" in
    all) step_packages; step_tracefs; step_headers; step_docker; step_images; step_venv; step_es_start ;;
    packages) step_packages ;; tracefs) step_tracefs ;; headers) step_headers ;; docker) step_docker ;; images) step_images ;;
    debian-image) step_debian_image ;; venv) step_venv ;; bench-tools) step_bench_tools ;;
    es-download) step_es_download; echo "$CACHE/elasticsearch-$(es_version_installed)" ;;
    es-start) step_es_start ;; es-stop) step_es_stop ;; es-url) echo "${LOGSHIP_ES_URL:-$(es_url)}" ;;
    *) die "unknown step '$s'" ;;
  esac
done
