"""Helpers for image tests: adding a provider as the admin."""

from __future__ import annotations

from typing import Any

from apihelpers import Client
from parley.images.testing import SAMPLE_MAPPING, ScriptedImages, sample_workflow


async def add_openai_provider(
    admin: Client, server: ScriptedImages, *, price: float = 0.04, name: str = "drawer"
) -> dict[str, Any]:
    made = await admin.post(
        "/api/admin/images/providers",
        json={
            "name": name,
            "kind": "openai",
            "base_url": server.base_url,
            "api_key": "img-secret",
            "model": "scripted-image",
            "price_per_image": price,
        },
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


async def add_comfy_provider(
    admin: Client, server: ScriptedImages, *, price: float = 0.01, name: str = "comfy"
) -> dict[str, Any]:
    made = await admin.post(
        "/api/admin/images/providers",
        json={
            "name": name,
            "kind": "comfyui",
            "base_url": server.root_url,
            "api_key": "img-secret",
            "workflow": sample_workflow(),
            "mapping": SAMPLE_MAPPING,
            "price_per_image": price,
            "is_default": True,
        },
    )
    assert made.status_code == 201, made.text
    return dict(made.json())
