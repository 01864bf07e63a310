"""Items: the Responses API's unit of a conversation, and Parley's stored rows.

A Parley chat is a tree of message rows; an answer's tool calls are ``steps`` on
its row (with where they fell in the text). The API sees a flat list of items:
messages, ``function_call`` and ``function_call_output``, and for Parley's own
tools the hosted-tool items (``web_search_call``, ``file_search_call``,
``code_interpreter_call``, ``mcp_call``). This module maps both ways:

- ``parse_input``: the caller's ``input`` (a string or items) checked and
  normalised, with a clear error naming the item that is wrong;
- ``row_items``: a stored row as items (``GET /v1/conversations/{id}/items``);
- ids: ``conv_<chat id>``, ``resp_<record id>``, ``msg_<message id>``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from parley.errors import Invalid
from parley.messages import ImagePart
from parley.storage.tables import Message as MessageRow

__all__ = [
    "HOSTED_ITEM",
    "InputItem",
    "conv_id",
    "hosted_item",
    "parse_input",
    "plain_id",
    "resp_id",
    "row_items",
]

MAX_INPUT_ITEMS = 500
# Items a client sends back from earlier output that Parley keeps its own record
# of (reasoning, hosted tools' calls, approval requests): skipped, not refused.
SKIPPED = frozenset(
    {
        "reasoning",
        "item_reference",
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "mcp_call",
        "mcp_list_tools",
        "mcp_approval_request",
    }
)
SUMMARY_PREFIX = "Summary of the earlier conversation:\n"
MAX_IMAGE_URL = 20_000_000  # a data URL of a ~15 MB image

# Parley's tool -> the hosted tool's item type (what OpenAI's clients know)
HOSTED_ITEM = {
    "web_search": "web_search_call",
    "search_knowledge": "file_search_call",
    "run_python": "code_interpreter_call",
}


def seal(summary: str) -> str:
    """A ``compaction`` item's content: not encrypted, Parley's summary as base64
    JSON (the caller could write any prompt anyway)."""
    return base64.b64encode(json.dumps({"v": 1, "summary": summary}).encode()).decode()


def summary_of(content: str) -> str:
    """The instruction a ``compaction`` item Parley made stands for."""
    try:
        data = json.loads(base64.b64decode(content, validate=True))
        summary = data["summary"] if data.get("v") == 1 else None
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError):
        summary = None
    if not isinstance(summary, str):
        raise Invalid("A compaction item's encrypted_content is not one Parley made.")
    return SUMMARY_PREFIX + summary


def conv_id(plain: str) -> str:
    return "conv_" + plain


def resp_id(plain: str) -> str:
    return "resp_" + plain


def plain_id(value: str, prefix: str) -> str:
    """An API id without its prefix (a chat's own id is accepted as it is: a chat
    started in the web app is continued by the id in its address)."""
    return value[len(prefix) :] if value.startswith(prefix) else value


@dataclass(slots=True)
class InputItem:
    kind: Literal["message", "function_call", "function_call_output", "approval"]
    role: str = "user"
    text: str = ""
    images: list[ImagePart] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    output: str = ""
    approve: bool = False  # an approval: the answer to ``call_id`` (the request's id)
    item: dict[str, Any] = field(default_factory=dict)  # as stored for input_items


def _text_of(parts: Any, where: str, role: str) -> tuple[str, list[ImagePart]]:
    if isinstance(parts, str):
        return parts, []
    if not isinstance(parts, list):
        raise Invalid(f"{where}.content must be a string or a list of content parts.")
    texts: list[str] = []
    images: list[ImagePart] = []
    for n, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text", "summary_text", "refusal"):
            value = part.get("text", part.get("refusal", ""))
            if not isinstance(value, str):
                raise Invalid(f"{where}.content[{n}].text must be a string.")
            texts.append(value)
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url.startswith(("data:image/", "https://")):
                raise Invalid(
                    f"{where}.content[{n}].image_url must be a data:image/... URL or an "
                    "https URL (file_id images are not supported: send the image itself)."
                )
            if len(url) > MAX_IMAGE_URL:
                raise Invalid(f"{where}.content[{n}] is too large (20 MB at most).")
            if role != "user":
                raise Invalid(f"{where}: only user messages may carry images.")
            media = (
                url[5 : url.index(";")] if url.startswith("data:") and ";" in url else "image/png"
            )
            images.append(ImagePart(url, media))
        elif kind == "input_file":
            raise Invalid(
                f"{where}.content[{n}]: input_file is not supported; upload the file to a "
                "collection in Parley and use the file_search tool."
            )
        else:
            raise Invalid(f"{where}.content[{n}] has an unknown type {kind!r}.")
    return "\n".join(texts), images


def _output_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return _text_of(value, where, "tool")[0]
    raise Invalid(f"{where}.output must be a string or a list of content parts.")


def parse_input(value: str | list[dict[str, Any]]) -> list[InputItem]:
    """The caller's input as items. Reasoning items and item references are
    dropped (Parley keeps its own record of earlier turns)."""
    if isinstance(value, str):
        text = value
        return [
            InputItem(
                "message",
                "user",
                text,
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            )
        ]
    if len(value) > MAX_INPUT_ITEMS:
        raise Invalid(f"input holds at most {MAX_INPUT_ITEMS} items.")
    items: list[InputItem] = []
    for n, raw in enumerate(value):
        where = f"input[{n}]"
        if not isinstance(raw, dict):
            raise Invalid(f"{where} must be an item (a JSON object).")
        kind = raw.get("type", "message" if "role" in raw else None)
        if kind == "message":
            role = raw.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise Invalid(f"{where}.role must be user, assistant, system or developer.")
            text, images = _text_of(raw.get("content", ""), where, role)
            items.append(InputItem("message", role, text, images, item=_message_item(raw)))
        elif kind == "function_call":
            call_id, name = raw.get("call_id"), raw.get("name")
            if not isinstance(call_id, str) or not call_id or not isinstance(name, str):
                raise Invalid(f"{where}: a function_call needs call_id and name.")
            arguments = raw.get("arguments", "{}")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments)
            items.append(
                InputItem(
                    "function_call",
                    call_id=call_id,
                    name=name,
                    arguments=arguments,
                    item={**raw, "type": "function_call", "status": "completed"},
                )
            )
        elif kind == "function_call_output":
            call_id = raw.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise Invalid(f"{where}: a function_call_output needs the call_id it answers.")
            output = _output_text(raw.get("output", ""), where)
            items.append(
                InputItem(
                    "function_call_output",
                    call_id=call_id,
                    output=output,
                    item={**raw, "type": "function_call_output", "status": "completed"},
                )
            )
        elif kind == "mcp_approval_response":
            request, approve = raw.get("approval_request_id"), raw.get("approve")
            if not isinstance(request, str) or not isinstance(approve, bool):
                raise Invalid(f"{where}: an approval needs approval_request_id and approve.")
            items.append(InputItem("approval", call_id=request, approve=approve, item=dict(raw)))
        elif kind == "compaction":  # a summary /v1/responses/compact made
            content = raw.get("encrypted_content")
            text = summary_of(content if isinstance(content, str) else "")
            items.append(InputItem("message", "developer", text, item=dict(raw)))
        elif kind in SKIPPED:
            continue
        else:
            raise Invalid(f"{where} has a type Parley does not take: {kind!r}.")
    if not items:
        raise Invalid("input is empty: send a message.")
    return items


def _message_item(raw: dict[str, Any]) -> dict[str, Any]:
    """The message as ``input_items`` lists it later: string content becomes one
    part, and ``output_text`` parts get the ``annotations``/``logprobs`` lists the
    specification requires (callers, the compliance suite among them, send an
    assistant turn as plain text)."""
    content = raw.get("content", "")
    role = raw["role"]
    if isinstance(content, str):
        kind = "output_text" if role == "assistant" else "input_text"
        content = [{"type": kind, "text": content}]
    content = [
        part | {key: part.get(key) or [] for key in ("annotations", "logprobs")}
        if isinstance(part, dict) and part.get("type") == "output_text"
        else part
        for part in content
    ]
    return {"type": "message", "role": role, "content": content, "status": "completed"}


# ---------------------------------------------------------------- stored rows


def message_item(item_id: str, role: str, text: str, status: str = "completed") -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    part: dict[str, Any] = {"type": kind, "text": text}
    if kind == "output_text":
        part |= {"annotations": [], "logprobs": []}
    return {"type": "message", "id": item_id, "status": status, "role": role, "content": [part]}


def function_call_item(item_id: str, step: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": step["id"],
        "name": step["name"],
        "arguments": step.get("arguments") or "{}",
        "status": status,
    }


def hosted_item(item_id: str, step: dict[str, Any], status: str) -> dict[str, Any]:
    """A Parley tool's call as the hosted tool's item (MCP tools: ``mcp_call``)."""
    name = step["name"]
    kind = HOSTED_ITEM.get(name)
    try:
        arguments = json.loads(step.get("arguments") or "{}")
    except ValueError:
        arguments = {}
    output = step.get("output")
    failed = bool(step.get("is_error"))
    if kind == "web_search_call":
        return {
            "type": kind,
            "id": item_id,
            "status": "failed" if failed else status,
            "action": {"type": "search", "query": str(arguments.get("query", ""))},
        }
    if kind == "file_search_call":
        return {
            "type": kind,
            "id": item_id,
            "status": "failed" if failed else status,
            "queries": [str(arguments.get("query", ""))],
            "results": None,
        }
    if kind == "code_interpreter_call":
        return {
            "type": kind,
            "id": item_id,
            "status": "failed" if failed else status,
            "code": str(arguments.get("code", "")),
            "container_id": "parley-sandbox",
            "outputs": [{"type": "logs", "logs": output}] if output else None,
        }
    server, _, tool = name.partition("__")
    return {
        "type": "mcp_call",
        "id": item_id,
        "server_label": server,
        "name": tool or name,
        "arguments": step.get("arguments") or "{}",
        "output": None if failed else output,
        "error": output if failed else None,
        "status": "failed" if failed else status,
    }


def row_items(row: MessageRow, client_names: set[str] | None = None) -> list[dict[str, Any]]:
    """A stored message as items, in the order things happened: text, a call,
    its output, text... A step is a ``function_call`` (plus its output when the
    caller sent one) unless it is one of Parley's own tools (``client_names``
    None: every step with no stored output, or whose name has no hosted item, is
    the caller's)."""
    if row.role == "user":
        return [message_item("msg_" + row.id, "user", row.content)]
    if row.role != "assistant":
        return [message_item("msg_" + row.id, row.role, row.content)]
    items: list[dict[str, Any]] = []
    content, written, segment = row.content, 0, 0

    def text(upto: int) -> None:
        nonlocal written, segment
        said = content[written:upto]
        if said.strip():
            suffix = f"_{segment}" if segment else ""
            items.append(message_item(f"msg_{row.id}{suffix}", "assistant", said.strip()))
            segment += 1
        written = upto

    for n, step in enumerate(row.steps or []):
        text(min(max(step.get("offset", written), written), len(content)))
        caller = (
            step["name"] in client_names
            if client_names is not None
            else step["name"] not in HOSTED_ITEM and "__" not in step["name"]
        )
        if caller:
            items.append(function_call_item(f"fc_{row.id}_{n}", step, "completed"))
            if "output" in step:
                items.append(
                    {
                        "type": "function_call_output",
                        "id": f"fco_{row.id}_{n}",
                        "call_id": step["id"],
                        "output": step.get("output", ""),
                        "status": "completed",
                    }
                )
        else:
            items.append(hosted_item(f"tc_{row.id}_{n}", step, "completed"))
    text(len(content))
    return items
