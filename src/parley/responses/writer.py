"""Input items written into a chat as rows (``/v1/responses`` input before the
question, ``POST /v1/conversations/{id}/items``).

Messages become rows on the branch; a ``function_call`` becomes a step of the
answer it follows (a new empty answer when it follows a question); its
``function_call_output`` is put on that step, found up the branch by call id.
System and developer messages are not rows: they join the turn's instructions.
"""

from __future__ import annotations

from sqlalchemy.orm.attributes import flag_modified

from parley.errors import Invalid
from parley.responses.items import InputItem
from parley.storage.conversations import ConversationStore
from parley.storage.tables import Conversation
from parley.storage.tables import Message as MessageRow

__all__ = ["write_items"]

MAX_HOPS = 200  # how far up the branch a call's output looks for its call


async def write_items(
    store: ConversationStore,
    conv: Conversation,
    leaf: MessageRow | None,
    items: list[InputItem],
    instructions: list[str],
) -> MessageRow | None:
    """Write ``items`` after ``leaf``; the new leaf. Flushes, does not commit."""
    for n, item in enumerate(items):
        if item.kind == "message" and item.role in ("system", "developer"):
            instructions.append(item.text)
        elif item.kind == "message":
            leaf = await store.add_message(
                conv, role=item.role, content=item.text, parent_id=leaf.id if leaf else None
            )
        elif item.kind == "function_call":
            if leaf is None or leaf.role != "assistant":
                leaf = await store.add_message(
                    conv, role="assistant", content="", parent_id=leaf.id if leaf else None
                )
            step = {
                "id": item.call_id,
                "name": item.name,
                "arguments": item.arguments,
                "offset": len(leaf.content),
            }
            leaf.steps = [*(leaf.steps or []), step]
            flag_modified(leaf, "steps")
        else:
            leaf = await _answer_call(store, conv, leaf, item, n)
    await store.session.flush()
    return leaf


async def _answer_call(
    store: ConversationStore,
    conv: Conversation,
    leaf: MessageRow | None,
    item: InputItem,
    n: int,
) -> MessageRow:
    """Put a call's output on the step that asked for it: the newest answer up
    the branch with a call of that id (an older one becomes the leaf again)."""
    row = leaf
    for _ in range(MAX_HOPS):
        if row is None:
            break
        if row.role == "assistant":
            for step in row.steps or []:
                if step.get("id") == item.call_id:
                    step["output"] = item.output
                    step["is_error"] = False
                    flag_modified(row, "steps")
                    if row is not leaf:
                        await store.set_active_leaf(conv, row.id)
                    return row
        row = await store.get_message(row.parent_id) if row.parent_id else None
    raise Invalid(
        f"input[{n}]: no function_call with call_id {item.call_id!r} in this "
        "conversation; send the function_call item before its output."
    )
