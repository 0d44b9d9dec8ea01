#!/bin/sh
# What the official image's entrypoint does with the environment docker-compose.yml sets:
# every variable named like a setting (lower case with a dot: discovery.type, xpack.security.enabled)
# becomes -E<name>=<value>; ELASTIC_PASSWORD seeds the keystore's bootstrap.password (the `elastic`
# user's password on a fresh cluster); ES_JAVA_OPTS is read by bin/elasticsearch itself.
set -eu
cd /usr/share/elasticsearch
settings=$(mktemp)
# From the process's own environment block: sh drops names with a dot from the environment it passes on.
tr '\0' '\n' </proc/$$/environ | grep -E '^[a-z0-9_]+(\.[a-z0-9_]+)+=' >"$settings" || true
set --
while IFS= read -r kv; do set -- "$@" "-E$kv"; done <"$settings"
rm -f "$settings"
if [ -n "${ELASTIC_PASSWORD:-}" ]; then
  [ -f config/elasticsearch.keystore ] || elasticsearch-keystore create >/dev/null
  if ! elasticsearch-keystore list | grep -qx bootstrap.password; then
    printf '%s' "$ELASTIC_PASSWORD" | elasticsearch-keystore add -x bootstrap.password
  fi
fi
# As the official image's elasticsearch.yml: listen on every interface of the container. No security
# auto-configuration (it would write TLS and cluster.initial_master_nodes into elasticsearch.yml; the
# official image's compose settings above already configure security explicitly).
exec elasticsearch -Enetwork.host=0.0.0.0 -Ecluster.name=docker-cluster \
  -Expack.security.autoconfiguration.enabled=false "$@"
