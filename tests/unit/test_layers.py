"""The tree is the pipeline, and its imports only point down (ARCHITECTURE.md "Modules"):

    core  <  config  <  sources, transforms, snapshots, sinks  <  runtime  <  cli

`shipper/core` imports nothing of logship beyond itself (stdlib and third-party only);
`parsers/` is a pure library that imports nothing of the shipper. Modules of the middle layer
may use each other (snapshots write through sinks/elasticsearch). Lazy imports inside
functions count too: they are arrows all the same."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RANK = {"core": 0, "config": 1, "sources": 2, "transforms": 2, "snapshots": 2, "sinks": 2, "runtime": 3, "cli": 4,
        "__main__": 5, "": 5}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports(path: Path) -> set[str]:
    """Every first-party module `path` imports, relative imports resolved."""
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            source = ".".join([*base, node.module] if node.module else base)
            # `from shipper import config`: the arrow goes to the submodule when it is one
            names = [f"{source}.{a.name}" if is_module(f"{source}.{a.name}") else source for a in node.names]
        else:
            continue
        out.update(n for n in names if n.split(".")[0] in ("shipper", "parsers"))
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_points_up_the_pipeline():
    wrong = []
    for path in sorted((ROOT / "shipper").rglob("*.py")):
        mod = module_name(path)
        for target in imports(path):
            if layer(mod) == "core" and not target.startswith("shipper.core"):
                wrong.append(f"{mod} -> {target} (core imports only shipper.core, stdlib and third-party)")
            elif target.startswith("shipper") and RANK[layer(target)] > RANK[layer(mod)]:
                wrong.append(f"{mod} -> {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_every_package_has_a_layer():
    assert {p.name for p in (ROOT / "shipper").iterdir() if p.is_dir() and (p / "__init__.py").exists()} \
        | {"config", "__main__", ""} == set(RANK)


def test_parsers_is_a_library_of_its_own():
    wrong = [f"{module_name(p)} -> {t}" for p in sorted((ROOT / "parsers").rglob("*.py"))
             for t in imports(p) if t.startswith("shipper")]
    assert not wrong, wrong
