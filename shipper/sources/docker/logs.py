"""The one seam between the Docker source and where a container's log bytes come from:
"open the log of container X from time T (and follow it)". Two implementations give the
same lines with the same timestamps: the Docker API's log stream, or the json-file itself
(jsonfile.py) when the container logs to json-file and its files are readable here."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

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
                   running: Callable[[], Awaitable[bool]], held: BinaryIO | None = None) -> AsyncIterator[Opened]:
    """A decoder for the container's log and the chunks to feed it, from `since_ns` on
    (entries before it are left out); with `follow`, until the container stops. `held`: its
    json-file, already open (an auto-remove container's: its files go with it, mid-read,
    and only a file opened before the removal stays readable), is the path then."""
    if held is not None:
        path: Path | None = Path(held.name)  # as it was opened here
    elif settings.read_files == "auto" and not c.auto_remove:
        path = readable_log(c.log_driver, c.log_path, c.id, settings.files_root)
    else:
        path = None
    if path is not None:
        METRICS.count("logship_docker_streams_total", via="file")
        yield (JsonFileDecoder(settings.max_line_bytes, c.tty, since_ns),
               JsonFileStream(path, since_ns, follow, running, held).chunks())
        return
    METRICS.count("logship_docker_streams_total", via="api")
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
