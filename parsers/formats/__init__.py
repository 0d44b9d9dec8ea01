"""Application log formats.  Each module exposes
``parse(line, source_time, tz) -> dict | None`` (None = not this format)."""
