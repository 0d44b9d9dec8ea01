"""The one seam between the Docker source and where a container's log bytes come from:
"open the log of container X from time T (and follow it)". Two implementations give the
same lines with the same timestamps: the Docker API's log stream, or the json-file itself
(jsonfile.py) when the container logs to json-file and its files are readable here."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from shipper.config import DockerSettings
from shipper.core.container import Container
from shipper.core.metrics import METRICS
from shipper.sources.docker.api import DockerAPI
from shipper.sources.docker.jsonfile import (
    JsonFileDecoder,
    JsonFileStream,
    readable_log,
)
from shipper.sources.docker.stream import StreamDecoder

log = logging.getLogger("logship.docker")

READ_CHUNK = 256 * 1024  # one read of the API's stream is at most this much; its lines go downstream as one batch

Opened = tuple[StreamDecoder, AsyncIterator[bytes]]


class StreamRefused(Exception):
    """The engine will not stream this container's logs (e.g. logging driver `none`)."""


@contextlib.asynccontextmanager
async def open_log(api: DockerAPI, settings: DockerSettings, c: Container, since_ns: int, follow: bool,
                   running: Callable[[], Awaitable[bool]]) -> AsyncIterator[Opened]:
    """A decoder for the container's log and the chunks to feed it, from `since_ns` on
    (entries before it are left out); with `follow`, until the container stops."""
    path = readable_log(c.log_driver, c.log_path, c.id, settings.files_root) \
        if settings.read_files == "auto" else None
    if path is not None:
        files = JsonFileStream(path, since_ns, follow, running)
        # Opened before it counts as opened: held open, it is read to its end even if the
        # container is removed meanwhile. Gone already: the API answers (409/404: removed).
        if files.open():
            METRICS.count("logship_docker_streams_total", via="file")
            log.debug("docker: reading %s (%s) from its json-file since %d (follow=%s)", c.name, c.id[:12],
                      since_ns, follow)
            try:
                yield JsonFileDecoder(settings.max_line_bytes, c.tty, since_ns), files.chunks()
            finally:
                files.close()
            return
    METRICS.count("logship_docker_streams_total", via="api")
    log.debug("docker: reading %s (%s) from the logs endpoint since %d (follow=%s)", c.name, c.id[:12], since_ns,
              follow)
    async with api.logs(c.id, since_ns=since_ns, follow=follow) as r:
        if r.status == 404:
            raise StreamRefused(c.id)  # removed meanwhile: the destroy event follows
        if r.status >= 400:
            METRICS.count("logship_docker_stream_refused_total")
            log.warning("docker: logs of %s: %s %s", c.name, r.status, (await r.text())[:300])
            raise StreamRefused(c.id)
        yield StreamDecoder(settings.max_line_bytes, c.tty), _response_chunks(r.content.read)


async def _response_chunks(read: Callable[[int], Awaitable[bytes]]) -> AsyncIterator[bytes]:
    while chunk := await read(READ_CHUNK):
        yield chunk
