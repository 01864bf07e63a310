"""Downloading GGUF models from Hugging Face into ``<data dir>/models``.

An admin picks a file (from ``model_catalog`` or any repo id and file name);
``ModelDownloads.start`` asks the server about it first, so the answers an admin
must act on come back at once: no such repo or file, not enough disk space,
already downloaded or downloading. The bytes then stream in a background task
to ``<file>.part`` beside a small ``<file>.json`` (repo, revision, size,
checksum) and the finished file is renamed into place only once its SHA-256
matches the one Hugging Face publishes.

Where the state lives: the progress of a running download is in this worker's
memory (polled by the admin page); everything else is on disk, so a page reload
or a restart finds an interrupted download as its ``.part`` file and sidecar
(status ``interrupted``) and ``resume`` continues it with an HTTP ``Range``
request. With several workers, the one that started a download reports its
progress; the others see the growing ``.part`` as interrupted.

Hugging Face's ``resolve`` URL answers a ``HEAD`` with a redirect to its CDN
and the file's SHA-256 in ``X-Linked-Etag`` (``ETag`` for a file served
directly); when neither is a SHA-256, the model API's ``lfs.sha256`` is tried.
A file whose checksum nobody publishes is kept but reported as unverified.
The endpoint is the admin's ``hf_endpoint`` setting, so it may be a mirror on
the local network; nothing a user sends chooses the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal
from urllib.parse import quote

import httpx2

from parley.config import Settings
from parley.errors import Conflict, Invalid, NotFound, Refused

log = logging.getLogger(__name__)

DownloadStatus = Literal["running", "verifying", "done", "interrupted", "failed"]

CHUNK = 1 << 20
RETRIES = 3  # reconnects (with Range) after a cut, before the download waits for Resume
RETRY_PAUSE_S = 1.0
SPARE_BYTES = 256 << 20  # kept free on the disk beyond the file itself
PROBE_TIMEOUT_S = 20.0
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}\.gguf$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_names(repo: str, file: str, revision: str) -> None:
    """Refuse names that could leave the models folder or the repo's URL path."""
    if not _REPO.match(repo) or ".." in repo:
        raise Invalid("Give the repo id as owner/name, e.g. Qwen/Qwen2.5-1.5B-Instruct-GGUF.")
    check_file(file)
    if not _REVISION.match(revision) or ".." in revision:
        raise Invalid("The revision must be a branch, tag or commit name such as 'main'.")


def check_file(file: str) -> None:
    if not _FILE.match(file) or ".." in file:
        raise Invalid(
            "Give the name of a .gguf file in the repo's top folder "
            "(letters, digits, '.', '-' and '_'), e.g. qwen2.5-1.5b-instruct-q4_k_m.gguf."
        )


def sha256_from_etag(value: str | None) -> str | None:
    """The SHA-256 in an ETag (``"<hex>"`` or ``W/"<hex>"``), or None for any other tag."""
    if not value:
        return None
    tag = value.strip().removeprefix("W/").strip('"').lower()
    return tag if _SHA256.match(tag) else None


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


@dataclass(slots=True)
class Download:
    """One model file: being downloaded, interrupted, or done."""

    file: str
    repo: str | None
    revision: str
    total: int | None
    done: int
    status: DownloadStatus
    sha256: str | None = None
    verified: bool = False
    error: str | None = None
    rate: float = 0.0  # bytes per second over the last few seconds
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    _samples: list[tuple[float, int]] = field(default_factory=list, repr=False)
    _last_at: float = field(default=0.0, repr=False)  # when the last bytes arrived

    def note_progress(self, done: int) -> None:
        now = self._last_at = time.monotonic()
        self.done = done
        if not self._samples or now - self._samples[-1][0] >= 0.25:  # a few per second
            self._samples.append((now, done))
            if len(self._samples) > 20:  # the last ~5 s
                del self._samples[0]
        first_at, first_done = self._samples[0]
        if now > first_at:
            self.rate = (done - first_done) / (now - first_at)

    def current_rate(self) -> float:
        """The rate, or 0 when no byte arrived for a few seconds (a stalled server)."""
        if self.status != "running" or not self._samples:
            return 0.0
        return self.rate if time.monotonic() - self._last_at < 3.0 else 0.0

    def sidecar(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "revision": self.revision,
            "total": self.total,
            "sha256": self.sha256,
            "verified": self.verified,
        }


