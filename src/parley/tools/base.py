"""Tools declared once from plain functions, and the registry that runs them.

A tool's JSON schema comes from the function's type hints and its docstring,
so the description the model reads and the code that runs cannot drift apart.
``ToolRegistry.run`` is the only way the engine executes a tool: it validates
the model's arguments, applies a timeout, turns every failure into an error
result the model can read (a bad tool never crashes a turn) and caps output.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints, overload
from zoneinfo import ZoneInfo

from parley.errors import ToolError
from parley.jsonshape import STORED, shape_error
from parley.messages import Source, StepAttachment, ToolCall, ToolSpec
from parley.timezones import zone_or_utc

__all__ = [
    "MAX_OUTPUT_CHARS",
    "Tool",
    "ToolContext",
    "ToolOutcome",
    "ToolOutput",
    "ToolRegistry",
    "tool",
]

MAX_OUTPUT_CHARS = 16_000


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class ToolContext:
    """What a tool may know about the turn; injected into a ``ctx: ToolContext`` parameter.

    ``clock`` is injectable so tests control time. A tool that cites what it
    read (web search, page reading) appends ``parley.messages.Source`` objects
    to ``sources``; the turn stores them on the answer. ``first_ref`` is the ``[n]``
    the first numbered source a tool cites gets (after the context's passages).
    """

    timezone: str = "UTC"
    conversation_id: str | None = None
    user_id: str | None = None
    clock: Callable[[], datetime] = field(default=_utc_now)
    sources: list[Source] = field(default_factory=list)
    first_ref: int = 1

    def zone(self) -> ZoneInfo:
        """The user's zone; UTC when the stored name is not a valid IANA zone."""
        return zone_or_utc(self.timezone)[0]

    def now(self) -> datetime:
        """The current time in the user's zone."""
        return self.clock().astimezone(self.zone())


@dataclass(slots=True)
class Tool:
    """A callable offered to models. ``fn`` may be sync (run in a thread) or async.

    ``context_param`` names the parameter that receives the ``ToolContext``
    (it is not part of ``parameters``). ``side_effecting`` tools change the
    world (send, write, buy): the engine runs them one at a time, in order.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any]
    side_effecting: bool = False
    timeout_s: float | None = None
    context_param: str | None = None
    title: str = ""  # the human name people see in the Tools menu ("Run code")
    summary: str = ""  # one line for people (``description`` is written for the model)

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)


@dataclass(slots=True)
class ToolOutcome:
    """The result of running one tool call (what the engine reports and feeds back)."""

    output: str
    is_error: bool = False
    duration_ms: float = 0.0
    attachments: list[StepAttachment] = field(default_factory=list)


@dataclass(slots=True)
class ToolOutput:
    """A tool's structured return: text for the model plus files for the user.

    ``attachments`` (``parley.messages.StepAttachment``) are stored on the
    tool step and shown by the web app; the model reads only ``text``.
    """

    text: str
    is_error: bool = False
    attachments: list[StepAttachment] = field(default_factory=list)


# ---------------------------------------------------------------- schema from functions

_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?)\s*:\s*$"
)
_ARG_LINE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Summary (first paragraph) and Google-style ``Args:`` descriptions."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line):
            break
        summary.append(line.strip())
    args: dict[str, str] = {}
    in_args = False
    current: str | None = None
    arg_indent = 0
    for line in lines:
        section = _SECTION.match(line)
        if section:
            in_args = section.group(1) in {"Args", "Arguments", "Parameters"}
            current = None
            continue
        if not in_args or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        match = _ARG_LINE.match(line)
        if match and (current is None or indent <= arg_indent):
            current, arg_indent = match.group(1), indent
            args[current] = match.group(2).strip()
        elif current is not None and indent > arg_indent:
            args[current] = f"{args[current]} {line.strip()}".strip()
        else:
            in_args = False
    return " ".join(summary), args


def _is_optional(hint: Any) -> tuple[bool, Any]:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(hint) if a is not type(None)]
        if len(members) < len(get_args(hint)):
            inner = members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007
            return True, inner
    return False, hint


def _schema_for(hint: Any, where: str) -> dict[str, Any]:
    """JSON schema for one annotation; TypeError for what a model cannot send."""
    description: str | None = None
    if get_origin(hint) is Annotated:
        hint, *extras = get_args(hint)
        description = next((e for e in extras if isinstance(e, str)), None)
    optional, hint = _is_optional(hint)
    schema: dict[str, Any]
    origin = get_origin(hint)
    if hint in _SCALARS:
        schema = {"type": _SCALARS[hint]}
    elif hint is list or origin is list:
        args = get_args(hint)
        schema = {"type": "array"}
        if args:
            schema["items"] = _schema_for(args[0], where)
    elif hint is dict or origin is dict:
        args = get_args(hint)
        schema = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            schema["additionalProperties"] = _schema_for(args[1], where)
    elif origin is Literal:
        values = list(get_args(hint))
        schema = {"enum": values}
        kinds = {_SCALARS.get(type(v)) for v in values}
        if len(kinds) == 1 and None not in kinds:
            schema["type"] = kinds.pop()
    elif origin in (Union, types.UnionType):
        schema = {"anyOf": [_schema_for(a, where) for a in get_args(hint)]}
    elif hint is Any:
        schema = {}
    else:
        raise TypeError(f"{where}: unsupported type {hint!r} for a tool parameter")
    if optional:
        if isinstance(schema.get("type"), str):
            schema["type"] = [schema["type"], "null"]
            if "enum" in schema:
                schema["enum"] = [*schema["enum"], None]
        else:
            schema = {"anyOf": [schema, {"type": "null"}]}
    if description:
        schema["description"] = description
    return schema


def _is_context(hint: Any) -> bool:
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    return hint is ToolContext or _is_optional(hint)[1] is ToolContext


def tool_from_function(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    side_effecting: bool = False,
    timeout_s: float | None = None,
    title: str = "",
    summary: str = "",
) -> Tool:
    """Build a ``Tool`` from ``fn``'s signature, type hints and docstring; ``title``
    and ``summary`` are what people see of it (the Tools menu)."""
    tool_name = name or fn.__name__
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", tool_name):
        raise ValueError(f"tool name {tool_name!r} must be 1-64 letters, digits, '_' or '-'")
    first_line, arg_docs = _parse_docstring(inspect.getdoc(fn))
    hints = get_type_hints(fn, include_extras=True)
    properties: dict[str, Any] = {}
    required: list[str] = []
    context_param: str | None = None
    for param in inspect.signature(fn).parameters.values():
        where = f"tool {tool_name!r}, parameter {param.name!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(f"{where}: tools take named parameters only")
        if param.name not in hints:
            raise TypeError(f"{where}: a type annotation is required")
        hint = hints[param.name]
        if _is_context(hint):
            context_param = param.name
            continue
        schema = _schema_for(hint, where)
        if param.name in arg_docs and "description" not in schema:
            schema["description"] = arg_docs[param.name]
        if param.default is param.empty:
            required.append(param.name)
        elif param.default is None or isinstance(param.default, str | int | float | bool):
            schema["default"] = param.default
        properties[param.name] = schema
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    return Tool(
        name=tool_name,
        description=description or first_line or tool_name,
        parameters=parameters,
        fn=fn,
        side_effecting=side_effecting,
        timeout_s=timeout_s,
        context_param=context_param,
        title=title,
        summary=summary,
    )


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    side_effecting: bool = False,
    timeout_s: float | None = None,
    title: str = "",
    summary: str = "",
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    side_effecting: bool = False,
    timeout_s: float | None = None,
    title: str = "",
    summary: str = "",
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Declare a tool: ``@tool`` or ``@tool(name=..., side_effecting=True, timeout_s=5)``."""

    def build(func: Callable[..., Any]) -> Tool:
        return tool_from_function(
            func,
            name=name,
            side_effecting=side_effecting,
            timeout_s=timeout_s,
            title=title,
            summary=summary,
        )

    return build(fn) if fn is not None else build


# ---------------------------------------------------------------- argument validation

_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def _type_name(value: Any) -> str:
    for name, check in _JSON_TYPES.items():
        if check(value):
            return name
    return type(value).__name__


def validate(value: Any, schema: dict[str, Any], path: str = "arguments") -> list[str]:
    """Problems with ``value`` under the schema subset tools use; empty when valid.

    Covers type, enum, items, properties, required, additionalProperties and
    anyOf; other keywords are ignored (the tool itself is the last judge).
    """
    if "anyOf" in schema:
        if any(not validate(value, option, path) for option in schema["anyOf"]):
            return []
        return [f"{path} does not match any allowed form"]
    expected = schema.get("type")
    if expected is not None:
        allowed = [expected] if isinstance(expected, str) else list(expected)
        if not any(_JSON_TYPES.get(t, lambda _v: True)(value) for t in allowed):
            return [f"{path} must be {' or '.join(allowed)}, got {_type_name(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(json.dumps(v) for v in schema["enum"])
        return [f"{path} must be one of {choices}"]
    problems: list[str] = []
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problems += validate(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"missing required argument '{key}'")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                problems += validate(item, props[key], f"'{key}'")
            elif extra is False:
                problems.append(f"unknown argument '{key}'")
            elif isinstance(extra, dict):
                problems += validate(item, extra, f"{path}['{key}']")
    return problems


# ---------------------------------------------------------------- registry


def _render(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


_CAP_NOTE = re.compile(r"\n\[output truncated: \d+ characters, only the first (\d+) are shown\]\Z")


def cap_output(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Truncate to ``limit`` characters with a note saying how much was cut.

    Idempotent: text this function already capped at ``limit`` or less is
    returned as is, so capping again (the registry, then the engine's
    untrusted-data wrapper) keeps the original size in the note.
    """
    if len(text) <= limit:
        return text
    note = _CAP_NOTE.search(text)
    if note is not None and note.start() == int(note.group(1)) <= limit:
        return text
    return (
        f"{text[:limit]}\n[output truncated: {len(text)} characters, "
        f"only the first {limit} are shown]"
    )


class ToolRegistry:
    """Named tools; ``run`` executes a model's ``ToolCall`` safely."""

    def __init__(
        self,
        tools: Iterable[Tool | Callable[..., Any]] = (),
        *,
        max_output_chars: int = MAX_OUTPUT_CHARS,
    ) -> None:
        self._tools: dict[str, Tool] = {}
        # tools a feature has but cannot offer now, with why (listed, never offered)
        self._withheld: dict[str, tuple[Tool, str]] = {}
        self.max_output_chars = max_output_chars
        for item in tools:
            self.register(item)

    def register(self, item: Tool | Callable[..., Any]) -> Tool:
        """Add a ``Tool`` (or a plain function, declared with ``tool``); names are unique."""
        declared = item if isinstance(item, Tool) else tool_from_function(item)
        if declared.name in self._tools:
            raise ValueError(f"a tool named {declared.name!r} is already registered")
        self._tools[declared.name] = declared
        self._withheld.pop(declared.name, None)
        return declared

    def unregister(self, name: str) -> None:
        """Remove a tool (e.g. of a disconnected MCP server); unknown names are ignored."""
        self._tools.pop(name, None)

    def withhold(self, declared: Tool, reason: str) -> None:
        """``declared`` is not offered (unregistered if it was) and is listed as
        unavailable with ``reason`` (the Tools menu shows it disabled) until it is
        registered again."""
        self._tools.pop(declared.name, None)
        self._withheld[declared.name] = (declared, reason)

    def withheld(self) -> list[tuple[Tool, str]]:
        """The tools withheld and why (``withhold``)."""
        return list(self._withheld.values())

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def specs(self, names: Iterable[str] | None = None) -> list[ToolSpec]:
        """Specs to offer a model. Unknown names are skipped, so a stale user
        preference naming a removed tool cannot break a turn."""
        if names is None:
            return [t.spec() for t in self._tools.values()]
        return [self._tools[n].spec() for n in dict.fromkeys(names) if n in self._tools]

    async def run(
        self,
        call: ToolCall,
        *,
        timeout_s: float | None = None,
        context: ToolContext | None = None,
    ) -> ToolOutcome:
        """Run ``call``; every failure becomes an ``is_error`` outcome for the model.

        The effective timeout is the smaller of ``timeout_s`` and the tool's own.
        A sync tool runs in a worker thread; on timeout the turn moves on but
        Python cannot kill the thread, so sync tools should be quick or async.
        Cancellation of the calling task propagates (it is not a tool failure).
        """
        started = time.perf_counter()

        def done(output: str, is_error: bool = False) -> ToolOutcome:
            elapsed = (time.perf_counter() - started) * 1000
            return ToolOutcome(cap_output(output, self.max_output_chars), is_error, elapsed)

        declared = self._tools.get(call.name)
        if declared is None:
            available = ", ".join(self._tools) or "none"
            return done(f"Unknown tool '{call.name}'. Available tools: {available}.", True)
        try:
            arguments = call.parsed_arguments()
        except ValueError as exc:
            return done(
                f"Invalid arguments for tool '{call.name}': not a JSON object ({exc}).", True
            )
        shape = shape_error(arguments, STORED)  # a model's output is hostile like any input
        problems = [f"the arguments {shape}"] if shape else validate(arguments, declared.parameters)
        if problems:
            return done(f"Invalid arguments for tool '{call.name}': {'; '.join(problems)}.", True)
        if declared.context_param is not None:
            arguments[declared.context_param] = context or ToolContext()
        limits = [t for t in (timeout_s, declared.timeout_s) if t is not None]
        timeout = min(limits) if limits else None
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                if inspect.iscoroutinefunction(declared.fn):
                    value = await declared.fn(**arguments)
                else:
                    value = await asyncio.to_thread(declared.fn, **arguments)
                    if inspect.isawaitable(value):
                        value = await value
        except TimeoutError as exc:
            if scope.expired():
                return done(f"Tool '{call.name}' timed out after {timeout:g} s.", True)
            return done(f"Tool '{call.name}' failed: TimeoutError: {exc}", True)
        except ToolError as exc:
            return done(exc.message, True)
        except Exception as exc:
            return done(f"Tool '{call.name}' failed: {type(exc).__name__}: {exc}", True)
        if isinstance(value, ToolOutput):
            outcome = done(value.text, value.is_error)
            outcome.attachments = list(value.attachments)
            return outcome
        return done(_render(value))
