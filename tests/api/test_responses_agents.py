"""The OpenAI Agents SDK (``openai-agents``) as a client of ``/v1/responses``: an
agent with a function tool and a handoff, streamed, over real HTTP."""

from __future__ import annotations

import asyncio

import httpx
import openai
from agents import (
    Agent,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    function_tool,
    set_tracing_disabled,
)

from apihelpers import last_turn_request
from parley.messages import ToolCall
from parley.providers.scripted import Reply, ScriptedModel

set_tracing_disabled(True)  # the SDK would send traces to OpenAI


def test_agent_with_tool_and_handoff_streams(
    live: tuple[str, str], scripted: ScriptedModel
) -> None:
    base, key = live
    ran: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        ran.append(city)
        return f"4C and rain in {city}"

    async def run() -> tuple[str, list[str]]:
        client = openai.AsyncOpenAI(base_url=base, api_key=key, max_retries=0)
        model = OpenAIResponsesModel("scripted/scripted", client)
        weather = Agent(
            name="Weather agent",
            instructions="Answer weather questions with the tool.",
            tools=[get_weather],
            model=model,
        )
        triage = Agent(
            name="Triage agent",
            instructions="Hand weather questions to the weather agent.",
            handoffs=[weather],
            model=model,
        )
        result = Runner.run_streamed(
            triage, "What is the weather in Oslo?", run_config=RunConfig(tracing_disabled=True)
        )
        kinds: list[str] = []
        async for event in result.stream_events():
            kinds.append(event.type)
        await client.close()
        assert result.last_agent.name == "Weather agent"
        return str(result.final_output), kinds

    scripted.enqueue(
        Reply(tool_calls=[ToolCall("h1", "transfer_to_weather_agent", "{}")]),
        Reply(tool_calls=[ToolCall("w1", "get_weather", '{"city": "Oslo"}')]),
        Reply(text="Oslo: 4C and rain.", chunk_size=1),
    )
    final, kinds = asyncio.run(run())
    assert final == "Oslo: 4C and rain."
    assert ran == ["Oslo"]
    assert "raw_response_event" in kinds and "agent_updated_stream_event" in kinds
    # the weather agent's request carried the tool and the handoff's history
    last = last_turn_request(scripted)
    assert [t.name for t in last.tools] == ["get_weather"]
    assert any("4C and rain in Oslo" in m.content for m in last.messages if m.role == "tool")
    assert "Answer weather questions with the tool." in last.messages[0].content
    # three model calls of one agent run, each resending the history: one chat
    server = base.removesuffix("/v1")
    chats = httpx.get(f"{server}/api/conversations", headers={"Authorization": f"Bearer {key}"})
    titles = [c["title"] for c in chats.json()["items"]]
    assert titles.count("What is the weather in Oslo?") == 1, titles
