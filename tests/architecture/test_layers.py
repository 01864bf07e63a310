"""The house rules of docs/ARCHITECTURE.md, checked on the source tree.

``lint-imports`` (run by ``make lint``) enforces the layer contracts in
pyproject.toml; these tests keep the contracts themselves honest: every
top-level package or module is placed in a layer (a new one cannot slip past
the rules), the contracts pass, and only the dependency module reads
``app.state``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "parley"
NOT_CODE = {"static", "__pycache__"}


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _layered_names() -> set[str]:
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    assert isinstance(layers, list)
    return {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}


def _top_level() -> set[str]:
    names = set()
    for path in SRC.iterdir():
        if path.name.startswith(("_", ".")) or path.name in NOT_CODE:
            continue
        if path.is_dir() and (path / "__init__.py").exists():
            names.add(f"parley.{path.name}")
        elif path.suffix == ".py":
            names.add(f"parley.{path.stem}")
    return names


def test_every_top_level_package_is_in_a_layer() -> None:
    missing = sorted(_top_level() - _layered_names())
    assert not missing, (
        f"{missing} are in no layer of [tool.importlinter] in pyproject.toml: "
        "place each where it belongs (see docs/ARCHITECTURE.md)"
    )


def test_layers_name_only_what_exists() -> None:
    stale = sorted(_layered_names() - _top_level())
    assert not stale, f"layers name modules that do not exist: {stale}"


def test_the_import_contracts_pass() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_only_the_dependency_module_and_the_root_touch_app_state() -> None:
    allowed = {SRC / "http" / "deps.py", SRC / "api" / "app.py"}
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in SRC.rglob("*.py")
        if path not in allowed
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bapp\.state\b", line) and not line.lstrip().startswith("#")
    ]
    assert not offenders, f"reach services through parley.http.deps instead: {offenders}"


def test_features_are_named_only_by_the_composition_root() -> None:
    features = ("knowledge", "memory", "sandbox", "web_tools")
    pattern = re.compile(rf"^\s*(from|import) parley\.({'|'.join(features)})\.feature\b")
    offenders = [
        str(path.relative_to(ROOT))
        for path in SRC.rglob("*.py")
        if path != SRC / "api" / "app.py"
        and not any(path.is_relative_to(SRC / f) for f in features)
        and any(pattern.match(line) for line in path.read_text().splitlines())
    ]
    assert not offenders, f"only parley/api/app.py lists the features: {offenders}"
