"""Files and outputs across the sandbox's wall, within a quota.

Split from ``manager.py``, which keeps kernels per conversation: this module
is what one call moves. The conversation's files are copied in before the
code runs (only those new or changed since the last copy); what the code made
or changed is read back out after it, within the file count, the size of one
file and the call's output quota (``CallQuota``: files and images together,
and what is left of the user's stored outputs), and a file over what is left
is never read. ``CallQuota.note`` tells the user what was dropped and why.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from parley.sandbox import files as sfiles
from parley.sandbox.config import SandboxConfig
from parley.sandbox.outputs import Attachment, OutputBudget

if TYPE_CHECKING:  # the kernel module needs the `sandbox` extra
    from parley.sandbox.kernel import Kernel

__all__ = [
    "CallQuota",
    "FilesSource",
    "OutputSink",
    "collect_files",
    "reserve_quota",
    "snapshot_of",
    "sync_files",
]

log = logging.getLogger(__name__)

FilesSource = Callable[[str, str | None], Awaitable[Sequence[tuple[str, str | Path]]]]
"""``(user_id, conversation_id) -> [(filename, path on disk), ...]`` for the conversation."""


class OutputSink(Protocol):
    """Where outputs go. A sink that also has ``async used_bytes(user_id) -> int``
    (bytes stored for the user, as ``OutputStore`` does) gets the per-user quota;
    without it only the per-call quota applies."""

    async def save(
        self, user_id: str, conversation_id: str | None, filename: str, data: bytes
    ) -> Attachment: ...


@dataclass(slots=True)
class CallQuota:
    """One call's output budget and what it kept and dropped (for the message)."""

    budget: OutputBudget
    call_bytes: int
    user_bytes: int
    user_used: int
    reserved: int = 0  # held against the user's quota until the call ends
    kept_images: int = 0
    kept_files: int = 0
    dropped_images: list[int] = field(default_factory=list)
    dropped_files: list[tuple[str, int]] = field(default_factory=list)

    def note(self) -> str:
        if not self.dropped_images and not self.dropped_files:
            return ""
        dropped = []
        if self.dropped_images:
            count = len(self.dropped_images)
            dropped.append(
                f"{count} image{'s' if count > 1 else ''} ({_mb(sum(self.dropped_images))} in all)"
            )
        dropped += [f"{rel} ({_mb(size)})" for rel, size in self.dropped_files]
        kept = self.kept_images + self.kept_files
        if self.call_bytes <= self.user_bytes - self.user_used:
            why = (
                f"the outputs of one call (files and images together) are limited to "
                f"{_mb(self.call_bytes)}"
            )
            fix = "Save fewer or smaller files and charts, or split the work over several calls."
        else:
            why = (
                f"your stored outputs are limited to {_mb(self.user_bytes)} in all and "
                f"{_mb(self.user_used)} were already in use"
            )
            fix = "Deleting old conversations with large outputs frees space."
        return (
            f"Output quota: {_mb(kept)} of outputs were kept; not kept: {', '.join(dropped)}, "
            f"because {why}. {fix}"
        )


async def reserve_quota(
    cfg: SandboxConfig, sink: OutputSink, reserved: Counter[str], user_id: str
) -> CallQuota:
    """This call's output budget: the per-call quota, or what is left of the user's
    (``reserved``: what calls of the user running now hold, this one's added)."""
    used = 0
    used_bytes = getattr(sink, "used_bytes", None)
    if used_bytes is not None:
        try:
            used = int(await used_bytes(user_id))
        except Exception:
            log.exception("reading a user's stored outputs failed; the per-call quota applies")
    # Calls of the same user running at once (other conversations) reserve their
    # budgets up front, so together they never pass the user's quota.
    used += reserved[user_id]
    user_left = max(0, cfg.output_user_bytes - used)
    budget = min(cfg.output_call_bytes, user_left)
    reserved[user_id] += budget
    return CallQuota(
        OutputBudget(budget),
        call_bytes=cfg.output_call_bytes,
        user_bytes=cfg.output_user_bytes,
        user_used=used,
        reserved=budget,
    )


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def snapshot_of(kernel: Kernel) -> sfiles.Snapshot | None:
    """The files in the kernel's working directory (None: it cannot be read, the
    sandbox is gone)."""
    try:
        with sfiles.workdir_fd(kernel.sandbox_pid) as fd:
            return sfiles.snapshot(fd)
    except OSError:
        return None


async def sync_files(
    files: FilesSource,
    synced: dict[str, tuple[int, int]],
    kernel: Kernel,
    host_uid: Callable[[], int | None],
    user_id: str,
    conversation_id: str | None,
    notes: list[str],
) -> None:
    """Copy the conversation's files in when new or changed since the last copy
    (``synced``: name -> (size, mtime) of what was copied; ``host_uid``: whom the
    copies belong to)."""
    try:
        wanted = await files(user_id, conversation_id)
    except Exception:
        log.exception("listing the conversation's files failed")
        notes.append("The conversation's files could not be listed.")
        return
    for raw_name, raw_path in wanted:
        name, path = sfiles.safe_name(raw_name), Path(raw_path)
        try:
            info = await asyncio.to_thread(path.stat)
        except OSError:
            continue
        signature = (info.st_size, info.st_mtime_ns)
        if not name or synced.get(name) == signature:
            continue
        try:
            await asyncio.to_thread(_place, kernel.sandbox_pid, name, path, host_uid())
            synced[name] = signature
        except OSError as exc:
            notes.append(f"The file {name} could not be placed in the sandbox: {exc}")


async def collect_files(
    kernel: Kernel,
    before: sfiles.Snapshot,
    config: SandboxConfig,
    sink: OutputSink,
    user_id: str,
    conversation_id: str | None,
    quota: CallQuota,
    notes: list[str],
    attachments: list[Attachment],
) -> None:
    """Keep the files the call made or changed, within the count, size and quota.

    A file over the quota left is never read: its size in the snapshot
    decides, and the read stops at the bytes left (a file still growing)."""
    after = snapshot_of(kernel)
    if after is None:
        return
    changed = sfiles.changed_files(before, after)
    cap = config.max_output_files
    if len(changed) > cap:
        notes.append(f"{len(changed)} files changed; only the first {cap} are kept.")
    limit_mb = config.max_output_bytes // 2**20
    for rel in changed[:cap]:
        size = after[rel][0]
        if size > config.max_output_bytes:
            notes.append(f"{rel} is larger than {limit_mb} MB and was not kept.")
            continue
        if size > quota.budget.remaining:
            quota.dropped_files.append((rel, size))
            continue
        limit = min(config.max_output_bytes, quota.budget.remaining)
        try:
            with sfiles.workdir_fd(kernel.sandbox_pid) as fd:
                data = sfiles.read_file(fd, rel, limit)
        except sfiles.FileTooLarge:  # it grew after the snapshot
            if limit < config.max_output_bytes:
                quota.dropped_files.append((rel, size))
            else:
                notes.append(f"{rel} is larger than {limit_mb} MB and was not kept.")
            continue
        except OSError:
            continue
        quota.budget.take(len(data))
        quota.kept_files += len(data)
        name = sfiles.safe_name(rel) or "output"
        attachments.append(await sink.save(user_id, conversation_id, name, data))


def _place(sandbox_pid: int, name: str, source: Path, uid: int | None) -> None:
    # the source is opened as the server (the data dir is private), the copy made as uid
    with source.open("rb") as src, sfiles.fs_identity(uid), sfiles.workdir_fd(sandbox_pid) as fd:
        sfiles.write_file(fd, name, src)
