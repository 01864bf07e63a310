"""Object storage: where uploaded files and code outputs keep their bytes.

One interface, ``ObjectStore``, two implementations: ``LocalObjectStore`` (a
folder, the data directory by default: keys are relative paths) and
``S3ObjectStore`` (any S3-compatible service: AWS, MinIO, SeaweedFS, Ceph...;
custom endpoint, region, credentials, path-style addressing). Every method
blocks: callers run them in a thread (``asyncio.to_thread``), as they did
with files on disk. ``build_object_store(settings)`` picks one from
``storage_backend``.

Keys are chosen by Parley, never by a client (a content hash, a random id):
``check_key`` refuses anything else, so a hostile name cannot reach outside
the store. Downloads stay behind Parley's authorization: bytes are streamed
through the server from the store (``iter_chunks``), no public or presigned URL.

The S3 client is boto3 (Apache-2.0, AWS's own SDK, maintained): it speaks to
every S3-compatible server, handles multipart uploads of large files and
retries, and its blocking calls fit the thread model above. Its client is
thread-safe, so one is shared.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from parley.config import Settings

__all__ = [
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectMissing",
    "ObjectStore",
    "S3ObjectStore",
    "build_object_store",
    "check_key",
]

CHUNK = 1 << 20
_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")


class ObjectMissing(FileNotFoundError):
    """No object under this key."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    modified: float  # seconds since the epoch: when the object was last written


def check_key(key: str) -> str:
    """``key`` if it is a relative path of safe segments (no ``..``, no leading dot)."""
    if not _KEY.fullmatch(key) or len(key) > 900:
        raise ValueError(f"not a storage key: {key!r}")
    return key


class ObjectStore(Protocol):
    name: str  # "local" | "s3"

    def put_file(self, key: str, path: Path) -> None:
        """Store the file at ``path`` under ``key`` (the file is left in place)."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def download(self, key: str, destination: Path) -> None:
        """Write the object to ``destination`` (atomically: a whole file or none)."""
        ...

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        """The object's bytes, a chunk at a time (raises ``ObjectMissing`` at once)."""
        ...

    def stat(self, key: str) -> ObjectInfo | None: ...

    def delete(self, key: str) -> None:
        """Remove the object (no error when it is already gone)."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def local_path(self, key: str) -> Path | None:
        """Where the object is on this machine's disk, when the store is a folder."""
        ...


class LocalObjectStore:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                shutil.copyfileobj(src, out, CHUNK)
            os.replace(name, target)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def move_in(self, key: str, path: Path) -> None:
        """``put_file`` by renaming (the same file system): the spooled upload's path."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.utime(path)  # the blob's mtime says when it was last put in place
        os.replace(path, target)

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_bytes(data)
        tmp.replace(target)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc

    def download(self, key: str, destination: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise ObjectMissing(key)
        destination.parent.mkdir(parents=True, exist_ok=True)
        tmp = destination.with_name(f".{destination.name}.part")
        shutil.copyfile(source, tmp)
        tmp.replace(destination)

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        try:
            fh = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc
        return _chunks(fh)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        return ObjectInfo(key, st.st_size, st.st_mtime)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self.root
        if not base.is_dir():
            return
        for path in base.rglob("*"):
            if not path.is_file() or path.name.startswith("."):
                continue
            key = path.relative_to(base).as_posix()
            if key.startswith(prefix) and _KEY.fullmatch(key):
                st = path.stat()
                yield ObjectInfo(key, st.st_size, st.st_mtime)


def _chunks(fh: Any) -> Iterator[bytes]:
    with fh:
        while block := fh.read(CHUNK):
            yield block


class S3ObjectStore:
    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
        path_style: bool = True,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                s3={"addressing_style": "path" if path_style else "virtual"},
                retries={"max_attempts": 4, "mode": "standard"},
                max_pool_connections=32,
                # only as much integrity checking as every S3-compatible server accepts
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        from boto3.s3.transfer import TransferConfig

        # a large file goes up in 16 MiB parts, four at once
        self._transfer = TransferConfig(
            multipart_threshold=16 * CHUNK,
            multipart_chunksize=16 * CHUNK,
            use_threads=True,
            max_concurrency=4,
        )

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def local_path(self, key: str) -> Path | None:
        return None

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (first start, tests)."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(key), Config=self._transfer)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def _get(self, key: str) -> Any:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _missing(exc):
                raise ObjectMissing(key) from exc
            raise

    def get_bytes(self, key: str) -> bytes:
        body = self._get(key)["Body"]
        with body:
            return bytes(body.read())

    def download(self, key: str, destination: Path) -> None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        tmp = destination.with_name(f".{destination.name}.part")
        try:
            with tmp.open("wb") as out:
                for block in self.iter_chunks(key):
                    out.write(block)
            tmp.replace(destination)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        body = self._get(key)["Body"]
        return _body_chunks(body)

    def stat(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return ObjectInfo(key, int(head["ContentLength"]), head["LastModified"].timestamp())

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                yield ObjectInfo(key, int(item["Size"]), item["LastModified"].timestamp())


def _body_chunks(body: Any) -> Iterator[bytes]:
    with body:
        yield from body.iter_chunks(CHUNK)


def _missing(exc: Any) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


def build_object_store(settings: Settings) -> ObjectStore:
    """The store ``storage_backend`` names: the data directory, or the S3 bucket."""
    if settings.storage_backend == "s3":
        if not settings.s3_bucket:
            raise ValueError("PARLEY_STORAGE_BACKEND=s3 needs PARLEY_S3_BUCKET")
        return S3ObjectStore(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            prefix=settings.s3_prefix,
            path_style=settings.s3_path_style,
        )
    return LocalObjectStore(settings.data_dir)


class Scoped:
    """A store seen under a key prefix (``files/``, ``sandbox/outputs/``)."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix.strip("/") + "/"
        self.name = store.name

    def _k(self, key: str) -> str:
        return self.prefix + check_key(key)

    def local_path(self, key: str) -> Path | None:
        return self.store.local_path(self._k(key))

    def put_file(self, key: str, path: Path) -> None:
        self.store.put_file(self._k(key), path)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.store.put_bytes(self._k(key), data)

    def get_bytes(self, key: str) -> bytes:
        return self.store.get_bytes(self._k(key))

    def download(self, key: str, destination: Path) -> None:
        self.store.download(self._k(key), destination)

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        return self.store.iter_chunks(self._k(key))

    def stat(self, key: str) -> ObjectInfo | None:
        info = self.store.stat(self._k(key))
        return None if info is None else ObjectInfo(key, info.size, info.modified)

    def delete(self, key: str) -> None:
        self.store.delete(self._k(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for info in self.store.list(self.prefix + prefix):
            yield ObjectInfo(info.key[len(self.prefix) :], info.size, info.modified)
