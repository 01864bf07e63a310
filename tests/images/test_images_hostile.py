"""Hostile images: a provider that sends a truncated file, a decompression bomb,
HTML, a URL into the metadata service, or fails; a user who sends the same to
``/v1/images/edits``. Each gets a clear error, nothing is stored, the failed call
is in the ledger at no cost, and the next good request works."""

from __future__ import annotations

import io
from typing import Any

import pytest
from imghelpers import add_openai_provider
from PIL import Image

from apihelpers import Client, ledger_rows
from parley.images.testing import ScriptedImages, bomb_png, draw

TRUNCATED = draw("a long prompt so the picture has some detail in it", 1, 128, 128)
PROVIDER_CASES = {
    "truncated": "truncated or corrupt",
    "bomb": "pixels",
    "html": "not a PNG",
    "private_url": "may not fetch",
    "error": "failed (HTTP 500)",
}


async def test_hostile_provider_answers_are_refused_and_nothing_breaks(
    app: Any, client: Client, user: dict[str, Any], image_server: ScriptedImages
) -> None:
    await add_openai_provider(client, image_server)
    for hostile, words in PROVIDER_CASES.items():
        image_server.hostile = hostile
        made = await client.post("/api/images", json={"prompt": f"case {hostile}"})
        assert made.status_code == 502, (hostile, made.text)
        problem = made.json()
        assert words in problem["detail"], (hostile, problem)
        assert "169.254" not in problem["detail"] and "127.0.0.1" not in problem["detail"]
    assert (await client.get("/api/images")).json()["items"] == []
    rows = [r for r in await ledger_rows(app) if r.endpoint == "images"]
    assert len(rows) == len(PROVIDER_CASES)
    assert all(r.outcome != "ok" and r.cost == 0 for r in rows)

    image_server.hostile = None
    good = await client.post("/api/images", json={"prompt": "all is well"})
    assert good.status_code == 201, good.text


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (9, 9, 9)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (TRUNCATED[: len(TRUNCATED) // 2], 400, "corrupt_image"),
        (bomb_png(), 413, "too_many_pixels"),
        (b"<svg onload=alert(1)></svg>", 415, "unsupported_image"),
        (b"GIF89a" + b"\x00" * 40, 400, "corrupt_image"),
        (b"", 400, "empty_image"),
    ],
    ids=["truncated", "bomb", "svg", "fake-gif", "empty"],
)
async def test_hostile_uploads_to_v1_edits_get_clear_errors(
    client: Client,
    user: dict[str, Any],
    image_server: ScriptedImages,
    payload: bytes,
    status: int,
    code: str,
) -> None:
    await add_openai_provider(client, image_server)
    key = (await client.post("/api/keys", json={"name": "edits"})).json()["key"]
    sent = await client.post(
        "/v1/images/edits",
        files={"image": ("in.png", payload, "image/png")},
        data={"prompt": "make it blue"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert sent.status_code == status, sent.text
    body = sent.json()
    assert body["error"]["code"] == code, body
    assert not [r for r in image_server.requests if r["path"] == "/v1/images/edits"]
    # a good image still goes through afterwards
    fine = await client.post(
        "/v1/images/edits",
        files={"image": ("in.png", _png(64, 64), "image/png")},
        data={"prompt": "make it blue", "size": "64x64"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert fine.status_code == 200, fine.text


async def test_an_upload_over_the_size_limit_is_refused(
    make_app: Any, make_settings: Any, image_server: ScriptedImages
) -> None:
    from apihelpers import make_client, signup

    settings = make_settings(images_max_bytes=2048, images_default_size="64x64")
    async with make_app(settings) as app, make_client(app) as client:
        await signup(client)
        await add_openai_provider(client, image_server)
        key = (await client.post("/api/keys", json={"name": "k"})).json()["key"]
        big = _png(400, 400) + b"\x00" * 4096
        sent = await client.post(
            "/v1/images/edits",
            files={"image": ("in.png", big, "image/png")},
            data={"prompt": "x"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert sent.status_code in (400, 413), sent.text
        assert "2,048" in sent.json()["error"]["message"] or "MB" in sent.json()["error"]["message"]
