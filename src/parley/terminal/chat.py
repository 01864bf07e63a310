"""``parley chat`` and ``parley login``: a terminal client of a Parley server.

It speaks the server's own HTTP API (the routes the web app uses), so the
terminal gets the whole product: the account's models, memory and custom
instructions (applied by the server), files attached to the conversation, tools
with their steps shown, conversations saved and listed with the web app's.
Answers stream and are rendered as Markdown (``rich``). Lines starting with ``/``
are commands handled here and never sent to the model (``//`` sends a literal
``/``). Ctrl+C stops a streaming answer (the stop route); at the prompt, a second
Ctrl+C in a row quits. Errors are one line.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.markdown import Markdown
from rich.segment import Segment
from rich.text import Text

from parley.terminal import credentials
from parley.terminal.client import ClientError, NotSignedIn, ParleyClient

__all__ = ["COMMANDS", "ChatSession", "run_chat", "run_login", "run_logout"]

COMMANDS: dict[str, str] = {
    "/help": "list these commands",
    "/model [n | provider/model]": "list your models, or switch to one (by number or name)",
    "/new": "start a new conversation",
    "/history": "list your recent conversations (the web app's too)",
    "/open <n | id>": "continue a conversation (n from /history)",
    "/attach <path>": "upload a file to this conversation (the model reads it)",
    "/exit": "quit (also Ctrl+D, or Ctrl+C twice at the prompt)",
}
FILE_WAIT_S = 30.0
LATE_WAIT_S = 2.0  # after an answer, how long its stream may still bring a memory or title
VERBS = {"added": "saved", "updated": "updated", "merged": "already saved",
         "proposed": "waiting for your review", "deleted": "forgotten"}  # fmt: skip


def _one_line(text: str, limit: int = 100) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def summarize_arguments(arguments: str, limit: int = 80) -> str:
    """``{"expression": "6*7"}`` -> ``expression=6*7``, cut to ``limit`` characters."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return _one_line(arguments, limit)
    if isinstance(parsed, dict):
        parts = []
        for key, value in parsed.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            parts.append(f"{key}={_one_line(shown, 40)}")
        return _one_line(", ".join(parts), limit)
    return _one_line(json.dumps(parsed), limit)


