"""ModelRegistry: provider sources, ref resolution, the default model, key hiding."""

from __future__ import annotations

from pathlib import Path

import pytest

from parley.config import ModelConfig, ProviderConfig, Settings
from parley.errors import ModelNotFound
from parley.messages import Finish, Message, TextDelta
from parley.providers.base import ChatRequest, ModelInfo
from parley.providers.local import LocalProvider
from parley.providers.openai_compat import OpenAIChatModel
from parley.providers.registry import ModelRegistry
from parley.providers.scripted import ScriptedModel, ScriptedProvider
from parley.providers.testing import ScriptedUpstream, UpstreamReply

SECRET = "sk-very-secret-key-123"


def make_settings(tmp_path: Path, providers: list[ProviderConfig], **values: object) -> Settings:
    values.setdefault("local_model_enabled", False)
    return Settings(data_dir=tmp_path, providers=providers, **values)  # type: ignore[arg-type]


def upstream_config(
    upstream: ScriptedUpstream, name: str = "up", **values: object
) -> ProviderConfig:
    data: dict[str, object] = {
        "name": name,
        "base_url": upstream.base_url,
        "api_key": SECRET,
        "models": [ModelConfig(name="scripted-model")],
        "timeout_s": 5,
    }
    data.update(values)
    return ProviderConfig(**data)  # type: ignore[arg-type]


