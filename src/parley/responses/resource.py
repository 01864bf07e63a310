"""The response object as the API serves it, built from its record.

Fields the record does not hold get the specification's defaults (``top_p``
1.0, no penalties); the request's settings are echoed as sent, function tools
in the specification's full shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from parley.responses.items import conv_id, resp_id
from parley.responses.tables import ResponseRecord

__all__ = ["ECHOED", "resource", "usage_of"]

ECHOED = (
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "max_tool_calls",
    "temperature",
    "top_p",
    "reasoning",
    "text",
    "truncation",
    "metadata",
    "store",
    "background",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "service_tier",
)


def _epoch(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def usage_of(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def resource(record: ResponseRecord) -> dict[str, Any]:
    """The response object as the API serves it."""
    asked = record.request or {}
    text = asked.get("text") or {"format": {"type": "text"}}
    body: dict[str, Any] = {
        "id": resp_id(record.id),
        "object": "response",
        "created_at": _epoch(record.created_at) or 0,
        "completed_at": _epoch(record.completed_at),
        "status": record.status,
        "incomplete_details": (
            {"reason": record.incomplete_reason} if record.incomplete_reason else None
        ),
        "model": record.model,
        "previous_response_id": record.previous_response_id,
        "instructions": asked.get("instructions"),
        "output": list(record.output or []),
        "error": record.error,
        "tools": [_echo_tool(tool) for tool in asked.get("tools") or []],
        "tool_choice": asked.get("tool_choice") or "auto",
        "truncation": asked.get("truncation") or "disabled",
        "parallel_tool_calls": asked.get("parallel_tool_calls", True),
        "text": text,
        "top_p": asked.get("top_p") if asked.get("top_p") is not None else 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "top_logprobs": 0,
        "temperature": (asked.get("temperature") if asked.get("temperature") is not None else 1.0),
        "reasoning": asked.get("reasoning"),
        "usage": record.usage or None,
        "max_output_tokens": asked.get("max_output_tokens"),
        "max_tool_calls": asked.get("max_tool_calls"),
        "store": record.stored,
        "background": bool(asked.get("background")),
        "service_tier": asked.get("service_tier") or "default",
        "metadata": asked.get("metadata") or {},
        "safety_identifier": asked.get("safety_identifier"),
        "prompt_cache_key": asked.get("prompt_cache_key"),
        "user": asked.get("user"),
    }
    if asked.get("conversation"):
        body["conversation"] = {"id": conv_id(record.conversation_id)}
    return body


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool as the response lists it; function tools in the specification's full
    shape (``strict`` as asked: it is passed to providers that hold arguments to
    the schema, OpenAI's; others ignore it)."""
    if tool.get("type") != "function":
        return tool
    return {
        "type": "function",
        "name": tool.get("name"),
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict") is True,
    }
