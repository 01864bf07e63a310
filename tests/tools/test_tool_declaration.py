"""Tools declared from functions: schema from type hints and docstrings."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

import pytest

from parley.tools import Tool, ToolContext, tool, tool_from_function


def search_flights(
    origin: str,
    destination: Annotated[str, "IATA code of the arrival airport"],
    passengers: int,
    max_price: float | None = None,
    cabin: Literal["economy", "business"] = "economy",
    direct_only: bool = False,
    airlines: list[str] | None = None,
    limits: dict[str, int] | None = None,
    note: Optional[str] = None,  # noqa: UP045 - the old spelling must work too
    *,
    ctx: ToolContext,
) -> str:
    """Search flights between two airports.

    Prices are in euros. This paragraph is not part of the summary.

    Args:
        origin: IATA code of the departure airport,
            for example CDG.
        destination: ignored, the Annotated text wins.
        passengers (int): How many people travel.
        max_price: Highest acceptable price.

    Returns:
        A list of flights.
    """
    return ""


def test_schema_from_type_hints_and_docstring() -> None:
    declared = tool(search_flights)
    assert isinstance(declared, Tool)
    assert declared.name == "search_flights"
    assert declared.description == "Search flights between two airports."
    assert declared.context_param == "ctx"
    params = declared.parameters
    assert params["type"] == "object" and params["additionalProperties"] is False
    assert params["required"] == ["origin", "destination", "passengers"]
    props: dict[str, Any] = params["properties"]
    assert "ctx" not in props
    assert props["origin"] == {
        "type": "string",
        "description": "IATA code of the departure airport, for example CDG.",
    }
    assert props["destination"] == {
        "type": "string",
        "description": "IATA code of the arrival airport",
    }
    assert props["passengers"] == {"type": "integer", "description": "How many people travel."}
    assert props["max_price"] == {
        "type": ["number", "null"],
        "description": "Highest acceptable price.",
        "default": None,
    }
    assert props["cabin"] == {
        "enum": ["economy", "business"],
        "type": "string",
        "default": "economy",
    }
    assert props["direct_only"] == {"type": "boolean", "default": False}
    assert props["airlines"] == {
        "type": ["array", "null"],
        "items": {"type": "string"},
        "default": None,
    }
    assert props["limits"] == {
        "type": ["object", "null"],
        "additionalProperties": {"type": "integer"},
        "default": None,
    }
    assert props["note"] == {"type": ["string", "null"], "default": None}
    spec = declared.spec()
    assert (spec.name, spec.description, spec.parameters) == (
        declared.name,
        declared.description,
        declared.parameters,
    )


def test_decorator_options() -> None:
    @tool(name="send-mail", side_effecting=True, timeout_s=5)
    async def send(to: str, body: str = "") -> str:
        """Send an email."""
        return "sent"

    assert isinstance(send, Tool)
    assert (send.name, send.side_effecting, send.timeout_s) == ("send-mail", True, 5)
    assert send.parameters["required"] == ["to"]
    assert send.parameters["properties"]["body"] == {"type": "string", "default": ""}


def test_no_docstring_falls_back_to_the_name() -> None:
    def ping() -> str:
        return "pong"

    declared = tool_from_function(ping)
    assert declared.description == "ping"
    assert declared.parameters["properties"] == {} and declared.parameters["required"] == []


def test_unsupported_declarations_fail_at_declaration_time() -> None:
    def untyped(x):
        return x

    def variadic(*items: str) -> str:
        return ""

    def weird(value: complex) -> str:
        return ""

    with pytest.raises(TypeError, match="type annotation is required"):
        tool_from_function(untyped)
    with pytest.raises(TypeError, match="named parameters only"):
        tool_from_function(variadic)
    with pytest.raises(TypeError, match="unsupported type"):
        tool_from_function(weird)
    with pytest.raises(ValueError, match="tool name"):
        tool_from_function(weird, name="has space")
