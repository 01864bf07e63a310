"""Every JSON route declares its response model, core and feature routes alike.

The web app's API types are generated from ``/openapi.json``: a route whose 2xx
``application/json`` response has no schema (``{}``), or only a free-form
object (a handler returning ``dict[str, Any]``), gives the browser an
``unknown`` and the two sides drift apart unnoticed. This walks the document
of an app with every feature on and names each such route.

File downloads (``FileResponse``) and streams are not JSON and are not checked;
a route that can answer either way (``Accept: text/event-stream`` or JSON) is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parley.api.app import create_app
from parley.config import load_settings

JSON = "application/json"


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # Building the document needs the routers only: the app is never started,
    # so the database named here is never opened.
    root: Path = tmp_path_factory.mktemp("openapi")
    settings = load_settings(
        data_dir=root / "data",
        database_url=f"sqlite+aiosqlite:///{root / 'unused.db'}",
        local_model_enabled=False,
        providers=[],
    )
    return create_app(settings).openapi()


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    name = ref.removeprefix("#/components/schemas/")
    resolved: dict[str, Any] = doc.get("components", {}).get("schemas", {}).get(name, {})
    return resolved


def typed(schema: dict[str, Any] | None, doc: dict[str, Any]) -> bool:
    """A schema a client can generate a real type from (not ``{}``, not a bare object)."""
    if not schema:
        return False
    if "$ref" in schema:
        return typed(_resolve(schema, doc), doc)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return all(typed(part, doc) for part in schema[combinator])
    kind = schema.get("type")
    if kind == "array":
        return typed(schema.get("items"), doc)
    if kind == "object" or "properties" in schema:
        return bool(schema.get("properties"))
    return kind in {"string", "integer", "number", "boolean", "null"} or "enum" in schema


def untyped_json_routes(doc: dict[str, Any]) -> list[str]:
    missing = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                if not str(status).startswith("2"):
                    continue
                media = response.get("content", {}).get(JSON)
                if media is not None and not typed(media.get("schema"), doc):
                    missing.append(f"{method.upper()} {path} ({status})")
    return sorted(missing)


def test_the_document_covers_core_and_feature_routes(openapi: dict[str, Any]) -> None:
    paths = set(openapi["paths"])
    for expected in (
        "/api/auth/me",  # core
        "/api/conversations",
        "/api/memories",  # memory
        "/api/files",  # knowledge
        "/api/collections",
        "/api/tools",  # web tools
        "/api/admin/mcp",
        "/api/sandbox/outputs/{output_id}",  # code sandbox
    ):
        assert expected in paths, f"{expected} is missing from /openapi.json"


def test_every_json_route_declares_its_response_model(openapi: dict[str, Any]) -> None:
    missing = untyped_json_routes(openapi)
    assert not missing, (
        "These JSON routes have no response model (declare one: a pydantic model "
        "as the return type, or response_model=...):\n  " + "\n  ".join(missing)
    )


def test_the_check_itself_tells_typed_from_untyped() -> None:
    doc = {
        "components": {
            "schemas": {
                "Thing": {"type": "object", "properties": {"id": {"type": "string"}}},
                "Loose": {"type": "object", "additionalProperties": True},
            }
        }
    }
    ref = {"$ref": "#/components/schemas/Thing"}
    assert typed(ref, doc)
    assert typed({"type": "array", "items": ref}, doc)
    assert typed({"anyOf": [ref, {"type": "null"}]}, doc)
    assert not typed({}, doc)
    assert not typed(None, doc)
    assert not typed({"type": "object", "additionalProperties": True}, doc)
    assert not typed({"$ref": "#/components/schemas/Loose"}, doc)
    assert not typed({"type": "array", "items": {}}, doc)
