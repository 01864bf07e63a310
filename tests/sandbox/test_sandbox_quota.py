"""Output quotas (issue 11, item 5): what one call, and one user, may store on the host.

Before: one call stored 460 MB (10 files of 24 MB from /mnt/data and 10 images
of 22 MB through the display channel). Now files and images share one budget
per call (``output_call_bytes``) and one per user (``output_user_bytes``); what
does not fit is never decoded, read or written, and the message says what was
kept, what was dropped and why.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import TEST_LIMITS, MemorySink, Runner
from parley.sandbox import SandboxConfig, SandboxManager
from parley.sandbox.outputs import OutputStore
from parley.storage import Database
from parley.storage.tables import Conversation, User

# The slow tier (not in `make test-fast`): each call moves hundreds of MB.
pytestmark = pytest.mark.slow

MB = 2**20
BIG_LIMITS = replace(TEST_LIMITS, disk_bytes=300 * MB, file_bytes=30 * MB, wall_seconds=30)

FILES = "for i in range(10):\n    open(f'big{i}.bin', 'wb').write(bytes(24 * 2**20))"
IMAGES = (
    "import base64\nfrom IPython.display import display\n"
    "png = base64.b64encode(b'\\x89PNG\\r\\n\\x1a\\n' + bytes(22 * 2**20)).decode()\n"
    "for _ in range(10):\n    display({'image/png': png}, raw=True)"
)


def quota_config(base: SandboxConfig, call_mb: int, user_mb: int) -> SandboxConfig:
    return replace(
        base, limits=BIG_LIMITS, output_call_bytes=call_mb * MB, output_user_bytes=user_mb * MB
    )


@pytest.fixture
async def quota_manager(
    sandbox_config: SandboxConfig, sink: MemorySink
) -> AsyncIterator[SandboxManager]:
    mgr = SandboxManager(quota_config(sandbox_config, 50, 1000), sink)
    try:
        yield mgr
    finally:
        await mgr.close()


def stored(sink: MemorySink) -> int:
    return sum(len(data) for *_, data in sink.saved.values())


async def _user_with_two_conversations(db: Database, email: str) -> tuple[str, str, str]:
    async with db.session() as session:
        user = User(email=email, password_hash="x")
        session.add(user)
        await session.flush()
        conv_a, conv_b = Conversation(user_id=user.id), Conversation(user_id=user.id)
        session.add_all([conv_a, conv_b])
        await session.commit()
        return user.id, conv_a.id, conv_b.id


async def test_many_big_files_stop_at_the_call_quota(
    quota_manager: SandboxManager, sink: MemorySink
) -> None:
    run = Runner(quota_manager)
    out = await run(FILES)
    assert [a["filename"] for a in out.attachments] == ["big0.bin", "big1.bin"], out.text
    assert stored(sink) <= 50 * MB
    assert "Output quota: 48.0 MB of outputs were kept" in out.text, out.text
    assert "big2.bin (24.0 MB)" in out.text and "big9.bin (24.0 MB)" in out.text
    assert "one call (files and images together) are limited to 50.0 MB" in out.text


async def test_many_big_images_stop_at_the_call_quota(
    quota_manager: SandboxManager, sink: MemorySink
) -> None:
    run = Runner(quota_manager)
    out = await run(IMAGES)
    assert len(out.attachments) == 2, out.text
    assert all(a["kind"] == "image" for a in out.attachments)
    assert stored(sink) <= 50 * MB
    assert "not kept: 8 images (176.0 MB in all)" in out.text, out.text
    assert run.last is not None and run.last.execution is not None
    assert len(run.last.execution.images) == 2  # the others were never decoded


async def test_images_and_files_share_one_budget(
    quota_manager: SandboxManager, sink: MemorySink
) -> None:
    run = Runner(quota_manager)
    out = await run(
        IMAGES.replace("range(10)", "range(1)")
        + "\nfor i in range(3):\n    open(f'big{i}.bin', 'wb').write(bytes(24 * 2**20))"
    )
    kinds = sorted(a["kind"] for a in out.attachments)
    assert kinds == ["file", "image"], out.text  # 22 MB image + one 24 MB file
    assert stored(sink) <= 50 * MB
    assert "big1.bin (24.0 MB), big2.bin (24.0 MB)" in out.text, out.text


async def test_the_user_quota_spans_calls_and_conversations(
    sandbox_config: SandboxConfig, db: Database, tmp_path: Path
) -> None:
    """With the real store: the host's output directory never holds more than the quota."""
    user_id, a, b = await _user_with_two_conversations(db, "quota@example.com")
    root = tmp_path / "outputs"
    store = OutputStore(db, root)
    manager = SandboxManager(quota_config(sandbox_config, 50, 100), store)
    two_files = "for i in range(2):\n    open(f'part{i}.bin', 'wb').write(bytes(24 * 2**20))"
    try:
        first = await Runner(manager, user_id, a)(two_files)
        second = await Runner(manager, user_id, b)(two_files)
        assert len(first.attachments) == 2 and len(second.attachments) == 2
        third = await Runner(manager, user_id, a)(two_files.replace("part", "more"))
    finally:
        await manager.close()
    assert third.attachments == [], third.text
    assert "your stored outputs are limited to 100.0 MB in all" in third.text, third.text
    assert "96.0 MB were already in use" in third.text
    assert "more0.bin (24.0 MB), more1.bin (24.0 MB)" in third.text
    on_disk = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert on_disk == await store.used_bytes(user_id) == 96 * MB
    assert on_disk <= 100 * MB


async def test_calls_running_at_once_share_the_user_quota(
    sandbox_config: SandboxConfig, db: Database, tmp_path: Path
) -> None:
    """Two conversations of one user running code at the same moment: each call
    reserves its budget up front, so together they stay under the user's quota."""
    user_id, a, b = await _user_with_two_conversations(db, "race@example.com")
    root = tmp_path / "outputs"
    store = OutputStore(db, root)
    manager = SandboxManager(quota_config(sandbox_config, 50, 60), store)
    two_files = "for i in range(2):\n    open(f'part{i}.bin', 'wb').write(bytes(24 * 2**20))"
    try:
        first, second = await asyncio.gather(
            Runner(manager, user_id, a)(two_files), Runner(manager, user_id, b)(two_files)
        )
    finally:
        await manager.close()
    kept = len(first.attachments) + len(second.attachments)
    assert kept == 2, (first.text, second.text)  # 2 x 24 MB fit in 60 MB; 3 would not
    on_disk = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert on_disk == 48 * MB <= 60 * MB


async def test_small_outputs_say_nothing_about_quotas(run: Runner) -> None:
    out = await run("open('small.csv', 'w').write('a,b\\n1,2\\n')")
    assert [a["filename"] for a in out.attachments] == ["small.csv"]
    assert "quota" not in out.text.lower()