class ChatSession:
    """One terminal chat: the client, the current conversation and model, the screen."""

    def __init__(
        self,
        client: ParleyClient,
        console: Console,
        *,
        model: str | None = None,
        read: Callable[[str], str] = input,
    ) -> None:
        self.client = client
        self.console = console
        self.model = model  # None: the conversation's or the server's default
        self.conversation: dict[str, Any] | None = None
        self.listed: list[dict[str, Any]] = []
        self.read = read
        self._pending = False  # a Ctrl+C at the prompt waits for a second one

    # ------------------------------------------------------------ output

    def say(self, text: str, style: str = "") -> None:
        self.console.print(Text(text, style=style))

    def error(self, text: str) -> None:
        self.console.print(Text(f"Error: {text}", style="bold red"), soft_wrap=True)

    # ------------------------------------------------------------ the loop

    def loop(self) -> int:
        """Prompt until /exit, Ctrl+D, or Ctrl+C twice in a row at the prompt."""
        try:
            while True:
                try:
                    return self._prompts()
                except KeyboardInterrupt:  # at the prompt, or between two prompts
                    if self._pending:
                        self.console.print()
                        return 0
                    self._pending = True
                    self.say("\n(Ctrl+C again to quit, or /exit)", "dim")
        except KeyboardInterrupt:  # the second one while the first was being handled
            self.console.print()
            return 0

    def _prompts(self) -> int:
        while True:
            try:
                line = self.read("\n> ")
            except EOFError:
                self.console.print()
                return 0
            self._pending = False
            text = line.strip()
            if not text:
                continue
            try:
                if text.startswith("/") and not text.startswith("//"):
                    if self.command(text) == "exit":
                        return 0
                else:
                    self.ask(text[1:] if text.startswith("//") else text)
            except NotSignedIn as exc:
                self.error(str(exc))
                return 1
            except ClientError as exc:
                self.error(str(exc))
            except KeyboardInterrupt:
                self.say("(interrupted)", "dim")
            except Exception as exc:  # a bug here: one line, and the session goes on
                self.error(f"unexpected {type(exc).__name__}: {_one_line(str(exc), 200)}")

    # ------------------------------------------------------------ commands

    def command(self, text: str) -> str | None:
        name, _, rest = text.partition(" ")
        rest = rest.strip()
        if name in ("/exit", "/quit"):
            return "exit"
        if name in ("/help", "/?"):
            self.help()
        elif name == "/model":
            self.switch_model(rest)
        elif name == "/new":
            self.conversation = None
            self.say("New conversation (saved when you send the first message).", "dim")
        elif name == "/history":
            self.history()
        elif name == "/open":
            self.open(rest)
        elif name == "/attach":
            self.attach(rest)
        else:
            self.say(
                f"Unknown command {name}: /help lists the commands "
                "(start a message with // to send a line beginning with /).",
                "yellow",
            )
        return None

    def help(self) -> None:
        self.say("Commands (handled here, never sent to the model):", "bold")
        width = max(len(c) for c in COMMANDS)
        for command, what in COMMANDS.items():
            self.say(f"  {command:<{width}}  {what}")
        self.say("Anything else is sent to the model. Ctrl+C stops an answer.", "dim")

    def _models(self) -> tuple[list[dict[str, Any]], str | None]:
        listing = self.client.models()
        return list(listing["items"]), listing.get("default")

    def current_model(self) -> str | None:
        if self.model:
            return self.model
        if self.conversation and self.conversation.get("model"):
            return str(self.conversation["model"])
        return None

    def switch_model(self, choice: str) -> None:
        items, default = self._models()
        if not choice:
            current = self.current_model() or default
            if not items:
                self.say("No model is available: an admin adds providers in Admin > Providers.")
            for i, item in enumerate(items, 1):
                marks = [
                    m
                    for m, on in (
                        ("current", item["ref"] == current),
                        ("default", item["ref"] == default),
                    )
                    if on
                ]
                suffix = f"  ({', '.join(marks)})" if marks else ""
                self.say(f"  {i:>2}. {item['ref']}{suffix}")
            self.say("/model <n or provider/model> switches.", "dim")
            return
        refs = [item["ref"] for item in items]
        if choice.isdigit() and 1 <= int(choice) <= len(refs):
            ref = refs[int(choice) - 1]
        elif choice in refs:
            ref = choice
        else:
            matches = [r for r in refs if r.split("/", 1)[-1] == choice]
            if len(matches) != 1:
                self.say(f"No model {choice!r}: /model lists yours.", "yellow")
                return
            ref = matches[0]
        self.model = ref
        if self.conversation is not None:
            self.conversation = self.client.set_model(self.conversation["id"], ref)
        self.say(f"Model: {ref}", "dim")

    def history(self) -> None:
        self.listed = self.client.conversations(limit=20)
        if not self.listed:
            self.say("No conversations yet.")
            return
        current = self.conversation["id"] if self.conversation else None
        for i, conv in enumerate(self.listed, 1):
            mark = " *" if conv["id"] == current else ""
            when = str(conv.get("updated_at", ""))[:16].replace("T", " ")
            title = conv.get("title") or "(untitled)"
            self.say(
                f"  {i:>2}. {_one_line(title, 50)}  [{when}, {conv.get('model') or '-'}]{mark}"
            )
        self.say("/open <n> continues one.", "dim")

    def open(self, which: str) -> None:
        if not which:
            self.say("Usage: /open <n from /history, or a conversation id>", "yellow")
            return
        if which.isdigit():
            if not self.listed:
                self.listed = self.client.conversations(limit=20)
            index = int(which)
            if not 1 <= index <= len(self.listed):
                self.say(f"No conversation {which}: /history lists them.", "yellow")
                return
            which = self.listed[index - 1]["id"]
        detail = self.client.conversation(which)
        self.conversation = detail["conversation"]
        self.model = None
        title = self.conversation.get("title") or "(untitled)"
        messages = detail.get("messages", [])
        self.say(f"── {title} ({len(messages)} messages) ──", "bold")
        for message in messages[-10:]:
            if message["role"] == "user":
                self.say(f"> {message['content']}", "cyan")
            elif message["role"] == "assistant":
                for step in message.get("steps") or []:
                    self._step_line(step["name"], step.get("arguments", ""))
                    self._result_line(step.get("output", ""), bool(step.get("is_error")))
                self.console.print(Markdown(message.get("content") or ""))

    def _ensure_conversation(self) -> str:
        if self.conversation is None:
            self.conversation = self.client.create_conversation(self.model)
        return str(self.conversation["id"])

    def attach(self, raw: str) -> None:
        if not raw:
            self.say("Usage: /attach <path>", "yellow")
            return
        path = Path(raw.strip("'\"")).expanduser()
        if not path.is_file():
            self.say(f"No file at {path}.", "yellow")
            return
        conversation_id = self._ensure_conversation()
        record = self.client.upload(path, conversation_id)
        size = record.get("size_bytes", 0)
        self.say(f"Attached {record['filename']} ({record.get('kind')}, {size} bytes)", "green")
        deadline = time.monotonic() + FILE_WAIT_S
        status = record.get("status")
        try:
            while status not in ("ready", "failed") and time.monotonic() < deadline:
                time.sleep(0.3)
                record = self.client.file(record["id"])
                status = record.get("status")
        except KeyboardInterrupt:
            self.say("(not waiting: the file is still being read)", "dim")
            return
        if status == "failed":
            self.error(f"{record['filename']} could not be read: {record.get('error')}")
        elif status != "ready":
            self.say(f"{record['filename']} is still being read ({status}).", "dim")
        else:
            self.say(f"{record['filename']} is ready.", "dim")

    # ------------------------------------------------------------ a turn

    def ask(self, text: str) -> int:
        """Send one message and show the answer as it streams; 0, or 1 on an error."""
        conversation_id = self._ensure_conversation()
        code = 0
        answer = _Answer(self.console)
        try:
            with self.client.send(conversation_id, text, self.model) as events:
                for name, data in _until_quiet(events, LATE_WAIT_S):
                    code = self._on_event(name, data, answer, conversation_id) or code
        except KeyboardInterrupt:
            answer.stop()
            with contextlib.suppress(ClientError):
                self.client.stop(conversation_id)
            self.say("(stopped)", "yellow")
            return 0
        finally:
            answer.stop()
        return code

    def _on_event(self, name: str, data: dict[str, Any], answer: _Answer, conv: str) -> int:
        if name == "text":
            answer.add_text(str(data.get("text", "")))
        elif name == "reasoning":
            answer.add_reasoning(str(data.get("text", "")))
        elif name == "tool_start":
            answer.stop()
            self._step_line(str(data.get("name")), str(data.get("arguments", "")))
        elif name == "tool_confirm":
            answer.stop()
            self._confirm(conv, data)
        elif name == "tool_result":
            answer.stop()
            self._result_line(
                str(data.get("output", "")),
                bool(data.get("is_error")),
                data.get("duration_ms"),
                data.get("attachments") or [],
            )
        elif name == "context":
            answer.stop()
            self.say(f"({data.get('message')})", "dim")
        elif name == "error":
            answer.stop()
            self.error(_one_line(str(data.get("message", "the answer failed")), 300))
            return 1
        elif name == "done":
            answer.stop()
            message = data.get("message") or {}
            sources = message.get("sources") or []
            cited = [s for s in sources if s.get("kind") in ("web", "file")]
            for i, source in enumerate(cited[:8], 1):
                where = source.get("url") or source.get("filename") or ""
                self.say(f"  [{i}] {_one_line(source.get('title') or '', 60)}  {where}", "dim")
            if data.get("finish_reason") == "cancelled":
                self.say("(stopped)", "yellow")
        elif name == "memory_updated":  # "remember that...", or learned after the answer
            answer.stop()
            changes = [
                f"{m.get('title')} ({VERBS.get(m.get('action') or 'added', m.get('action'))})"
                for m in data.get("memories") or []
                if isinstance(m, dict)
            ]
            if changes:
                self.say(_one_line("Memory updated: " + "; ".join(changes), 200), "dim")
        elif name == "title" and self.conversation is not None:
            self.conversation["title"] = data.get("title")
        return 0

    def _step_line(self, name: str, arguments: str) -> None:
        self.say(f"⚙ {name}({summarize_arguments(arguments)})", "magenta")

    def _result_line(
        self,
        output: str,
        is_error: bool,
        duration_ms: Any = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> None:
        took = f"  {duration_ms / 1000:.1f}s" if isinstance(duration_ms, int | float) else ""
        style = "red" if is_error else "dim"
        self.say(f"  → {'error: ' if is_error else ''}{_one_line(output)}{took}", style)
        for item in attachments or []:
            self.say(f"  ⎘ {item.get('filename')}: {self.client.url}{item.get('url')}", "dim")

    def _confirm(self, conversation_id: str, data: dict[str, Any]) -> None:
        what = f"{data.get('name')}({summarize_arguments(str(data.get('arguments', '')))})"
        try:
            reply = self.read(f"Allow {what}? [y/N] ").strip().lower()
        except (EOFError, KeyboardInterrupt):
            reply = ""
        self.client.decide_tool_call(conversation_id, str(data.get("id")), reply in ("y", "yes"))


class _Tail:
    """The last lines of a renderable that fit the screen (what streams in stays in
    view; the whole answer is printed once when it ends)."""

    def __init__(self, renderable: Any, height: int) -> None:
        self.renderable = renderable
        self.height = max(1, height)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.renderable, options, pad=False)
        for line in lines[-self.height :]:
            yield from line
            yield Segment.line()


