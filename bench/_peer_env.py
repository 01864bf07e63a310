"""LiteLLM's own virtualenv (bench/.venvs/litellm), created on first use.

LiteLLM needs its own dependency set (openai<3, its own FastAPI...), so it
never shares Parley's venv. ``ensure_litellm()`` returns the ``litellm``
executable, or raises ``PeerUnavailable`` with the reason pip gave.

If the exact install fails because the registry lacks a pinned dependency
(on this machine: ``certifi>=2026.10.19``, newer than any published certifi,
and ``litellm-proxy-extras==0.4.113``), it retries with litellm itself pinned
(``--no-deps``) and its declared dependencies installed with each unavailable
pin relaxed. The same LiteLLM code is benchmarked; the table says so.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

LITELLM_VERSION = "1.109.1"
SPEC = f"litellm[proxy]=={LITELLM_VERSION}"
VENV = Path(__file__).resolve().parent / ".venvs" / "litellm"
NOTE_FILE = VENV / ".bench-install-note"

# Prints the dependencies of litellm (base + proxy extra) for this interpreter,
# with the certifi floor dropped; run with the litellm venv's python.
_DEPS_SCRIPT = """
import importlib.metadata as md
from packaging.requirements import Requirement
out = []
for raw in md.requires("litellm") or []:
    req = Requirement(raw)
    if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("", "proxy")):
        continue
    if req.name.lower() == "certifi":
        out.append("certifi")
        continue
    req.marker = None
    out.append(str(req))
print("\\n".join(out))
"""


_MISSING = re.compile(r"No matching distribution found for (\S+)")


class PeerUnavailable(RuntimeError):
    """LiteLLM could not be installed; the message says why."""


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(VENV / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200)


def _installed() -> bool:
    python = VENV / "bin" / "python"
    if not NOTE_FILE.exists() or not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0 and probe.stdout.strip() == LITELLM_VERSION


def _reason(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.startswith("ERROR")]
    return (lines[-1] if lines else proc.stderr.strip()[-300:]) or f"exit {proc.returncode}"


def install_note() -> str:
    return NOTE_FILE.read_text().strip() if NOTE_FILE.exists() else ""


def ensure_litellm(log: bool = True) -> Path:
    """The path of the ``litellm`` CLI, installing it first when needed."""
    if _installed():
        return VENV / "bin" / "litellm"
    if log:
        print(f"[litellm] installing {SPEC} into {VENV} (first run only)...", flush=True)
    if not (VENV / "bin" / "python").exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True)
        if made.returncode != 0:
            raise PeerUnavailable(f"venv creation failed: {made.stderr.decode()[-300:]}")
    first = _pip("install", SPEC)
    if first.returncode == 0:
        NOTE_FILE.write_text("")
        return VENV / "bin" / "litellm"
    reason = _reason(first)
    if _MISSING.search(reason) is None:  # only an unpublished pin is worth working around
        raise PeerUnavailable(f"pip install {SPEC} failed: {reason}")
    if log:
        print(f"[litellm] exact install failed ({reason}); retrying with unavailable pins relaxed")
    steps = [("install", "--no-deps", f"litellm=={LITELLM_VERSION}"), ("install", "packaging")]
    for step in steps:
        proc = _pip(*step)
        if proc.returncode != 0:
            raise PeerUnavailable(f"pip install {SPEC} failed: {reason}; fallback: {_reason(proc)}")
    deps = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", _DEPS_SCRIPT], capture_output=True, text=True
    )
    if deps.returncode != 0:
        raise PeerUnavailable(
            f"pip install {SPEC} failed: {reason}; fallback: {deps.stderr[-300:]}"
        )
    wanted = deps.stdout.split()
    relaxed: list[str] = []
    for _ in range(6):  # drop the pin of each requirement the registry cannot satisfy
        proc = _pip("install", *wanted)
        if proc.returncode == 0 and (VENV / "bin" / "litellm").exists():
            break
        missing = _MISSING.search(_reason(proc))
        if missing is None:
            raise PeerUnavailable(f"pip install {SPEC} failed: {reason}; fallback: {_reason(proc)}")
        name = re.split(r"[<>=!~;\[ ]", missing.group(1))[0]
        wanted = [name if re.split(r"[<>=!~;\[ ]", w)[0] == name else w for w in wanted]
        relaxed.append(missing.group(1))
    else:
        raise PeerUnavailable(f"pip install {SPEC} failed: {reason}; fallback gave up")
    relaxed_text = ", ".join(["certifi (floor)", *relaxed])
    NOTE_FILE.write_text(
        f"exact install failed ({reason}); installed with unavailable pins relaxed: " + relaxed_text
    )
    return VENV / "bin" / "litellm"


if __name__ == "__main__":
    try:
        print(ensure_litellm())
        print(install_note())
    except PeerUnavailable as exc:
        print(f"unavailable: {exc}")