async def test_resolve_and_stream_through_a_configured_provider(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    registry = ModelRegistry(make_settings(tmp_path, [upstream_config(upstream)]))
    upstream.enqueue(UpstreamReply(text="resolved fine"))
    model = await registry.resolve("up/scripted-model")
    assert isinstance(model, OpenAIChatModel)
    events = [e async for e in model.stream(ChatRequest([Message("user", "hi")]))]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "resolved fine"
    assert events[-1] == Finish("stop")
    assert (await registry.resolve("other-model")).info.ref == "up/other-model"  # bare, unique
    await registry.aclose()


async def test_unknown_refs_raise_helpful_model_not_found(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    config = upstream_config(upstream, discover_models=False)
    registry = ModelRegistry(make_settings(tmp_path, [config]))
    with pytest.raises(ModelNotFound, match="unknown provider 'nope'; available providers: up"):
        await registry.resolve("nope/x")
    with pytest.raises(ModelNotFound, match="does not exist; available models: up/scripted-model"):
        await registry.resolve("up/missing")
    with pytest.raises(ModelNotFound, match="is unknown; name it as 'provider/model'"):
        await registry.resolve("missing")
    await registry.aclose()


async def test_no_model_at_all(tmp_path: Path) -> None:
    registry = ModelRegistry(make_settings(tmp_path, []))
    assert await registry.default_ref() is None
    assert await registry.list_models() == []
    with pytest.raises(ModelNotFound, match="No model is available"):
        await registry.resolve(None)


async def test_default_ref_order(tmp_path: Path, upstream: ScriptedUpstream) -> None:
    configs = [
        upstream_config(upstream, "first", discover_models=False),
        upstream_config(upstream, "second"),
    ]
    settings = make_settings(tmp_path, configs, local_model_enabled=True)
    registry = ModelRegistry(settings)
    # no preference: the first model of the first configured provider, not the local one
    assert await registry.default_ref() == "first/scripted-model"
    assert await registry.default_ref("second/other-model") == "second/other-model"
    assert await registry.default_ref("second/vanished") == "first/scripted-model"
    settings.default_model = "second/scripted-model"
    assert await registry.default_ref() == "second/scripted-model"
    assert await registry.default_ref("first/scripted-model") == "first/scripted-model"
    assert (await registry.resolve(None)).info.ref == "second/scripted-model"
    await registry.aclose()


async def test_local_model_is_the_default_when_nothing_else_is_configured(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    settings = make_settings(tmp_path, [], local_model_enabled=True, local_model=str(tiny_gguf))
    registry = ModelRegistry(settings)
    assert isinstance(registry.local, LocalProvider)
    assert await registry.default_ref() == "local/tiny-random-test"
    model = await registry.resolve(None)
    events = [e async for e in model.stream(ChatRequest([Message("user", "hi")], max_tokens=3))]
    assert isinstance(events[-1], Finish)
    info = registry.providers_info()
    assert [info[0]["model_settings"][0]["name"]] == ["tiny-random-test"]
    assert info[0]["header_names"] == []
    assert [
        {k: v for k, v in p.items() if k not in ("model_settings", "header_names")} for p in info
    ] == [
        {
            "name": "local",
            "kind": "local",
            "base_url": None,
            "source": "builtin",
            "has_key": False,
            "editable": False,
            "models": ["tiny-random-test"],
        }
    ]
    await registry.aclose()
    assert registry.local.status == "not_loaded"


async def test_local_disabled(tmp_path: Path) -> None:
    registry = ModelRegistry(make_settings(tmp_path, [], local_model_enabled=False))
    assert registry.local is None


async def test_database_providers_clash_and_reload(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    settings = make_settings(tmp_path, [upstream_config(upstream, "up")])
    clash = upstream_config(upstream, "up", base_url="http://127.0.0.1:1/v1")
    added = upstream_config(upstream, "team", discover_models=False)
    registry = ModelRegistry(settings, db_providers=[clash, added])
    sources = {p["name"]: (p["source"], p["editable"]) for p in registry.providers_info()}
    assert sources == {"up": ("config", False), "team": ("database", True)}
    up = registry.get("up")
    assert up is not None and getattr(up, "base_url", None) == upstream.base_url  # config won
    with pytest.raises(ValueError, match="already used by a provider from the config"):
        registry.check_database_provider(clash)
    registry.check_database_provider(added)  # re-saving an existing database provider is fine

    await registry.reload_database_providers([])
    assert [p["name"] for p in registry.providers_info()] == ["up"]
    with pytest.raises(ModelNotFound):
        await registry.resolve("team/scripted-model")
    await registry.reload_database_providers([added])
    assert (await registry.resolve("team/scripted-model")).info.ref == "team/scripted-model"
    await registry.aclose()


async def test_providers_info_never_contains_keys(
    tmp_path: Path, upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARLEY_TEST_KEY", SECRET + "-env")
    env = upstream_config(upstream, "env", api_key=None, api_key_env="PARLEY_TEST_KEY")
    env = env.model_copy(update={"source": "environment"})
    keyless = upstream_config(upstream, "keyless", api_key=None)
    registry = ModelRegistry(make_settings(tmp_path, [upstream_config(upstream), env, keyless]))
    await registry.list_models()
    info = registry.providers_info()
    assert SECRET not in repr(info)
    assert [(p["name"], p["source"], p["has_key"]) for p in info] == [
        ("up", "config", True),
        ("env", "environment", True),
        ("keyless", "config", False),
    ]
    assert info[0]["models"] == ["scripted-model", "other-model"]
    assert info[0]["base_url"] == upstream.base_url
    await registry.aclose()


class BrokenProvider:
    name = "broken"
    kind = "scripted"

    async def list_models(self) -> list[ModelInfo]:
        raise RuntimeError("boom")

    def model(self, name: str) -> ScriptedModel:
        raise ModelNotFound(name)

    async def aclose(self) -> None:
        pass


async def test_one_failing_provider_never_breaks_the_list(
    tmp_path: Path, upstream: ScriptedUpstream, closed_url: str
) -> None:
    down = ProviderConfig(name="down", base_url=closed_url, models=[ModelConfig(name="kept")])
    scripted = ScriptedProvider("scripted", {"echo": ScriptedModel(default="hi")})
    registry = ModelRegistry(
        make_settings(tmp_path, [down, upstream_config(upstream)]),
        extra_providers=[BrokenProvider(), scripted],
    )
    refs = [m.ref for m in await registry.list_models()]
    assert refs == ["down/kept", "up/scripted-model", "up/other-model", "scripted/echo"]
    model = await registry.resolve("scripted/echo")
    events = [e async for e in model.stream(ChatRequest([Message("user", "x")]))]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "hi"
    with pytest.raises(ValueError, match="already exists"):
        ModelRegistry(
            make_settings(tmp_path, [upstream_config(upstream, "scripted")]),
            extra_providers=[scripted],
        )
    await registry.aclose()


async def test_test_connection(tmp_path: Path, closed_url: str) -> None:
    registry = ModelRegistry(make_settings(tmp_path, []))
    with ScriptedUpstream(models=["m-one", "m-two"], api_key="right") as server:
        ok = await registry.test_connection("openai", server.base_url, "right")
        wrong = await registry.test_connection("openai", server.base_url, "wrong")
        claude = await registry.test_connection("anthropic", server.root_url, "right")
    refused = await registry.test_connection("openai", closed_url, "k")
    assert ok == (True, ["m-one", "m-two"], None)
    assert claude == (True, ["m-one", "m-two"], None)
    assert wrong[0] is False and wrong[1] == []
    assert "rejected the API key" in (wrong[2] or "")
    assert refused[0] is False and "Could not reach" in (refused[2] or "")
    assert (await registry.test_connection("local", None, None))[0] is False
