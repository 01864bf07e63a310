"""A file uploaded to a conversation is in the code interpreter's working directory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from conftest import TEST_LIMITS, require_sandbox
from parley.api.app import create_app
from parley.config import load_settings
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel, ScriptedProvider

READ_CSV = (
    "import pandas as pd\nprint('units total', pd.read_csv('/mnt/data/sales.csv')['units'].sum())"
)


async def test_uploaded_csv_is_readable_by_run_python(tmp_path: Path) -> None:
    config = require_sandbox()
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}",
        local_model_enabled=False,
        providers=[],
        sandbox_bwrap=config.bwrap,
        sandbox_python=config.python,
        sandbox_wall_s=TEST_LIMITS.wall_seconds,
    )
    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("c1", "run_python", json.dumps({"code": READ_CSV}))]), "Done."]
    )
    app = create_app(settings, extra_providers=[ScriptedProvider("scripted", {"scripted": model})])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.post("/api/auth/signup", json={"email": "a@x.io", "password": "12345678"})
            headers = {"X-CSRF-Token": client.cookies["parley_csrf"]}
            conv = (
                await client.post(
                    "/api/conversations", json={"model": "scripted/scripted"}, headers=headers
                )
            ).json()["id"]
            upload = await client.post(
                "/api/files",
                data={"conversation_id": conv},
                files={"file": ("sales.csv", b"region,units\nnorth,3\nsouth,4\n", "text/csv")},
                headers=headers,
            )
            assert upload.status_code in (200, 201, 202), upload.text
            file_id = upload.json().get("id") or upload.json()["file"]["id"]
            for _ in range(100):
                status = (await client.get(f"/api/files/{file_id}")).json()
                if status.get("status") in ("ready", "failed"):
                    break
                await asyncio.sleep(0.1)
            response = await client.post(
                f"/api/conversations/{conv}/messages",
                json={"content": "total units?"},
                headers=headers,
            )
            assert '"name":"run_python"' in response.text
            result = next(
                line
                for line in response.text.splitlines()
                if line.startswith('data: {"id":"c1"') and '"output"' in line
            )
            output = json.loads(result[6:])["output"]
            assert "units total 7" in output
