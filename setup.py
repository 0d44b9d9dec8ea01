"""The C speed-ups (see README "Why these libraries"): built at install when a C compiler and
the Python headers are there; without them the install still succeeds and the same code
paths run in Python (optional=True). And the Kibana saved objects: kibana/*.ndjson stays at the
top of the repository, an installed package carries a copy as shipper/cli/kibana_objects/.
Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

KIBANA = Path(__file__).resolve().parent / "kibana"


class BuildPyWithKibanaObjects(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads kibana/ in the checkout
        target = Path(self.build_lib) / "shipper" / "cli" / "kibana_objects"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(KIBANA.glob("*.ndjson")):
            shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildPyWithKibanaObjects}, ext_modules=[
    Extension("parsers._keywords", ["parsers/_keywords.c"], optional=True, extra_compile_args=["-O2"]),
    Extension("parsers._stamps", ["parsers/_stamps.c"], optional=True, extra_compile_args=["-O2"]),
    Extension("shipper.sources.docker._frames", ["shipper/sources/docker/_frames.c"], optional=True,
              extra_compile_args=["-O2"]),
])
