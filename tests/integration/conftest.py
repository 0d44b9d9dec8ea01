"""Fixtures that start private infrastructure (a dockerd, an Elasticsearch of their own) for the tests that break it."""

from tests.integration.private_dockerd import private_dockerd
from tests.integration.private_es import es_busy, es_private

__all__ = ["es_busy", "es_private", "private_dockerd"]
