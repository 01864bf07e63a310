"""Generate, edit, vary: the pictures are the user's stored files with their
lineage, served by Parley, priced in the usage ledger, deleted with their bytes."""

from __future__ import annotations

from typing import Any

from imghelpers import add_comfy_provider, add_openai_provider

from apihelpers import Client, ledger_rows, make_client, signup
from parley.images.service import ImageService
from parley.images.testing import SAMPLE_MAPPING, ScriptedImages, draw, sample_workflow


def _service(app: Any) -> ImageService:
    found: ImageService = app.state.services.require(ImageService)
    return found


async def test_generate_edit_vary_keep_lineage_files_and_costs(
    app: Any, client: Client, user: dict[str, Any], image_server: ScriptedImages
) -> None:
    provider = await add_openai_provider(client, image_server, price=0.04)
    assert provider["has_key"] is True and "api_key" not in provider

    made = await client.post("/api/images", json={"prompt": "a red fox in snow"})
    assert made.status_code == 201, made.text
    (first,) = made.json()["items"]
    assert first["operation"] == "generate" and first["parent_id"] is None
    assert first["root_id"] == first["id"] and (first["width"], first["height"]) == (256, 256)
    assert first["url"] == f"/api/images/{first['id']}/content"
    served = await client.get(first["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content == draw("a red fox in snow", 0, 256, 256)  # the provider's picture
    assert "sandbox" in served.headers["content-security-policy"]
    download = await client.get(first["url"], params={"download": "true"})
    assert download.headers["content-disposition"].startswith("attachment")
    # the provider was asked for base64 with Parley's key, never by the browser
    asked = image_server.requests[-1]
    assert asked["path"] == "/v1/images/generations"
    assert asked["body"]["response_format"] == "b64_json"

    edited = await client.post(f"/api/images/{first['id']}/edits", json={"prompt": "add a hat"})
    assert edited.status_code == 201, edited.text
    (second,) = edited.json()["items"]
    assert (second["operation"], second["parent_id"], second["root_id"]) == (
        "edit",
        first["id"],
        first["id"],
    )
    # the provider drew the edit around the original it was sent
    edited_bytes = (await client.get(second["url"])).content
    assert edited_bytes == draw("add a hat", 0, 256, 256, served.content)

    varied = await client.post(f"/api/images/{second['id']}/variations", json={})
    assert varied.status_code == 201, varied.text
    (third,) = varied.json()["items"]
    assert (third["operation"], third["parent_id"], third["root_id"]) == (
        "variation",
        second["id"],
        first["id"],
    )
    assert third["prompt"] == "add a hat"  # a variation keeps its parent's prompt

    line = (await client.get(f"/api/images/{third['id']}/lineage")).json()["items"]
    assert [i["id"] for i in line] == [first["id"], second["id"], third["id"]]
    mine = (await client.get("/api/images")).json()["items"]
    assert {i["id"] for i in mine} == {first["id"], second["id"], third["id"]}

    # one ledger row per call, priced per image
    rows = [r for r in await ledger_rows(app) if r.endpoint == "images"]
    assert len(rows) == 3 and all(r.outcome == "ok" for r in rows)
    assert [round(r.cost, 6) for r in rows] == [0.04, 0.04, 0.04]
    assert {r.model for r in rows} == {"drawer/scripted-image"}
    usage = (await client.get("/api/me/usage")).json()
    assert round(sum(m["cost"] for m in usage["by_model"]), 6) == 0.12

    # deleting the first image removes its bytes; its edit stays, now without a parent
    service = _service(app)
    first_blob = service.blobs.path((await service.get(user["id"], first["id"])).sha256)
    assert first_blob.is_file()
    assert (await client.delete(f"/api/images/{first['id']}")).status_code == 204
    assert not first_blob.is_file()
    assert (await client.get(first["url"])).status_code == 404
    kept = (await client.get(f"/api/images/{second['id']}")).json()
    assert kept["parent_id"] is None and kept["root_id"] == first["id"]
    assert (await client.get(second["url"])).status_code == 200


async def test_comfyui_workflow_gets_the_mapped_fields(
    client: Client, user: dict[str, Any], image_server: ScriptedImages
) -> None:
    await add_comfy_provider(client, image_server)
    made = await client.post(
        "/api/images",
        json={
            "prompt": "a lighthouse at dusk",
            "negative_prompt": "blurry",
            "seed": 7,
            "size": "320x192",
        },
    )
    assert made.status_code == 201, made.text
    (image,) = made.json()["items"]
    assert (image["seed"], image["width"], image["height"]) == (7, 320, 192)
    assert image["model"] == "comfy/comfyui"
    queued = next(r for r in image_server.requests if r["path"] == "/prompt")
    graph = queued["body"]["prompt"]
    assert graph["6"]["inputs"]["text"] == "a lighthouse at dusk"
    assert graph["7"]["inputs"]["text"] == "blurry"
    assert graph["3"]["inputs"]["seed"] == 7
    assert (graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"]) == (320, 192)
    picture = (await client.get(image["url"])).content
    assert picture == draw("a lighthouse at dusk", 7, 320, 192)

    # an edit uploads the image and points the workflow's LoadImage node at it
    edited = await client.post(f"/api/images/{image['id']}/edits", json={"prompt": "stormy"})
    assert edited.status_code == 201, edited.text
    uploads = [r for r in image_server.requests if r["path"] == "/upload/image"]
    assert len(uploads) == 1
    graph = [r for r in image_server.requests if r["path"] == "/prompt"][-1]["body"]["prompt"]
    assert graph["10"]["inputs"]["image"] == uploads[0]["body"]["name"]
    assert edited.json()["items"][0]["parent_id"] == image["id"]


async def test_a_comfyui_edit_sends_the_mask_only_to_a_workflow_that_maps_one(
    app: Any, client: Client, user: dict[str, Any], image_server: ScriptedImages
) -> None:
    import io

    from PIL import Image

    from parley.errors import Invalid

    await add_comfy_provider(client, image_server)  # the sample mapping: no mask
    picture = draw("a quiet harbour", 1, 64, 64)
    mask_image = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask_image.paste((0, 0, 0, 0), (0, 0, 32, 32))
    out = io.BytesIO()
    mask_image.save(out, format="PNG")
    mask = out.getvalue()
    images = _service(app)
    try:
        await images.make(user["id"], operation="edit", prompt="a boat", image=picture, mask=mask)
        raise AssertionError("a mask went to a workflow that cannot take one")
    except Invalid as exc:
        assert exc.code == "mask_unsupported" and "takes no mask" in exc.message
    assert not [r for r in image_server.requests if r["path"] == "/prompt"]

    workflow = sample_workflow()
    workflow["11"] = {"class_type": "LoadImageMask", "inputs": {"image": "", "channel": "alpha"}}
    made = await client.post(
        "/api/admin/images/providers",
        json={
            "name": "inpaint",
            "kind": "comfyui",
            "base_url": image_server.root_url,
            "api_key": "img-secret",
            "workflow": workflow,
            "mapping": {**SAMPLE_MAPPING, "mask": "11.inputs.image"},
        },
    )
    assert made.status_code == 201, made.text
    result = await images.make(
        user["id"], operation="edit", prompt="a boat", image=picture, mask=mask, provider="inpaint"
    )
    assert len(result.images) == 1
    uploads = [r["body"]["name"] for r in image_server.requests if r["path"] == "/upload/image"]
    graph = [r for r in image_server.requests if r["path"] == "/prompt"][-1]["body"]["prompt"]
    assert graph["10"]["inputs"]["image"] == uploads[-2]  # the picture, then the mask
    assert graph["11"]["inputs"]["image"] == uploads[-1]
    assert image_server.state.uploads[uploads[-1]] == mask


async def test_a_bad_comfyui_mapping_is_refused_clearly(
    client: Client, user: dict[str, Any], image_server: ScriptedImages
) -> None:
    bad = await client.post(
        "/api/admin/images/providers",
        json={
            "name": "comfy",
            "kind": "comfyui",
            "base_url": image_server.root_url,
            "workflow": {"6": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}}},
            "mapping": {"prompt": "6.inputs.txt"},
        },
    )
    assert bad.status_code == 422 and bad.json()["code"] == "bad_mapping"
    assert "6.inputs.txt" in bad.json()["detail"]


async def test_url_answers_are_downloaded_and_served_by_parley(
    client: Client, user: dict[str, Any], image_server: ScriptedImages
) -> None:
    await add_openai_provider(client, image_server)
    image_server.prefer_url = True  # the provider answers with its own URLs
    made = await client.post("/api/images", json={"prompt": "a blue boat"})
    assert made.status_code == 201, made.text
    (image,) = made.json()["items"]
    assert image["url"].startswith("/api/images/")  # Parley's, not the provider's
    assert (await client.get(image["url"])).content == draw("a blue boat", 0, 256, 256)


async def test_no_provider_is_a_clear_503_and_tools_are_withheld(
    client: Client, user: dict[str, Any]
) -> None:
    made = await client.post("/api/images", json={"prompt": "anything"})
    assert made.status_code == 503 and made.json()["code"] == "images_unavailable"
    assert "administrator" in made.json()["detail"]
    tools = (await client.get("/api/tools")).json()
    assert "generate_image" not in {t["name"] for t in tools["items"]}
    assert "generate_image" in {t["name"] for t in tools["unavailable"]}
    assert (await client.get("/api/images/settings")).json()["available"] is False


async def test_providers_are_for_admins_only(
    app: Any, client: Client, user: dict[str, Any], image_server: ScriptedImages
) -> None:
    async with make_client(app) as bob:
        await signup(bob, "bob@example.com")
        refused = await bob.post(
            "/api/admin/images/providers",
            json={"name": "x", "kind": "openai", "base_url": image_server.base_url},
        )
        assert refused.status_code == 403
        assert (await bob.get("/api/admin/images/providers")).status_code == 403
