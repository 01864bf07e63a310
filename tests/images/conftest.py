"""Fixtures for image tests: the app of ``tests/conftest.py`` with the images
feature (and every default feature: the composer, tools, export and usage views
are shared), on both backends, and the scripted image server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from parley.images.testing import ScriptedImages


@pytest.fixture
def image_server() -> Iterator[ScriptedImages]:
    with ScriptedImages(api_key="img-secret") as server:
        yield server


@pytest.fixture
def overrides() -> dict[str, Any]:
    # Small limits make the hostile cases cheap; the scripted server draws 256x256.
    return {"images_default_size": "256x256", "images_max_pixels": 4_000_000}