class _Answer:
    """The answer being streamed: its Markdown re-rendered in place (``rich.live``,
    the lines that fit the screen), then printed whole into the scrollback."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.text = ""
        self.reasoning = ""
        self.live: Live | None = None

    def _render(self) -> Group:
        parts: list[Any] = []
        if self.reasoning and not self.text:
            parts.append(Text(_one_line(self.reasoning, 200), style="dim italic"))
        if self.text:
            parts.append(Markdown(self.text))
        return Group(*parts)

    def _show(self) -> None:
        if not self.console.is_terminal:
            return  # piped: printed once at the end
        view = _Tail(self._render(), self.console.size.height - 2)
        if self.live is None:
            self.live = Live(
                view,
                console=self.console,
                refresh_per_second=10,
                transient=True,
                vertical_overflow="crop",
            )
            self.live.start()
        else:
            self.live.update(view)

    def add_text(self, text: str) -> None:
        self.text += text
        self._show()

    def add_reasoning(self, text: str) -> None:
        self.reasoning += text
        self._show()

    def stop(self) -> None:
        """End this part of the answer (a tool step or the end follows)."""
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self.text:
            self.console.print(Markdown(self.text))
        self.text = ""
        self.reasoning = ""


# ---------------------------------------------------------------- entry points


def _until_quiet(
    events: Iterator[tuple[str, dict[str, Any]]], wait_s: float
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The turn's events, read in a helper thread; once ``done`` has come, the late
    ones (a memory learned after the answer, the model's title) for at most
    ``wait_s`` more, so the prompt comes back promptly even if the stream stays open.
    The caller closing the response ends the helper's read."""
    inbox: queue.Queue[tuple[str, dict[str, Any]] | BaseException | None] = queue.Queue()

    def read() -> None:
        try:
            for item in events:
                inbox.put(item)
            inbox.put(None)
        except BaseException as exc:  # handed to the reader: raised there, not lost
            inbox.put(exc)

    threading.Thread(target=read, daemon=True, name="parley-chat-events").start()
    deadline: float | None = None
    while True:
        if deadline is None:
            item = inbox.get()
        else:
            try:
                item = inbox.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                return
        if item is None:
            return
        if isinstance(item, BaseException):
            if deadline is not None:
                return  # the answer is in; a cut after it changes nothing shown
            raise item
        yield item
        if item[0] == "done" and deadline is None:
            deadline = time.monotonic() + wait_s


