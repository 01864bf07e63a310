"""`parley login` and `parley chat` driven through a pseudo-terminal against a real
HTTP server (the scripted model): the chat is a client of the server's own API, so
its conversations, files and tool steps are the web app's; commands stay local;
Ctrl+C stops an answer; errors are one line."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from parley.config import Settings
from parley.messages import ToolCall
from parley.providers.base import Provider
from parley.providers.scripted import Reply, ScriptedModel
from parley.tools import Tool, tool
from parley.turns import TurnService

SRC = str(Path(__file__).resolve().parents[2] / "src")
EMAIL, PASSWORD = "term@example.com", "terminal password"
PROMPT = "\n> "  # the chat's prompt at the start of a line (ANSI and \r stripped)
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\r")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(getattr(request, "param", {}))


@pytest.fixture
def server_tools() -> list[Tool]:
    """Tools added to the server's registry (a test parametrizes this)."""
    return []


@pytest.fixture
def server(
    settings: Settings,
    extra_providers: list[Provider],
    features: list[Any] | None,
    server_tools: list[Tool],
) -> Iterator[str]:
    """A real Parley HTTP server in a thread with one account; yields its URL."""
    from parley.api.app import create_app

    app = create_app(settings, extra_providers=extra_providers, features=features)

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    for extra in server_tools:  # the features have started: the registry is there
        app.state.services.require(TurnService).tools.register(extra)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url) as c:
        answer = c.post("/api/auth/signup", json={"email": EMAIL, "password": PASSWORD})
        assert answer.status_code == 201
    try:
        yield url
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


