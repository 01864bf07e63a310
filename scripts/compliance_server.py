#!/usr/bin/env python3
"""A throwaway Parley for running API compliance suites against ``/v1/responses``.

    .venv/bin/python scripts/compliance_server.py [--port 8765]

Suites such as the Open Responses compliance test (``scripts/compliance-test.ts``
in ``openresponses/openresponses``) check the shape of what a server sends, not
how clever its model is, so this server answers with a rule-based model at the
model boundary (``ScriptedModel`` with a ``default`` function): no model to
download, no API key, and the same answer every run. Everything else is the real
Parley: ``create_app`` with every default feature, a fresh SQLite data directory
in a temporary folder (deleted at exit), a user signed up over HTTP and an API
key made for it. It prints the base URL, the key and the model name to pass to
the suite, then serves until interrupted. See docs/DEVELOPMENT.md.

The rules (:func:`answer`): when the request offers tools and the conversation
does not end with tool results, call the first tool with arguments made from its
JSON schema (a plausible value per required property); when it ends with tool
results, answer with text quoting them; otherwise a short text answer that says
how many images it was shown.
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from parley.api.app import create_app
from parley.config import load_settings
from parley.messages import ToolCall
from parley.providers.base import ChatRequest
from parley.providers.scripted import Reply, ScriptedModel, ScriptedProvider

PROVIDER = "compliance"
MODEL = "rules"
EMAIL = "compliance@example.com"
PASSWORD = "compliance-suite"  # noqa: S105 (a throwaway account in a temporary folder)

# Plausible values for properties by name; anything else gets one by type.
_BY_NAME: dict[str, Any] = {
    "location": "San Francisco, CA",
    "city": "San Francisco",
    "unit": "celsius",
    "query": "open responses",
    "word": "hello",
    "expression": "2 + 2",
}


def example_value(name: str, schema: dict[str, Any]) -> Any:
    """A value that fits ``schema`` (a JSON schema), as a model might pick it."""
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        return example_arguments(schema)
    if kind == "array":
        items = schema.get("items")
        return [example_value(name, items)] if isinstance(items, dict) else []
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return _BY_NAME.get(name, f"example {name}")


def example_arguments(schema: dict[str, Any] | None) -> dict[str, Any]:
    """Arguments for a tool whose parameters are ``schema``: every required
    property (every property when none is marked required)."""
    schema = schema or {}
    properties: dict[str, Any] = schema.get("properties") or {}
    required = schema.get("required") or list(properties)
    return {
        name: example_value(name, properties.get(name) or {})
        for name in required
        if isinstance(name, str)
    }


def answer(request: ChatRequest) -> Reply:
    """The rule-based model: see the module docstring."""
    last = request.messages[-1] if request.messages else None
    if last is not None and last.role == "tool":
        results = [m.content for m in request.messages if m.role == "tool"][-3:]
        return Reply(text="The tool said: " + " | ".join(results), chunk_size=2)
    if request.tools:
        tool = request.tools[0]
        arguments = json.dumps(example_arguments(tool.parameters))
        # Stable per conversation length, unique within one answer.
        call_id = f"call_{len(request.messages)}_{tool.name}"
        return Reply(tool_calls=[ToolCall(call_id, tool.name, arguments)])
    images = sum(len(m.images) for m in request.messages)
    seen = f" I was shown {images} image(s)." if images else ""
    question = last.content.strip() if last is not None else ""
    return Reply(
        text=f"Hello! This is Parley's compliance model answering {question[:60]!r}.{seen}",
        chunk_size=2,
    )


def _sign_up(base: str) -> str:
    """Sign the first user up over HTTP and make an API key; returns the key."""
    with httpx.Client(base_url=base, timeout=30) as client:
        signup = client.post("/api/auth/signup", json={"email": EMAIL, "password": PASSWORD})
        if signup.status_code != 201:
            raise SystemExit(f"sign-up failed ({signup.status_code}): {signup.text}")
        csrf = client.cookies["parley_csrf"]
        made = client.post("/api/keys", json={"name": "compliance"}, headers={"X-CSRF-Token": csrf})
        if made.status_code != 201:
            raise SystemExit(f"making an API key failed ({made.status_code}): {made.text}")
        return str(made.json()["key"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (8765)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="parley-compliance-") as tmp:
        settings = load_settings(
            data_dir=Path(tmp) / "data",
            host="127.0.0.1",
            port=args.port,
            local_model_enabled=False,
            providers=[],
            title_model="none",
        )
        model = ScriptedModel(default=answer)
        app = create_app(settings, extra_providers=[ScriptedProvider(PROVIDER, {MODEL: model})])
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise SystemExit(f"Parley did not start on port {args.port}.")
            time.sleep(0.05)
        base = f"http://127.0.0.1:{args.port}"
        key = _sign_up(base)
        print(f"base URL: {base}/v1", flush=True)
        print(f"API key:  {key}", flush=True)
        print(f"model:    {PROVIDER}/{MODEL}", flush=True)
        print(
            "run:      npx tsx scripts/compliance-test.ts "
            f"--base-url {base}/v1 --api-key {key} --model {PROVIDER}/{MODEL}",
            flush=True,
        )
        # Ctrl-C or a plain kill stops the server; the temporary folder goes with it.
        signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
        try:
            while thread.is_alive():
                thread.join(timeout=0.5)
        except KeyboardInterrupt:
            server.should_exit = True
            thread.join(timeout=10)


if __name__ == "__main__":
    main()
