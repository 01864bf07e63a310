"""A conversation's stored messages as the model sees them again.

Shared by the turn's preparation (``prepare.TurnPreparation.prepare``) and the
memory feature's background summaries (``parley.memory.summaries``), which must
agree on what a stored row costs and which rows a summary replaces; so the rules
live here, public, rather than in either of them.
"""

from __future__ import annotations

from parley.engine import wrap_tool_output
from parley.messages import Message, ToolCall
from parley.storage.tables import Message as MessageRow

__all__ = ["history_from_rows", "history_limit", "split_summarized"]


def split_summarized(
    path: list[MessageRow], summary: str | None, until_id: str | None
) -> tuple[list[MessageRow], str | None]:
    """The rows still sent in full and the summary to use (memory feature's summaries).

    The stored summary covers the path up to ``until_id``; when that message is
    not on this branch (an earlier edit), the summary does not apply. Pinned
    messages are never summarized away.
    """
    ids = [row.id for row in path]
    if not summary or until_id not in ids:
        return path, None
    cut = ids.index(until_id) + 1
    return [row for row in path[:cut] if row.pinned] + path[cut:], summary


def history_limit(context_window: int) -> int:
    """How many of the newest messages to load for a model's context window."""
    return min(2000, max(32, context_window // 32))


def history_from_rows(rows: list[MessageRow]) -> tuple[list[Message], set[int]]:
    """Provider messages for stored rows; tool steps become tool-call/tool-result pairs.

    Also returns the indices of pinned messages (context assembly never drops them).
    """
    messages: list[Message] = []
    pinned: set[int] = set()
    for row in rows:
        if row.role == "user":
            if row.pinned:
                pinned.add(len(messages))
            messages.append(Message("user", row.content))
        elif row.role == "assistant":
            if not row.content and not row.steps:
                continue  # a failed or empty answer carries nothing forward
            content, written = row.content, 0
            for step in row.steps or []:
                call = ToolCall(step["id"], step["name"], step.get("arguments") or "{}")
                # the text the model wrote before this call goes with it (steps that
                # record where they fell; older ones get the whole text after them)
                at = min(max(step.get("offset", written), written), len(content))
                said = content[written:at].strip()
                messages.append(Message("assistant", said, tool_calls=[call]))
                written = at
                # Stored raw for the user; back to the model as untrusted data again.
                output = wrap_tool_output(
                    call.name, step.get("output", ""), is_error=bool(step.get("is_error"))
                )
                messages.append(Message("tool", output, tool_call_id=call.id, name=call.name))
            rest = content[written:].lstrip() if written else content
            if not rest and row.steps:
                continue  # it ended with tool calls (a caller's tools): nothing after them
            if row.pinned:
                pinned.add(len(messages))
            messages.append(Message("assistant", rest))
    return messages, pinned
