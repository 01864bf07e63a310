"""``/v1/images/generations`` and ``/v1/images/edits`` with the official ``openai``
SDK against a real Parley server: base64 and URL answers (the URL is Parley's,
fetched with the key), edits, key scopes, and the ledger rows carry the key."""

from __future__ import annotations

import base64
import hashlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from parley.config import Settings
from parley.images.testing import ScriptedImages, draw, vary
from parley.providers.base import Provider


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_images(
    settings: Settings, extra_providers: list[Provider], image_server: ScriptedImages
) -> Iterator[tuple[str, str, httpx.Client]]:
    """A real Parley server with an image provider; (base URL, API key, admin client)."""
    import uvicorn

    from parley.api.app import create_app

    app = create_app(settings, extra_providers=extra_providers)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base) as admin:
        signed = admin.post(
            "/api/auth/signup", json={"email": "a@example.com", "password": "12345678"}
        )
        assert signed.status_code == 201
        csrf = {"X-CSRF-Token": admin.cookies["parley_csrf"]}
        added = admin.post(
            "/api/admin/images/providers",
            json={
                "name": "drawer",
                "kind": "openai",
                "base_url": image_server.base_url,
                "api_key": "img-secret",
                "model": "scripted-image",
                "price_per_image": 0.03,
            },
            headers=csrf,
        )
        assert added.status_code == 201, added.text
        key = admin.post("/api/keys", json={"name": "sdk"}, headers=csrf).json()["key"]
        try:
            yield base, key, admin
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def test_the_openai_sdk_generates_and_edits(live_images: tuple[str, str, httpx.Client]) -> None:
    base, key, admin = live_images
    client = openai.OpenAI(base_url=base + "/v1", api_key=key)

    inline = client.images.generate(
        model="dall-e-3", prompt="a yellow tram", size="256x256", response_format="b64_json"
    )
    picture = base64.b64decode(inline.data[0].b64_json or "")
    assert picture == draw("a yellow tram", 0, 256, 256)

    linked = client.images.generate(prompt="a yellow tram", size="256x256", response_format="url")
    url = linked.data[0].url or ""
    assert url.startswith(base + "/v1/images/")  # Parley's URL, not the provider's
    assert httpx.get(url).status_code == 401  # the key is needed
    fetched = httpx.get(url, headers={"Authorization": f"Bearer {key}"})
    assert fetched.status_code == 200 and fetched.content == picture

    two = client.images.generate(prompt="stars", size="64x64", n=2, response_format="b64_json")
    assert len(two.data) == 2

    edited = client.images.edit(
        image=("tram.png", io.BytesIO(picture), "image/png"),
        prompt="at night",
        size="256x256",
        response_format="b64_json",
    )
    with Image.open(io.BytesIO(base64.b64decode(edited.data[0].b64_json or ""))) as out:
        assert out.size == (256, 256)

    # the images are the key owner's files, and each call is priced in the ledger
    csrf = {"X-CSRF-Token": admin.cookies["parley_csrf"]}
    mine = admin.get("/api/images", headers=csrf).json()["items"]
    assert len(mine) == 5  # 1 + 1 + 2 + 1
    usage = admin.get("/api/me/usage").json()
    assert round(sum(k["cost"] for k in usage["by_key"] if k["key"]), 6) == 0.15


def test_keys_without_the_images_scope_are_refused(
    live_images: tuple[str, str, httpx.Client],
) -> None:
    base, _key, admin = live_images
    csrf = {"X-CSRF-Token": admin.cookies["parley_csrf"]}
    limited = admin.post(
        "/api/keys", json={"name": "chat only", "scopes": {"endpoints": ["chat"]}}, headers=csrf
    )
    assert limited.status_code == 201, limited.text
    client = openai.OpenAI(base_url=base + "/v1", api_key=limited.json()["key"], max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        client.images.generate(prompt="nope", size="64x64")
    models_only = admin.post(
        "/api/keys",
        json={"name": "other model", "scopes": {"models": ["scripted/scripted"]}},
        headers=csrf,
    )
    client = openai.OpenAI(base_url=base + "/v1", api_key=models_only.json()["key"], max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        client.images.generate(prompt="nope", size="64x64")
    bad: Any = openai.OpenAI(base_url=base + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.images.generate(prompt="nope")


def _png(size: tuple[int, int], mode: str = "RGBA", fmt: str = "PNG") -> bytes:
    """An image of ``size``; as RGBA, transparent in its top-left quarter (the area to edit)."""
    image = Image.new(mode, size, (0, 0, 0, 255) if mode == "RGBA" else (0, 0, 0))
    if mode == "RGBA":
        image.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1] // 2))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def test_variations_and_masked_edits_through_the_sdk(
    live_images: tuple[str, str, httpx.Client], image_server: ScriptedImages
) -> None:
    base, key, _admin = live_images
    client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
    made = client.images.generate(prompt="a red kite", size="64x64", response_format="b64_json")
    picture = base64.b64decode(made.data[0].b64_json or "")

    varied = client.images.create_variation(
        image=("kite.png", io.BytesIO(picture), "image/png"),
        n=2,
        size="64x64",
        response_format="b64_json",
    )
    assert [base64.b64decode(d.b64_json or "") for d in varied.data] == [
        vary(picture, 0),
        vary(picture, 1),
    ]
    assert image_server.requests[-1]["path"] == "/v1/images/variations"

    mask = _png((64, 64))
    edited = client.images.edit(
        image=("kite.png", io.BytesIO(picture), "image/png"),
        mask=("mask.png", io.BytesIO(mask), "image/png"),
        prompt="a moon in the corner",
        size="64x64",
        response_format="b64_json",
    )
    assert len(edited.data) == 1
    sent = image_server.requests[-1]
    assert sent["path"] == "/v1/images/edits" and sent["mask"] == hashlib.sha256(mask).hexdigest()

    # masks that cannot be right are refused before the provider is asked (or paid)
    asked = len(image_server.requests)
    for bad, words in (
        (_png((32, 32)), "same size"),
        (_png((64, 64), mode="RGB", fmt="JPEG"), "must be a PNG"),
    ):
        with pytest.raises(openai.APIStatusError) as refused:
            client.images.edit(
                image=("kite.png", io.BytesIO(picture), "image/png"),
                mask=("mask.png", io.BytesIO(bad), "image/png"),
                prompt="a moon",
            )
        assert refused.value.status_code in (400, 422) and words in str(refused.value.message)
    with_mask = httpx.post(  # the SDK sends no mask with a variation; a raw client can
        base + "/v1/images/variations",
        headers={"Authorization": f"Bearer {key}"},
        files={"image": ("k.png", picture, "image/png"), "mask": ("m.png", mask, "image/png")},
    )
    assert with_mask.status_code == 400
    assert "only applies to an edit" in with_mask.json()["error"]["message"]
    assert len(image_server.requests) == asked
