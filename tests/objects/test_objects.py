"""The one storage interface, the same tests on the local disk and on a real S3
server (SeaweedFS): bytes in and out, listing, deletion, refusals."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from parley.knowledge.blobs import BlobStore
from parley.storage.objects import ObjectMissing, ObjectStore, Scoped, check_key


def test_bytes_go_in_and_come_out(objects: ObjectStore, tmp_path: Path) -> None:
    objects.put_bytes("a/b/one", b"hello")
    assert objects.get_bytes("a/b/one") == b"hello"
    big = os.urandom(17 * 1024 * 1024 + 5)  # past the multipart threshold
    source = tmp_path / "big.bin"
    source.write_bytes(big)
    objects.put_file("a/big", source)
    assert b"".join(objects.iter_chunks("a/big")) == big
    objects.download("a/big", tmp_path / "copy" / "big")
    assert (tmp_path / "copy" / "big").read_bytes() == big
    info = objects.stat("a/big")
    assert info is not None and info.size == len(big)
    assert abs(info.modified - time.time()) < 120
    assert sorted(i.key for i in objects.list("a/")) == ["a/b/one", "a/big"]
    assert [i.key for i in objects.list("a/b/")] == ["a/b/one"]


def test_deleting_deletes_the_bytes(objects: ObjectStore) -> None:
    objects.put_bytes("x/gone", b"secret")
    objects.delete("x/gone")
    assert objects.stat("x/gone") is None
    with pytest.raises(ObjectMissing):
        objects.get_bytes("x/gone")
    with pytest.raises(ObjectMissing):
        objects.iter_chunks("x/gone")
    objects.delete("x/gone")  # twice is fine
    assert list(objects.list("x/")) == []


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", ".hidden", "a/../b", "a//b", "a\\b", ""])
def test_keys_a_client_could_choose_are_refused(objects: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError):
        check_key(key)
    with pytest.raises(ValueError):
        objects.put_bytes(key, b"x")


def test_the_blob_store_works_the_same_on_both(objects: ObjectStore, tmp_path: Path) -> None:
    """Spool and hash, commit under the content address, a local file for parsers,
    deletion that keeps a blob put back after the check."""
    blobs = BlobStore(tmp_path / "files", Scoped(objects, "files"))
    data = b"%PDF-1.4 not really" * 1000
    tmp, sha, size = blobs.spool(io.BytesIO(data), 1 << 20)
    assert size == len(data)
    blobs.commit(tmp, sha)
    assert not tmp.exists()
    assert blobs.exists(sha)
    assert blobs.local(sha).read_bytes() == data
    assert [d for d, _ in blobs.digests()] == [sha]
    assert objects.get_bytes(f"files/{sha[:2]}/{sha}") == data
    out = io.BytesIO()
    blobs.copy_to(sha, out)
    assert out.getvalue() == data
    checked = time.time() - 30  # a deletion looked for records before the upload
    assert blobs.delete(sha, unless_written_after=checked) is False
    assert blobs.exists(sha)
    assert blobs.delete(sha, unless_written_after=time.time() + 60) is True
    assert not blobs.exists(sha)
    with pytest.raises(FileNotFoundError):
        blobs.local(sha)
    # no copy left on this machine either (the remote store's cache)
    assert [p for p in (tmp_path / "files").rglob("*") if p.is_file()] == []
