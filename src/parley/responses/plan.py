"""A request's ``tools`` and ``tool_choice``, and its ``text.format``, in the
turn's terms: the caller's functions become client tools (offered, never run),
the hosted tools become Parley's own (``web_search``, ``search_knowledge``,
``run_python``, an admin's MCP servers); a tool this server lacks is a clear
error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from parley.errors import Invalid
from parley.messages import ToolSpec
from parley.responses.wire import ResponseCreate

__all__ = ["ToolPlan", "answer_format", "plan_tools"]


@dataclass(slots=True)
class ToolPlan:
    """The caller's function tools, Parley's tools for the hosted ones, the choice."""

    client: tuple[ToolSpec, ...]
    parley: tuple[str, ...]
    choice: str | None


def plan_tools(body: ResponseCreate, available: set[str]) -> ToolPlan:
    """The request's tools: the caller's functions, and Parley's tools for the
    hosted ones (``web_search``, ``file_search``, ``code_interpreter``, ``mcp``)."""
    client: list[ToolSpec] = []
    parley: list[str] = []
    for n, tool in enumerate(body.tools):
        kind = str(tool.get("type", ""))
        if kind == "function":
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                raise Invalid(f"tools[{n}]: a function tool needs a name.")
            parameters = tool.get("parameters") or {"type": "object", "properties": {}}
            description = str(tool.get("description") or "")
            strict = tool.get("strict") is True
            client.append(ToolSpec(name, description, parameters, strict=strict))
        elif kind.startswith("web_search"):
            parley.append(_hosted("web_search", available, "Web search", n))
        elif kind == "file_search":
            parley.append(_hosted("search_knowledge", available, "File search", n))
        elif kind == "code_interpreter":
            parley.append(_hosted("run_python", available, "The code interpreter", n))
        elif kind == "mcp":
            parley.extend(_mcp(tool, available, n))
        else:
            raise Invalid(f"tools[{n}]: Parley does not offer tools of type {kind!r}.")
    choice = body.tool_choice
    if choice == "none":
        return ToolPlan((), (), None)
    return ToolPlan(tuple(client), tuple(dict.fromkeys(parley)), _tool_choice(choice))


def _hosted(name: str, available: set[str], what: str, n: int) -> str:
    if name not in available:
        raise Invalid(
            f"tools[{n}]: {what} is not available on this Parley server "
            "(an administrator can set it up in Admin)."
        )
    return name


def _mcp(tool: dict[str, Any], available: set[str], n: int) -> list[str]:
    if tool.get("server_url") or tool.get("connector_id"):
        raise Invalid(
            f"tools[{n}]: Parley connects only to the MCP servers an administrator "
            "added; name one by its server_label (Admin > Tools lists them)."
        )
    label = str(tool.get("server_label") or "")
    names = sorted(name for name in available if name.startswith(label + "__"))
    allowed = tool.get("allowed_tools")
    if isinstance(allowed, dict):
        allowed = allowed.get("tool_names")
    if isinstance(allowed, list):
        names = [name for name in names if name.split("__", 1)[1] in allowed]
    if not label or not names:
        raise Invalid(f"tools[{n}]: no MCP server labelled {label!r} offers tools here.")
    return names


def _tool_choice(choice: str | dict[str, Any]) -> str | None:
    """The Responses ``tool_choice`` as the engine's (``ChatRequest.tool_choice``)."""
    if isinstance(choice, str):
        return None if choice == "auto" else choice
    kind = choice.get("type")
    if kind == "function" and isinstance(choice.get("name"), str):
        return "function:" + choice["name"]
    if kind == "allowed_tools":
        return "required" if choice.get("mode") == "required" else None
    hosted = {"web_search": "web_search", "file_search": "search_knowledge"}
    hosted |= {"code_interpreter": "run_python"}
    for prefix, name in hosted.items():
        if isinstance(kind, str) and kind.startswith(prefix):
            return "function:" + name
    return None


def answer_format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    """``text.format`` as the JSON schema the answer must follow (None: free text)."""
    fmt = (text or {}).get("format") or {}
    kind = fmt.get("type", "text")
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise Invalid("text.format.schema must be a JSON schema object.")
        return schema
    if kind == "json_object":
        return {"type": "object"}
    if kind != "text":
        raise Invalid(f"text.format.type {kind!r} is not one of text, json_object, json_schema.")
    return None
