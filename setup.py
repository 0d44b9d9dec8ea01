"""The C speed-ups (see README "Why these libraries"): built at install when a C compiler and
the Python headers are there; without them the install still succeeds and the same code
paths run in Python (optional=True). Everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("parsers._keywords", ["parsers/_keywords.c"], optional=True, extra_compile_args=["-O2"]),
    Extension("shipper.sources.docker._frames", ["shipper/sources/docker/_frames.c"], optional=True,
              extra_compile_args=["-O2"]),
])