class Terminal:
    """`parley ...` on a pseudo-terminal: type lines, wait for text (ANSI stripped)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))

        def controlling_tty() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "parley.cli", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=controlling_tty,
        )
        os.close(slave)
        self.master = master
        self.seen = ""  # everything read, ANSI stripped
        self.pos = 0  # where the next expect() starts looking

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return False
        if not data:
            return False
        self.seen += ANSI.sub("", data.decode("utf-8", "replace"))
        return True

    def expect(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            found = self.seen.find(text, self.pos)
            if found >= 0:
                chunk = self.seen[self.pos : found + len(text)]
                self.pos = found + len(text)
                return chunk
            left = deadline - time.monotonic()
            if left <= 0 or (not self._read(min(left, 0.2)) and self.proc.poll() is not None):
                if self.seen.find(text, self.pos) >= 0:
                    continue
                raise AssertionError(
                    f"{text!r} not seen; output after the last match:\n{self.seen[self.pos :]}"
                )

    def send(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")

    def wait(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        while self._read(0.05):
            pass
        try:
            return self.proc.wait(timeout=15)  # a loaded CI machine: not 1 s
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the client did not exit; output after the last match:\n{self.seen[self.pos :]}"
            ) from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "PYTHONPATH": SRC,
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        **extra,
    }


def _login(url: str, env: dict[str, str]) -> None:
    term = Terminal(["login", "--url", url], env)
    try:
        term.expect("Email:")
        term.send(EMAIL)
        term.expect("Password:")
        term.send(PASSWORD)
        term.expect("Signed in to")
        assert term.wait() == 0
    finally:
        term.close()


def test_login_then_chat_is_a_client_of_the_server(
    server: str, scripted: ScriptedModel, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    _login(server, env)
    saved = tmp_path / "config" / "parley" / "credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert "pk-" in saved.read_text()

    term = Terminal(["chat", "--url", server], env)
    try:
        term.expect(f"signed in as {EMAIL}")
        term.expect(PROMPT)
        # commands are local: /help lists them and never reaches the model
        term.send("/help")
        assert "/attach <path>" in term.expect("Ctrl+C stops an answer")
        term.expect(PROMPT)
        term.send("/frobnicate now")
        term.expect("Unknown command /frobnicate: /help lists the commands")
        term.expect(PROMPT)
        term.send("/model")
        term.expect("scripted/scripted")
        term.expect(PROMPT)

        # a message streams back, rendered
        term.send("Hi there")
        term.expect("Hello from the scripted model.")
        term.expect(PROMPT)
        headers = {"Authorization": f"Bearer {_key(saved)}"}
        with httpx.Client(base_url=server, headers=headers) as api:
            items = api.get("/api/conversations").json()["items"]
            assert len(items) == 1, "the terminal's conversation is the web app's"
            conversation_id = items[0]["id"]
            messages = api.get(f"/api/conversations/{conversation_id}").json()["messages"]
            assert [m["content"] for m in messages][:1] == ["Hi there"]

        # a tool step is shown: name, arguments and result summarised
        scripted.enqueue(
            Reply(tool_calls=[ToolCall("call_1", "calculator", '{"expression": "6*7"}')]),
            "The answer is **42**.",
        )
        term.send("What is 6*7?")
        term.expect("calculator(expression=6*7)")
        term.expect("→ 42")
        term.expect("The answer is 42.")  # Markdown rendered: no asterisks
        term.expect(PROMPT)

        # a file is uploaded to the conversation
        notes = tmp_path / "notes.txt"
        notes.write_text("The launch code word is marmalade.\n")
        term.send(f"/attach {notes}")
        term.expect("Attached notes.txt")
        term.expect("notes.txt is ready")
        with httpx.Client(base_url=server, headers=headers) as api:
            files = api.get("/api/files", params={"conversation_id": conversation_id}).json()
            assert [f["filename"] for f in files["items"]] == ["notes.txt"]

        # history is shared; /new then /open brings the conversation back
        term.send("/new")
        term.expect("New conversation")
        term.send("/history")
        term.expect(" 1. ")
        term.send("/open 1")
        term.expect("> Hi there")
        term.expect(PROMPT)

        # Ctrl+C stops a streaming answer through the stop route
        scripted.enqueue(Reply(text="slow " * 400, delay_s=0.05))
        term.send("Tell me a long story")
        term.expect("slow slow")
        term.ctrl_c()
        term.expect("(stopped)")
        term.expect(PROMPT)
        with httpx.Client(base_url=server, headers=headers) as api:
            deadline = time.monotonic() + 10
            while True:
                last = api.get(f"/api/conversations/{conversation_id}").json()["messages"][-1]
                if last["status"] != "streaming" or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert last["status"] == "cancelled", last["status"]
            assert last["content"].count("slow") < 400

        # no request to the model ever carried a command
        for request in scripted.requests:
            for message in request.messages:
                assert "/help" not in message.content and "/frobnicate" not in message.content

        # Ctrl+C twice at the prompt quits
        term.ctrl_c()
        term.expect("Ctrl+C again to quit")
        # At the prompt, as a person would be: CPython's readline loses a SIGINT that
        # lands in the instant between printing the prompt and waiting for a key.
        term.expect(PROMPT)
        time.sleep(0.3)
        term.ctrl_c()
        assert term.wait() == 0
        assert "Traceback" not in term.seen
    finally:
        term.close()


def _learned(fact: str, delay_s: float) -> Reply:
    """The memory model's extraction reply (the chat's own model: no memory_model)."""
    data = {"memories": [{"action": "add", "fact": fact, "memory": 0}]}
    return Reply(data=data, chunk_size=1000, delay_s=delay_s)


@pytest.mark.parametrize("overrides", [{"title_model": "none"}], indirect=True)
def test_a_memory_learned_after_the_answer_is_one_line_and_never_holds_the_prompt(
    server: str, scripted: ScriptedModel, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    _login(server, env)
    term = Terminal(["chat", "--url", server], env)
    try:
        term.expect(PROMPT)
        scripted.enqueue("Lisbon is lovely.", _learned("I keep bees", 0.5))
        term.send("I live in Lisbon and I keep bees")
        term.expect("Lisbon is lovely.")
        term.expect("Memory updated: I keep bees. (saved)")
        term.expect(PROMPT)

        # A memory model slower than the client waits: the prompt comes back anyway,
        # and the memory arriving later on the abandoned stream prints nothing.
        scripted.enqueue("Bees like lavender.", _learned("I grow lavender", 4.0))
        term.send("I grow lavender for my bees")
        term.expect("Bees like lavender.")
        answered = time.monotonic()
        term.expect(PROMPT)
        assert time.monotonic() - answered < 4.0
        time.sleep(4.5)
        term.send("/help")
        term.expect("Ctrl+C stops an answer")
        term.expect(PROMPT)
        assert "I grow lavender" not in term.seen.replace("I grow lavender for my bees", "")
        assert "Traceback" not in term.seen
        term.send("/exit")
        assert term.wait() == 0
    finally:
        term.close()


def _key(path: Path) -> str:
    import json

    servers = json.loads(path.read_text())["servers"]
    return str(next(iter(servers.values()))["api_key"])


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parley.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_server_down_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    result = _run(["chat", "--url", url], _env(tmp_path, PARLEY_API_KEY="pk-x"))
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert f"Cannot reach Parley at {url}" in lines[0] and "parley serve" in lines[0]


def test_a_refused_key_says_to_log_in(server: str, tmp_path: Path) -> None:
    result = _run(["chat", "--url", server], _env(tmp_path, PARLEY_API_KEY="pk-wrong"))
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and "run `parley login`" in lines[0], lines
    no_key = _run(["chat", "--url", server], _env(tmp_path))
    assert no_key.returncode == 1 and "parley login" in no_key.stderr


def test_one_message_and_an_unknown_model(server: str, tmp_path: Path) -> None:
    env = _env(tmp_path)
    _login(server, env)
    once = _run(["chat", "--url", server, "-m", "Hello?"], env)
    assert once.returncode == 0, once.stderr
    assert "Hello from the scripted model." in once.stdout
    unknown = _run(["chat", "--url", server, "--model", "nope/nothing", "-m", "hi"], env)
    assert unknown.returncode == 1
    lines = (unknown.stdout + unknown.stderr).strip().splitlines()
    assert len(lines) == 1 and "No model 'nope/nothing'" in lines[0], lines


SENT: list[str] = []


@tool(side_effecting=True)
def send_email(to: str) -> str:
    """Send an email."""
    SENT.append(to)
    return f"sent to {to}"


@pytest.mark.parametrize("server_tools", [[send_email]])
def test_a_side_effecting_call_asks_first(
    server: str, scripted: ScriptedModel, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    _login(server, env)
    SENT.clear()
    for _ in range(2):
        scripted.enqueue(
            Reply(tool_calls=[ToolCall("call_1", "send_email", '{"to": "bob@example.com"}')]),
            lambda request: f"Tool said: {request.messages[-1].content}",
        )
    term = Terminal(["chat", "--url", server], env)
    try:
        term.expect(PROMPT)
        term.send("mail bob")
        term.expect("send_email(to=bob@example.com)")
        term.expect("Allow send_email(to=bob@example.com)? [y/N]")
        term.send("n")
        term.expect("→ error:")
        term.expect(PROMPT)
        assert SENT == []
        term.send("mail bob again")
        term.expect("Allow send_email(to=bob@example.com)? [y/N]")
        term.send("y")
        term.expect("→ sent to bob@example.com")
        term.expect(PROMPT)
        assert SENT == ["bob@example.com"]
        term.send("/exit")
        assert term.wait() == 0
    finally:
        term.close()


def test_logout_revokes_the_key_and_the_environment_wins(server: str, tmp_path: Path) -> None:
    env = _env(tmp_path)
    _login(server, env)
    saved = tmp_path / "config" / "parley" / "credentials.json"
    key = _key(saved)
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {key}"}) as api:
        assert api.get("/api/auth/me").status_code == 200
    # PARLEY_API_KEY wins over the saved key
    wrong = _run(["chat", "--url", server, "-m", "hi"], {**env, "PARLEY_API_KEY": "pk-nope"})
    assert wrong.returncode == 1 and "parley login" in wrong.stderr
    out = _run(["logout", "--url", server], env)
    assert out.returncode == 0 and "revoked" in out.stdout
    assert "pk-" not in saved.read_text()
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {key}"}) as api:
        assert api.get("/api/auth/me").status_code == 401
