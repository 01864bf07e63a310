"""Where ``parley login`` keeps API keys: ``$XDG_CONFIG_HOME/parley/credentials.json``
(``~/.config/parley/credentials.json`` by default), one key per server URL, readable
by the user only (0600, in a 0700 directory). ``PARLEY_API_KEY`` in the environment
wins over the file."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["api_key_for", "credentials_path", "forget", "save_key"]


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "parley" / "credentials.json"


def _normal(url: str) -> str:
    return url.rstrip("/")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"servers": {}}
    if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
        return {"servers": {}}
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def api_key_for(url: str) -> str | None:
    """The key to use for ``url``: ``PARLEY_API_KEY``, else the one ``parley login`` saved."""
    env = os.environ.get("PARLEY_API_KEY")
    if env:
        return env.strip()
    entry = _read(credentials_path())["servers"].get(_normal(url))
    key = entry.get("api_key") if isinstance(entry, dict) else None
    return str(key) if key else None


def save_key(url: str, api_key: str, email: str, key_id: str) -> Path:
    path = credentials_path()
    data = _read(path)
    data["servers"][_normal(url)] = {"api_key": api_key, "email": email, "key_id": key_id}
    _write(path, data)
    return path


def forget(url: str) -> dict[str, Any] | None:
    """Remove the saved key of ``url``; the entry removed (to revoke it), if any."""
    path = credentials_path()
    data = _read(path)
    entry = data["servers"].pop(_normal(url), None)
    if entry is not None:
        _write(path, data)
    return entry if isinstance(entry, dict) else None
