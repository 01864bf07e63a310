"""Images in a chat: the composer's image mode writes the exchange itself; the
model's ``generate_image``/``edit_image`` tools show pictures as step
attachments; both survive a reload, and the images are in the export."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from imghelpers import add_openai_provider

from apihelpers import Client, parse_sse
from parley.images.testing import ScriptedImages
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel


async def test_composer_image_mode_adds_an_exchange_and_edits_keep_the_line(
    client: Client, user: dict[str, Any], image_server: ScriptedImages
) -> None:
    await add_openai_provider(client, image_server, price=0.02)
    conv = (await client.post("/api/conversations", json={})).json()["id"]
    made = await client.post(f"/api/conversations/{conv}/images", json={"prompt": "a green teapot"})
    assert made.status_code == 201, made.text
    first = made.json()
    (image,) = first["items"]
    assert image["conversation_id"] == conv and image["message_id"] == first["message_id"]

    edited = await client.post(
        f"/api/conversations/{conv}/images",
        json={"prompt": "make it purple", "operation": "edit", "parent_id": image["id"]},
    )
    assert edited.status_code == 201, edited.text
    (child,) = edited.json()["items"]
    assert child["parent_id"] == image["id"] and child["root_id"] == image["id"]

    view = (await client.get(f"/api/conversations/{conv}")).json()  # a reload
    messages = view["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "a green teapot"
    assert messages[2]["content"] == "Edit: make it purple"
    step = messages[1]["steps"][0]
    assert step["name"] == "generate_image"
    assert step["attachments"][0]["url"] == image["url"]
    assert step["attachments"][0]["kind"] == "image"
    later = messages[3]["steps"][0]
    assert later["name"] == "edit_image"
    assert json.loads(later["arguments"])["image_id"] == image["id"]
    assert messages[3]["cost"] == 0.02


async def test_the_model_draws_with_the_tool_and_the_user_sees_it(
    client: Client, user: dict[str, Any], image_server: ScriptedImages, scripted: ScriptedModel
) -> None:
    await add_openai_provider(client, image_server)
    scripted.enqueue(
        Reply(tool_calls=[ToolCall("call_1", "generate_image", '{"prompt": "a tiny robot"}')]),
        Reply(text="Here is your robot."),
    )
    conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()[
        "id"
    ]
    sent = await client.post(
        f"/api/conversations/{conv}/messages", json={"content": "draw a tiny robot"}
    )
    assert sent.status_code == 200, sent.text
    done = dict(parse_sse(sent.text))["done"]["message"]
    step = done["steps"][0]
    assert step["name"] == "generate_image" and not step.get("is_error")
    (shown,) = step["attachments"]
    assert shown["url"].startswith("/api/images/") and shown["kind"] == "image"
    assert (await client.get(shown["url"])).status_code == 200
    # the model read the image's id, so it can edit it next
    tool_result = scripted.requests[-1].messages[-1]
    assert shown["id"] in tool_result.content
    images = (await client.get("/api/images", params={"conversation_id": conv})).json()["items"]
    assert [i["id"] for i in images] == [shown["id"]]

    scripted.enqueue(
        Reply(
            tool_calls=[
                ToolCall(
                    "call_2", "edit_image", json.dumps({"image_id": shown["id"], "prompt": "red"})
                )
            ]
        ),
        Reply(text="Now it is red."),
    )
    again = await client.post(f"/api/conversations/{conv}/messages", json={"content": "red?"})
    step = dict(parse_sse(again.text))["done"]["message"]["steps"][0]
    assert step["name"] == "edit_image" and not step.get("is_error"), step
    child = (await client.get(f"/api/images/{step['attachments'][0]['id']}")).json()
    assert child["parent_id"] == shown["id"]


async def test_images_are_in_the_export_with_their_bytes(
    client: Client, user: dict[str, Any], image_server: ScriptedImages
) -> None:
    await add_openai_provider(client, image_server)
    (image,) = (await client.post("/api/images", json={"prompt": "a kite"})).json()["items"]
    edited = await client.post(f"/api/images/{image['id']}/edits", json={"prompt": "two kites"})
    (child,) = edited.json()["items"]
    document = (await client.get("/api/me/export")).json()
    exported = document["features"]["images"]["images"]
    assert [(i["id"], i["parent_id"]) for i in exported] == [
        (image["id"], None),
        (child["id"], image["id"]),
    ]
    packed = await client.get("/api/me/export", params={"files": "true"})
    with zipfile.ZipFile(io.BytesIO(packed.content)) as archive:
        names = set(archive.namelist())
    assert {f"files/{i['sha256']}" for i in exported} <= names


async def test_a_temporary_chats_pictures_go_with_it_a_normal_chats_stay(
    app: Any, client: Client, user: dict[str, Any], image_server: ScriptedImages
) -> None:
    from parley.images.service import ImageService

    service: ImageService = app.state.services.require(ImageService)
    await add_openai_provider(client, image_server)
    kept_conv = (await client.post("/api/conversations", json={})).json()["id"]
    gone_conv = (await client.post("/api/conversations", json={"temporary": True})).json()["id"]
    (kept,) = (
        await client.post(f"/api/conversations/{kept_conv}/images", json={"prompt": "stays"})
    ).json()["items"]
    (gone,) = (
        await client.post(f"/api/conversations/{gone_conv}/images", json={"prompt": "goes"})
    ).json()["items"]
    gone_blob = service.blobs.path((await service.get(user["id"], gone["id"])).sha256)
    assert gone_blob.is_file()
    for conv in (kept_conv, gone_conv):
        assert (await client.delete(f"/api/conversations/{conv}")).status_code == 204
    assert (await client.get(f"/api/images/{gone['id']}")).status_code == 404
    assert not gone_blob.is_file()
    still = (await client.get(f"/api/images/{kept['id']}")).json()
    assert still["conversation_id"] is None
    assert (await client.get(still["url"])).status_code == 200
