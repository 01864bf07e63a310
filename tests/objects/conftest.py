"""Fixtures for object storage: a real S3 server (SeaweedFS, started once per
session on free loopback ports) and a store of each kind, local and S3."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.seaweed import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS
from s3helpers import s3_settings

from parley.storage.objects import LocalObjectStore, ObjectStore, S3ObjectStore

KINDS = ("local", "s3")


@pytest.fixture(scope="session")
def s3server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with SeaweedFS(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bucket() -> str:
    """One bucket for the session (SeaweedFS gives each bucket volumes of its own);
    each test writes under a prefix of its own."""
    return "parley-tests"


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def objects(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, bucket: str, prefix: str
) -> ObjectStore:
    if kind == "local":
        return LocalObjectStore(tmp_path / "objects")
    server: SeaweedFS = request.getfixturevalue("s3server")
    settings = s3_settings(server, bucket)
    store = S3ObjectStore(
        bucket,
        endpoint_url=settings["s3_endpoint_url"],
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        prefix=prefix,
    )
    store.ensure_bucket()
    return store
