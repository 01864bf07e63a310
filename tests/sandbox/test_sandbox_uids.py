"""Host uid blocks: workers on one host never hand out the same uid."""

from __future__ import annotations

from pathlib import Path

import pytest

from parley.sandbox import uids
from parley.sandbox.uids import UidBlock, UidBlockError


def test_each_worker_gets_its_own_block_and_a_released_one_is_reused(tmp_path: Path) -> None:
    first, second = UidBlock(900_000, 10, tmp_path), UidBlock(900_000, 10, tmp_path)
    assert [first.uid(0), first.uid(9)] == [900_000, 900_009]
    assert [second.uid(0), second.uid(9)] == [900_010, 900_019]  # the lock is held
    first.release()
    third = UidBlock(900_000, 10, tmp_path)
    assert third.uid(3) == 900_003
    with pytest.raises(ValueError, match="outside"):
        third.uid(10)
    second.release()
    third.release()


def test_all_blocks_taken_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uids, "MAX_BLOCKS", 2)
    held = [UidBlock(5, 4, tmp_path), UidBlock(5, 4, tmp_path)]
    for block in held:
        block.uid(0)
    with pytest.raises(UidBlockError, match="SANDBOX_HOST_UID_BASE"):
        UidBlock(5, 4, tmp_path).uid(0)
    for block in held:
        block.release()
