"""Exit codes of every `logship` command."""

EXIT_OK = 0
EXIT_FAILURE = 1  # the command ran and found a problem (e.g. `check` with a failed check)
EXIT_CONFIG = 2  # bad configuration or usage
EXIT_UNAVAILABLE = 3  # a dependency (Docker, Elasticsearch, Kibana) cannot be reached
EXIT_REFUSED = 4  # a dependency answered but refused us: credentials, permissions, certificate
