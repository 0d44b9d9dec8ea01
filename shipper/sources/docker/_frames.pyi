from shipper.sources.docker.stream import Line

# Whole-line frames from `pos` on, as plain tuples equal to Line(...), and where decoding stopped.
def split(buf: bytes, pos: int, max_bytes: int, /) -> tuple[list[Line], int]: ...
