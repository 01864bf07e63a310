"""A turn's items as Responses output items and stream events.

``OutputBuilder`` follows one turn (``parley.turns`` items: text, reasoning, tool
calls and results, the stored record) and keeps the response's ``output`` in the
order things happened; with ``emit`` it also frames every event of the Open
Responses specification as Server-Sent Events, each with its ``sequence_number``
and, for deltas, ``item_id``, ``output_index`` and ``content_index``.

Per token: one list append and, when emitting, one small ``json.dumps`` of the
delta into a preformatted frame. Items are closed (``*.done`` events) when the
next kind of item starts, so a text, a tool call and more text become three items.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from parley.messages import (
    ReasoningDelta,
    SourcesEvent,
    TextDelta,
    ToolConfirm,
    ToolResult,
    ToolStart,
)
from parley.responses.items import function_call_item, hosted_item, message_item

__all__ = ["OutputBuilder", "frame"]


def frame(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


_TEXT_DELTA = (
    'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
    '"sequence_number":%d,"item_id":"%s","output_index":%d,"content_index":0,'
    '"delta":%s,"logprobs":[]}\n\n'
)


class OutputBuilder:
    """``is_client(name)``: the call is the caller's function tool (a
    ``function_call`` item, left for the caller to run); others are Parley's
    hosted tools (their items carry the result). ``include`` is the request's:
    with ``file_search_call.results`` a search's item waits for the passages it
    found (the turn's sources event right after its result) and lists them."""

    def __init__(
        self,
        message_id: str,
        is_client: Callable[[str], bool],
        emit: bool,
        include: Sequence[str] = (),
    ) -> None:
        self.message_id = message_id
        self.search_results = "file_search_call.results" in include
        self._search: dict[str, Any] | None = None  # a search item waiting for its passages
        self.is_client = is_client
        self.emit = emit
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self._segment = 0
        self._text: list[str] | None = None  # the open message item's text
        self._reasoning: list[str] | None = None
        self._calls: dict[str, dict[str, Any]] = {}  # hosted calls running: their steps
        self.sources: list[dict[str, Any]] = []  # what the answer may cite as [n]

    # ------------------------------------------------------------ framing

    def event(self, kind: str, **fields: Any) -> bytes:
        if not self.emit:
            return b""
        body = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return frame(body)

    def _item_id(self, prefix: str) -> str:
        suffix = f"_{self._segment}" if self._segment else ""
        self._segment += 1
        return f"{prefix}_{self.message_id}{suffix}"

    # ------------------------------------------------------------ items

    def text(self, delta: str) -> bytes:
        """The hot path: one append (and a frame when streaming)."""
        head = b""
        if self._text is None:
            head = self._close() + self._open_message()
        assert self._text is not None
        self._text.append(delta)
        if not self.emit:
            return head
        index = len(self.output) - 1
        item_id = self.output[index]["id"]
        seq, self.seq = self.seq, self.seq + 1
        return head + (_TEXT_DELTA % (seq, item_id, index, json.dumps(delta))).encode()

    def _open_message(self) -> bytes:
        item = message_item(self._item_id("msg"), "assistant", "", "in_progress")
        item["content"] = []
        self.output.append(item)
        self._text = []
        index = len(self.output) - 1
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return self.event(
            "response.output_item.added", output_index=index, item=dict(item, content=[])
        ) + self.event(
            "response.content_part.added",
            item_id=item["id"],
            output_index=index,
            content_index=0,
            part=part,
        )

    def reasoning(self, delta: str) -> bytes:
        head = b""
        if self._reasoning is None:
            head = self._close()
            item = {"type": "reasoning", "id": self._item_id("rs"), "summary": [], "content": []}
            self.output.append(item)
            self._reasoning = []
            head += self.event(
                "response.output_item.added", output_index=len(self.output) - 1, item=item
            )
        self._reasoning.append(delta)
        index = len(self.output) - 1
        return head + self.event(
            "response.reasoning.delta",
            item_id=self.output[index]["id"],
            output_index=index,
            content_index=0,
            delta=delta,
        )

    def tool_start(self, event: ToolStart) -> bytes:
        out = self._close()
        step = {"id": event.id, "name": event.name, "arguments": event.arguments}
        index = len(self.output)
        if self.is_client(event.name):
            item = function_call_item(self._item_id("fc"), step, "completed")
            self.output.append(item)
            added = dict(item, arguments="", status="in_progress")
            return (
                out
                + self.event("response.output_item.added", output_index=index, item=added)
                + self.event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=index,
                    delta=item["arguments"],
                )
                + self.event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=item["arguments"],
                )
                + self.event("response.output_item.done", output_index=index, item=item)
            )
        self._calls[event.id] = step  # its item appears with its result
        return out

    def tool_result(self, event: ToolResult) -> bytes:
        step = self._calls.pop(event.id, None)
        if step is None:
            return b""
        done = {**step, "output": event.output, "is_error": event.is_error}
        item = hosted_item(self._item_id("tc"), done, "completed")
        if self.search_results and item["type"] == "file_search_call":
            self._search = item | {"results": []}  # sent with the sources that follow
            return b""
        return self._hosted(item)

    def _searched(self, sources: list[dict[str, Any]]) -> bytes:
        """The waiting search's item, with the file passages it added to ``sources``."""
        item, self._search = self._search, None
        if item is None:
            return b""
        known = {(s.get("file_id"), s.get("chunk_id")) for s in self.sources}
        item["results"] = [
            {
                "file_id": s.get("file_id"),
                "filename": s.get("filename"),
                "text": s.get("snippet", ""),
                "score": None,
                "attributes": {"page": s["page"]} if s.get("page") else {},
            }
            for s in sources
            if s.get("kind") == "file" and (s.get("file_id"), s.get("chunk_id")) not in known
        ]
        return self._hosted(item)

    def _hosted(self, item: dict[str, Any]) -> bytes:
        index = len(self.output)
        self.output.append(item)
        return self.event("response.output_item.added", output_index=index, item=item) + (
            self.event("response.output_item.done", output_index=index, item=item)
        )

    def resume(self, call_id: str, name: str, arguments: str) -> None:
        """A response that goes on after an approval: the call it approved is open."""
        self._calls[call_id] = {"id": call_id, "name": name, "arguments": arguments}

    def approval(self, event: ToolConfirm) -> tuple[str, bytes]:
        """A side-effecting call waits for the user: an ``mcp_approval_request``
        item (its id, and the frames). The call's own item comes once it ran."""
        out = self._close()
        self._calls.pop(event.id, None)
        server, _, tool = event.name.partition("__")
        item = {
            "type": "mcp_approval_request",
            "id": self._item_id("mcpr"),
            "server_label": server if tool else "parley",
            "name": tool or event.name,
            "arguments": event.arguments,
        }
        return item["id"], out + self._hosted(item)

    def _close(self) -> bytes:
        """Close the open message or reasoning item (its ``done`` events)."""
        out = b""
        index = len(self.output) - 1
        if self._text is not None:
            text, self._text = "".join(self._text), None
            item = self.output[index]
            part: dict[str, Any] = {
                "type": "output_text",
                "text": text,
                "annotations": citations(text, self.sources),
                "logprobs": [],
            }
            item["content"] = [part]
            item["status"] = "completed"
            for n, note in enumerate(part["annotations"]):
                out += self.event(
                    "response.output_text.annotation.added",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    annotation_index=n,
                    annotation=note,
                )
            out += self.event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            )
            out += self.event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
            out += self.event("response.output_item.done", output_index=index, item=item)
        if self._reasoning is not None:
            text, self._reasoning = "".join(self._reasoning), None
            item = self.output[index]
            item["content"] = [{"type": "reasoning_text", "text": text}]
            out += self.event(
                "response.reasoning.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
            )
            out += self.event("response.output_item.done", output_index=index, item=item)
        return out

    def feed(self, item: object) -> bytes:
        """One turn item; the bytes to send (empty when not streaming)."""
        if self._search is not None:
            if isinstance(item, SourcesEvent):
                out = self._searched([dict(source) for source in item.sources])
                self.sources = [dict(source) for source in item.sources]
                return out
            return self._searched([]) + self.feed(item)  # it found nothing to cite
        if isinstance(item, TextDelta):
            return self.text(item.text)
        if isinstance(item, ReasoningDelta):
            return self.reasoning(item.text)
        if isinstance(item, ToolStart):
            return self.tool_start(item)
        if isinstance(item, ToolResult):
            return self.tool_result(item)
        if isinstance(item, SourcesEvent):
            self.sources = [dict(source) for source in item.sources]
        return b""

    def finish(self) -> bytes:
        """Close what is open; hosted calls that never returned end as failed."""
        out = self._searched([]) + self._close()
        for step in self._calls.values():
            out += self._hosted(hosted_item(self._item_id("tc"), step, "failed"))
        self._calls.clear()
        return out

    def output_text(self) -> str:
        return "".join(
            part.get("text", "")
            for item in self.output
            if item["type"] == "message"
            for part in item["content"]
        )


_CITE = re.compile(r"\[(\d{1,3})\]")


def citations(text: str, sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answer's ``[n]`` citations as annotations: a web page's as
    ``url_citation`` (its span in the text), a file passage's as ``file_citation``."""
    if not sources or "[" not in text:
        return []
    by_ref = {source.get("ref"): source for source in sources if source.get("ref")}
    found: list[dict[str, Any]] = []
    for match in _CITE.finditer(text):
        source = by_ref.get(int(match.group(1)))
        if source is None:
            continue
        if source.get("kind") == "web":
            found.append(
                {
                    "type": "url_citation",
                    "url": source.get("url", ""),
                    "title": source.get("title", ""),
                    "start_index": match.start(),
                    "end_index": match.end(),
                }
            )
        elif source.get("kind") == "file":
            found.append(
                {
                    "type": "file_citation",
                    "file_id": source.get("file_id", ""),
                    "filename": source.get("filename", ""),
                    "index": match.start(),
                }
            )
    return found
