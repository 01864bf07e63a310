"""Switching the embedded model's GGUF without a restart (Admin > Downloaded models):
an answer already streaming from the old model finishes, new requests go to the
new one (loaded on first use), and the old one is unloaded after its work."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from parley.config import Settings
from parley.errors import ProviderUnavailable
from parley.messages import Finish, Message, TextDelta
from parley.providers.base import ChatRequest
from parley.providers.registry import ModelRegistry


def ask(max_tokens: int) -> ChatRequest:
    return ChatRequest([Message("user", "hello")], max_tokens=max_tokens)


async def test_switching_lets_the_old_answer_finish_and_serves_the_new_file(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    settings = Settings(data_dir=tmp_path, local_model=str(tiny_gguf), local_context_window=512)
    registry = ModelRegistry(settings)
    old = registry.local
    assert old is not None and old.info.ref == "local/tiny-random-test"
    stream = old.model(old.info.name).stream(ask(40))
    first = await anext(stream)  # the old model is loaded and answering
    assert isinstance(first, TextDelta)

    chosen = tmp_path / "models" / "Other-Tiny.gguf"
    chosen.parent.mkdir()
    shutil.copyfile(tiny_gguf, chosen)
    new = registry.use_local_model(chosen, display_name="Other Tiny")
    assert registry.local is new and new is not old
    assert (new.info.ref, new.info.display_name, new.info.demo) == (
        "local/other-tiny",
        "Other Tiny (local)",
        False,
    )
    assert new.status == "not_loaded"

    rest = [event async for event in stream]  # the old answer runs to its end
    assert rest[-1] == Finish("length")
    with pytest.raises(ProviderUnavailable):
        old.submit(print)  # retired: it takes no new work
    resolved = await registry.resolve("local/other-tiny")
    answer = [e async for e in resolved.stream(ask(3))]
    assert answer[-1] == Finish("length") and new.status == "ready"
    for _ in range(100):  # its weights are freed after the answer, on its own thread
        if old.status == "not_loaded":
            break
        await asyncio.sleep(0.05)
    assert old.status == "not_loaded"

    back = registry.use_local_model(None)
    assert back.info.ref == "local/tiny-random-test"
    await registry.aclose()
