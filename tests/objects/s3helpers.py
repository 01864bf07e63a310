"""Helpers for the object-storage tests, importable by name from test modules (a
test that imports ``conftest`` gets whichever conftest was loaded last)."""

from __future__ import annotations

from typing import Any

from bench.seaweed import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS

__all__ = ["s3_settings"]


def s3_settings(server: SeaweedFS, bucket: str, prefix: str = "") -> dict[str, Any]:
    """The settings that put an app's files in ``bucket`` on ``server``."""
    return {
        "storage_backend": "s3",
        "s3_endpoint_url": server.endpoint,
        "s3_bucket": bucket,
        "s3_region": REGION,
        "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": SECRET_KEY,
        "s3_path_style": True,
        "s3_prefix": prefix,
    }
