"""A file uploaded to a conversation is in the code interpreter's working directory."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from apihelpers import Client
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel

READ_CSV = (
    "import pandas as pd\nprint('units total', pd.read_csv('/mnt/data/sales.csv')['units'].sum())"
)


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(
        [Reply(tool_calls=[ToolCall("c1", "run_python", json.dumps({"code": READ_CSV}))]), "Done."]
    )


async def test_uploaded_csv_is_readable_by_run_python(client: Client, user: Any) -> None:
    conv = (await client.post("/api/conversations", json={"model": "scripted/scripted"})).json()[
        "id"
    ]
    upload = await client.post(
        "/api/files",
        data={"conversation_id": conv},
        files={"file": ("sales.csv", b"region,units\nnorth,3\nsouth,4\n", "text/csv")},
    )
    assert upload.status_code in (200, 201, 202), upload.text
    file_id = upload.json().get("id") or upload.json()["file"]["id"]
    for _ in range(100):
        status = (await client.get(f"/api/files/{file_id}")).json()
        if status.get("status") in ("ready", "failed"):
            break
        await asyncio.sleep(0.1)
    response = await client.post(
        f"/api/conversations/{conv}/messages", json={"content": "total units?"}
    )
    assert '"name":"run_python"' in response.text
    result = next(
        line
        for line in response.text.splitlines()
        if line.startswith('data: {"id":"c1"') and '"output"' in line
    )
    output = json.loads(result[6:])["output"]
    assert "units total 7" in output