@dataclass(frozen=True, slots=True)
class _Probe:
    total: int | None
    sha256: str | None


class ModelDownloads:
    """Downloads into ``<data dir>/models``; one at a time per file."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: Callable[[], httpx2.AsyncClient] | None = None,
    ) -> None:
        self.folder = settings.data_dir / "models"
        self.endpoint = settings.hf_endpoint.rstrip("/")
        self._client = client or _default_client
        self._running: dict[str, Download] = {}

    # paths ------------------------------------------------------------------

    def path(self, file: str) -> Path:
        check_file(file)
        return self.folder / file

    def _part(self, file: str) -> Path:
        return self.folder / f"{file}.part"

    def _meta(self, file: str) -> Path:
        return self.folder / f"{file}.json"

    def resolve_url(self, repo: str, file: str, revision: str) -> str:
        return f"{self.endpoint}/{repo}/resolve/{quote(revision, safe='')}/{quote(file)}"

    # what is there ------------------------------------------------------------

    def _read_meta(self, file: str) -> dict[str, Any]:
        try:
            data = json.loads(self._meta(file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _from_disk(self, file: str) -> Download | None:
        meta = self._read_meta(file)
        revision = str(meta.get("revision") or "main")
        repo = meta.get("repo") if isinstance(meta.get("repo"), str) else None
        total = meta.get("total") if isinstance(meta.get("total"), int) else None
        sha = meta.get("sha256") if isinstance(meta.get("sha256"), str) else None
        final, part = self.folder / file, self._part(file)
        if final.is_file():
            size = final.stat().st_size
            return Download(
                file, repo, revision, size, size, "done", sha, bool(meta.get("verified"))
            )
        if part.is_file() and repo:
            error = "Interrupted: Resume continues where it stopped."
            return Download(
                file, repo, revision, total, part.stat().st_size, "interrupted", sha, error=error
            )
        return None

    def get(self, file: str) -> Download | None:
        check_file(file)
        return self._running.get(file) or self._from_disk(file)

    def list(self) -> list[Download]:
        """Running downloads, then every model file and interrupted download on disk."""
        found = dict(self._running)
        if self.folder.is_dir():
            for entry in sorted(self.folder.iterdir()):
                name = entry.name.removesuffix(".part")
                if name in found or not _FILE.match(name):
                    continue
                item = self._from_disk(name)
                if item is not None:
                    found[name] = item
        return list(found.values())

    def free_bytes(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.folder).free

    # starting -----------------------------------------------------------------

    async def start(self, repo: str, file: str, revision: str = "main") -> Download:
        """Check the file with the server and the disk, then download it in the background.

        Raises ``Invalid`` (bad names, no such file), ``Conflict`` (already there
        or downloading) or ``Refused`` (``not_enough_space``, ``download_failed``).
        """
        check_names(repo, file, revision)
        current = self.get(file)
        if current is not None and current.status in ("running", "verifying"):
            raise Conflict(f"{file} is already downloading.", code="download_running")
        if current is not None and current.status == "done":
            raise Conflict(f"{file} is already downloaded.", code="download_exists")
        if current is not None and current.repo not in (None, repo):
            raise Conflict(
                f"An interrupted download of {file} from {current.repo} is waiting; resume "
                "or cancel it first.",
                code="download_other_repo",
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        probe = await self._probe(repo, file, revision)
        have = self._part(file).stat().st_size if self._part(file).is_file() else 0
        if probe.total is not None:
            self._check_space(file, probe.total - have)
        item = Download(file, repo, revision, probe.total, have, "running", probe.sha256)
        self._meta(file).write_text(json.dumps(item.sidecar()), encoding="utf-8")
        self._running[file] = item
        item.task = asyncio.create_task(self._run(item), name=f"model-download:{file}")
        return item

    async def resume(self, file: str) -> Download:
        """Continue an interrupted download from the bytes already on disk."""
        current = self.get(file)
        if current is None or current.repo is None:
            raise NotFound("download", f"There is no interrupted download of {file} to resume.")
        return await self.start(current.repo, file, current.revision)

    def _check_space(self, file: str, needed: int) -> None:
        free = self.free_bytes()
        if needed + SPARE_BYTES > free:
            raise Refused(
                f"Not enough disk space for {file}: it needs {human_bytes(needed)} more and "
                f"{human_bytes(free)} is free (Parley keeps {human_bytes(SPARE_BYTES)} spare). "
                "Free some space or choose a smaller model.",
                code="not_enough_space",
            )

    async def _probe(self, repo: str, file: str, revision: str) -> _Probe:
        url = self.resolve_url(repo, file, revision)
        try:
            async with self._client() as client:
                answer = await client.head(url, follow_redirects=False, timeout=PROBE_TIMEOUT_S)
                if answer.status_code in (301, 302, 303, 307, 308) and answer.headers.get(
                    "x-linked-size"
                ):
                    size = answer.headers.get("x-linked-size")
                    tag = answer.headers.get("x-linked-etag")
                elif answer.is_redirect:  # a renamed repo: follow to the file itself
                    answer = await client.head(url, follow_redirects=True, timeout=PROBE_TIMEOUT_S)
                    size = answer.headers.get("content-length")
                    tag = answer.headers.get("x-linked-etag") or answer.headers.get("etag")
                else:
                    size = answer.headers.get("content-length")
                    tag = answer.headers.get("x-linked-etag") or answer.headers.get("etag")
                if answer.status_code in (401, 403, 404):
                    raise Invalid(
                        f"Hugging Face has no file {file} in {repo} (revision {revision}), or "
                        "the repo is gated or private. Check the repo id and the file name "
                        "on the model's 'Files' tab.",
                        code="model_file_not_found",
                    )
                if answer.status_code >= 400:
                    raise Refused(
                        f"The download server answered {answer.status_code} for {file}; "
                        "try again later.",
                        code="download_failed",
                    )
                sha = sha256_from_etag(tag) or await self._api_sha256(client, repo, file, revision)
        except httpx2.HTTPError as exc:
            raise Refused(
                f"Could not reach the download server at {self.endpoint} "
                f"({type(exc).__name__}). Check this server's internet access or the "
                "Hugging Face endpoint setting.",
                code="download_failed",
            ) from exc
        total = int(size) if size and size.isdigit() else None
        return _Probe(total, sha)

    async def _api_sha256(
        self, client: httpx2.AsyncClient, repo: str, file: str, revision: str
    ) -> str | None:
        """The LFS checksum from the model API, when the file's headers carry none."""
        url = f"{self.endpoint}/api/models/{repo}/revision/{quote(revision, safe='')}"
        try:
            answer = await client.get(url, params={"blobs": "true"}, timeout=PROBE_TIMEOUT_S)
            siblings = answer.json().get("siblings", []) if answer.status_code == 200 else []
        except (httpx2.HTTPError, ValueError, AttributeError):
            return None
        for sibling in siblings if isinstance(siblings, list) else []:
            if isinstance(sibling, dict) and sibling.get("rfilename") == file:
                lfs = sibling.get("lfs") or {}
                value = lfs.get("sha256") if isinstance(lfs, dict) else None
                return value.lower() if isinstance(value, str) and _SHA256.match(value) else None
        return None

    # the transfer -------------------------------------------------------------

    async def _run(self, item: Download) -> None:
        assert item.repo is not None
        part = self._part(item.file)
        try:
            await self._transfer(item, part)
            await self._finish(item, part)
        except asyncio.CancelledError:
            raise
        except _Interrupted as exc:
            item.status, item.error = "interrupted", str(exc)
            log.warning("download of %s interrupted: %s", item.file, exc)
        except Exception as exc:
            log.exception("download of %s failed", item.file)
            item.status, item.error = "failed", f"The download failed: {exc}"
        finally:
            if item.status != "running":
                item.rate = 0.0
            if self._running.get(item.file) is item and item.status != "failed":
                del self._running[item.file]  # the disk says the rest from now on

    async def _transfer(self, item: Download, part: Path) -> None:
        assert item.repo is not None
        url = self.resolve_url(item.repo, item.file, item.revision)
        cuts = 0
        while True:
            have = _size(part)
            if item.total is not None and have >= item.total:
                return
            try:
                if await self._fetch_from(item, part, url, have):
                    return
            except (httpx2.TransportError, _ShortBody) as exc:
                cuts += 1
                got = _size(part)
                if cuts > RETRIES:
                    raise _Interrupted(
                        f"The connection was cut at {human_bytes(got)}"
                        + (f" of {human_bytes(item.total)}" if item.total else "")
                        + f" ({type(exc).__name__}). Resume continues from there."
                    ) from exc
                log.info("download of %s cut at %d bytes; resuming", item.file, got)
                await asyncio.sleep(RETRY_PAUSE_S * cuts)

    async def _fetch_from(self, item: Download, part: Path, url: str, have: int) -> bool:
        """Stream from byte ``have`` to the end; True when the file is complete."""
        headers = {"Accept-Encoding": "identity"}  # byte ranges of the file itself
        if have:
            headers["Range"] = f"bytes={have}-"
        async with (
            self._client() as client,
            client.stream("GET", url, headers=headers, follow_redirects=True) as answer,
        ):
            if answer.status_code == 416 and item.total is not None and have >= item.total:
                return True
            if answer.status_code >= 400:
                raise _Interrupted(
                    f"The download server answered {answer.status_code}; Resume tries again."
                )
            start = have if answer.status_code == 206 else 0  # 200: the server ignored Range
            length = answer.headers.get("content-length")
            expected = start + int(length) if length and length.isdigit() else item.total
            if item.total is None and expected is not None:
                item.total = expected
            done = start
            item.note_progress(done)
            with _open_at(part, start) as out:
                async for chunk in answer.aiter_bytes():  # as it arrives: a cut loses nothing
                    out.write(chunk)
                    done += len(chunk)
                    item.note_progress(done)
            if expected is not None and done < expected:
                raise _ShortBody(f"{done} of {expected} bytes")
            return True

    async def _finish(self, item: Download, part: Path) -> None:
        item.status = "verifying"
        size = _size(part)
        if item.total is not None and size != item.total:
            self._discard(item.file)
            raise ValueError(
                f"the file has {size} bytes, the server announced {item.total}; it was deleted"
            )
        if item.sha256 is not None:
            actual = await asyncio.to_thread(_sha256_of, part)
            if actual != item.sha256:
                self._discard(item.file)
                item.status = "failed"
                item.error = (
                    f"Checksum mismatch: the downloaded {item.file} is not the file Hugging Face "
                    f"published (SHA-256 {actual[:12]}…, expected {item.sha256[:12]}…). The "
                    "file was deleted; download it again."
                )
                return
            item.verified = True
        await asyncio.to_thread(part.replace, self.folder / item.file)
        self._meta(item.file).write_text(json.dumps(item.sidecar()), encoding="utf-8")
        item.status, item.done, item.error = "done", size, None
        log.info("downloaded %s (%s)", item.file, "verified" if item.verified else "unverified")

    # cancel, delete, close ------------------------------------------------------

    async def cancel(self, file: str) -> None:
        """Stop a download and delete what it fetched (running or interrupted)."""
        check_file(file)
        item = self._running.pop(file, None)
        if item is not None and item.task is not None:
            item.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await item.task
        elif not self._part(file).exists() and item is None:
            raise NotFound("download", f"There is no download of {file} to cancel.")
        self._discard(file)

    def delete(self, file: str) -> None:
        """Remove a downloaded model file (the caller checks it is not in use)."""
        current = self.get(file)
        if current is None or current.status != "done":
            raise NotFound("model file", f"There is no downloaded model named {file}.")
        (self.folder / file).unlink(missing_ok=True)
        self._meta(file).unlink(missing_ok=True)

    def _discard(self, file: str) -> None:
        self._part(file).unlink(missing_ok=True)
        if not (self.folder / file).exists():
            self._meta(file).unlink(missing_ok=True)

    def forget_failure(self, file: str) -> None:
        item = self._running.get(file)
        if item is not None and item.status == "failed":
            del self._running[file]

    async def aclose(self) -> None:
        """Stop every transfer; ``.part`` files stay for Resume after the restart."""
        tasks = [item.task for item in self._running.values() if item.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._running.clear()


class _Interrupted(Exception):
    """The transfer stopped; the ``.part`` file stays for Resume."""


class _ShortBody(Exception):
    """The body ended before ``Content-Length``: a cut connection."""


# Local-disk metadata calls and chunk writes take microseconds and stay on the
# loop; hashing the whole file (seconds for a few GB) runs in a thread.


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _open_at(path: Path, start: int) -> BinaryIO:
    """``path`` open for writing from byte ``start`` (the rest cut off)."""
    out = path.open("r+b" if start and path.exists() else "wb")
    out.seek(start)
    out.truncate()
    return out


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _default_client() -> httpx2.AsyncClient:
    # No overall timeout: a 2 GB file takes minutes; a stalled read still ends.
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(30.0, read=60.0), max_redirects=5, trust_env=True
    )
