"""The code interpreter inside the real app: a turn whose tool step carries a chart,
served by ``GET /api/sandbox/outputs/{id}`` to its owner only, with safe headers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apihelpers import Client, make_client, parse_sse, signup
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel
from parley.sandbox.outputs import media_type_for
from parley.sandbox.routes import content_disposition

CHART = (
    "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [3, 5])\nplt.show()\n"
    "open('table.csv', 'w').write('k,v\\na,3\\n')\n"
    "open('page.svg', 'w').write('<svg onload=alert(1)>')"
)


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("call1", "run_python", json.dumps({"code": CHART}))]),
            "Here is your chart.",
        ]
    )


async def _client(app: Any, email: str) -> Client:
    client = make_client(app)
    await signup(client, email)
    return client


async def test_turn_with_chart_and_owner_only_download(app: Any) -> None:
    owner = await _client(app, "owner@example.com")
    intruder = await _client(app, "intruder@example.com")
    conv = (await owner.post("/api/conversations", json={"model": "scripted/scripted"})).json()
    response = await owner.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "plot"}
    )
    events = parse_sse(response.text)
    result = next(data for name, data in events if name == "tool_result")
    assert result["name"] == "run_python" and not result["is_error"], result
    by_name = {a["filename"]: a for a in result["attachments"]}
    assert set(by_name) == {"figure-1.png", "table.csv", "page.svg"}

    stored = (await owner.get(f"/api/conversations/{conv['id']}")).json()["messages"][-1]
    assert stored["steps"][0]["attachments"] == result["attachments"]

    image = await owner.get(by_name["figure-1.png"]["url"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("attachment;")
    assert image.headers["x-content-type-options"] == "nosniff"
    assert image.content.startswith(b"\x89PNG")

    table = await owner.get(by_name["table.csv"]["url"])
    assert table.headers["content-type"] == "text/csv; charset=utf-8"
    assert table.text == "k,v\na,3\n"

    svg = await owner.get(by_name["page.svg"]["url"])
    assert svg.headers["content-type"] == "application/octet-stream"
    assert "sandbox" in svg.headers["content-security-policy"]

    for attachment in by_name.values():
        stolen = await intruder.get(attachment["url"])
        assert stolen.status_code == 404
        assert b"PNG" not in stolen.content and b"svg" not in stolen.content
    anonymous = make_client(app)
    assert (await anonymous.get(by_name["figure-1.png"]["url"])).status_code == 401
    assert (await owner.get("/api/sandbox/outputs/nope")).status_code == 404


def test_media_types_are_checked_against_content() -> None:
    assert media_type_for("chart.png", b"\x89PNG\r\n\x1a\n....") == ("image/png", "image")
    assert media_type_for("chart.png", b"<html><script>") == ("application/octet-stream", "file")
    assert media_type_for("x.html", b"<html>") == ("application/octet-stream", "file")
    assert media_type_for("x.svg", b"<svg>") == ("application/octet-stream", "file")
    assert media_type_for("report.pdf", b"<html>") == ("application/octet-stream", "file")
    assert media_type_for("data.CSV", b"a,b") == ("text/csv", "file")


def test_content_disposition_neutralizes_names() -> None:
    header = content_disposition('../../evil"\r\nSet-Cookie: x=1.csv')
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="')
    ascii_part = header.split('filename="')[1].split('"')[0]
    assert "/" not in ascii_part and '"' not in ascii_part