def _client(url: str) -> ParleyClient:
    key = credentials.api_key_for(url)
    if key is None:
        raise NotSignedIn(f"Not signed in to {url}: run `parley login` (or set PARLEY_API_KEY).")
    return ParleyClient(url, key)


def _readline() -> None:
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401 - line editing and history for input()


def run_chat(url: str, model: str | None = None, message: str | None = None) -> int:
    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        ParleyClient(url).request("GET", "/api/health")
        client = _client(url)
    except ClientError as exc:
        err.print(Text(f"Error: {exc}", style="bold red"), soft_wrap=True)
        return 1
    try:
        session = ChatSession(client, console)
        me = client.me()
        items, default = session._models()
        if model:
            refs = [item["ref"] for item in items]
            if model not in refs:
                names = ", ".join(refs[:8]) or "none"
                raise ClientError(f"No model {model!r} on this server; yours: {names}.")
            session.model = model
        if message is not None:
            return session.ask(message)
        _readline()
        session.say(
            f"Parley at {url}, signed in as {me['email']}; model: "
            f"{session.model or default or 'none'}. /help lists the commands.",
            "dim",
        )
        return session.loop()
    except ClientError as exc:
        err.print(Text(f"Error: {exc}", style="bold red"), soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback
        err.print(Text(f"Error: unexpected {type(exc).__name__}: {exc}", style="bold red"))
        return 1
    finally:
        client.close()


def run_login(url: str, email: str | None = None, password: str | None = None) -> int:
    err = Console(stderr=True, highlight=False)
    client = ParleyClient(url)
    try:
        client.request("GET", "/api/health")
        email = email or input("Email: ").strip()
        if password is None:
            password = getpass.getpass("Password: ") if sys.stdin.isatty() else input()
        key = client.login(email, password, f"parley chat on {socket.gethostname()}")
    except ClientError as exc:
        err.print(Text(f"Error: {exc}", style="bold red"), soft_wrap=True)
        return 1
    except (EOFError, KeyboardInterrupt):
        err.print()
        return 1
    finally:
        client.close()
    path = credentials.save_key(url, key["key"], email, key["id"])
    print(f"Signed in to {url} as {email}. API key saved to {path} (readable by you only).")
    return 0


def run_logout(url: str) -> int:
    entry = credentials.forget(url)
    if entry is None:
        print(f"No saved key for {url}.")
        return 0
    client = ParleyClient(url, entry.get("api_key"))
    try:
        client.request("DELETE", f"/api/keys/{entry.get('key_id')}")
        print(f"Signed out of {url}: the key is revoked and forgotten.")
    except ClientError as exc:
        print(f"Forgot the key for {url}; revoking it failed: {exc}")
    finally:
        client.close()
    return 0
