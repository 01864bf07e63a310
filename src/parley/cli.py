"""The ``parley`` command: serve, worker, chat, login, users, keys, migrate, doctor.

Thin by design: each subcommand builds settings, opens what it needs, and calls
the same code the HTTP API uses.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parley.config import Settings, load_settings

if TYPE_CHECKING:
    from parley.auth.scopes import KeyScopes


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
        # open streams get this long to end; then the app stops the turns still running
        "timeout_graceful_shutdown": max(1, round(settings.shutdown_grace_s)),
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


async def _work(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """Start every feature with the job loop on and no HTTP; run until SIGTERM/SIGINT
    (or ``stop``), then hand unfinished jobs back to the queue."""
    import signal

    from parley.api.app import create_app

    app = create_app(settings, server_process=True, run_jobs=True)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with app.router.lifespan_context(app):
        print(f"Parley worker {_version()} running jobs (pid {os.getpid()})", flush=True)
        await stop.wait()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run background jobs (ingestion, re-embedding...) without serving HTTP: on
    another host, or beside servers started with PARLEY_JOBS_IN_SERVER=false."""
    settings = _settings(args)
    if args.concurrency:
        settings.jobs_concurrency = args.concurrency
    return _run(_work(settings))


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


async def _revoke_on_servers(settings: Settings, user_id: str, session: Any) -> None:
    """Running servers stop the user's answers and kernels, as Admin -> Users does:
    over Redis at once when it is configured, and on PostgreSQL through a stop row
    every server polls (committed with the change, ``parley.storage.signals``).
    With neither (SQLite) they refuse the user's next request only."""
    from parley.storage.signals import add_stop
    from parley.turns.control import make_control, owner

    key = owner("user", user_id)
    if not settings.is_sqlite:
        await add_stop(session, key)
    if not settings.redis_url:
        return
    control = await make_control(settings.redis_url)
    try:
        await control.stop(key)
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
                await _revoke_on_servers(settings, user.id, session)
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


def _key_scopes(values: list[str]) -> KeyScopes:
    """``--scope chat --scope model:openai/gpt-4o``: endpoint groups, and
    ``model:``, ``assistant:``, ``project:`` entries (commas also separate)."""
    from parley.auth.scopes import ENDPOINT_GROUPS, KeyScopes

    lists: dict[str, list[str]] = {"endpoints": [], "models": [], "assistants": [], "projects": []}
    for value in (v.strip() for item in values for v in item.split(",")):
        if not value:
            continue
        kind, sep, name = value.partition(":")
        if not sep:
            if value not in ENDPOINT_GROUPS:
                raise ValueError(
                    f"Unknown scope {value!r}: use {', '.join(ENDPOINT_GROUPS)}, "
                    "or model:REF, assistant:SLUG (or ID), project:ID."
                )
            lists["endpoints"].append(value)
        elif kind in ("model", "assistant", "project") and name:
            lists[kind + "s"].append(name)
        else:
            raise ValueError(
                f"Unknown scope {value!r}: use model:REF, assistant:SLUG (or ID), project:ID."
            )
    return KeyScopes.from_stored(lists)


def _describe_scopes(scopes: KeyScopes) -> str:
    if scopes.unlimited:
        return "all scopes"
    parts = []
    for name in ("endpoints", "models", "assistants", "projects"):
        values = getattr(scopes, name)
        if values:
            parts.append(f"{name}: {','.join(values)}")
    return "; ".join(parts)


def cmd_keys(args: argparse.Namespace) -> int:
    from parley.auth import accounts
    from parley.auth.scopes import KeyScopes

    settings = _settings(args)

    async def action(session: Any) -> int:
        user = await accounts.user_by_email(session, args.user)
        if user is None:
            print(f"No user with email {args.user}.", file=sys.stderr)
            return 1
        if args.action == "create":
            try:
                scopes = _key_scopes(args.scope or [])
            except ValueError as exc:
                print(str(exc), file=sys.stderr)
                return 2
            expires = None
            if args.expires_days is not None:
                if args.expires_days <= 0:
                    print("--expires-days must be a positive number of days.", file=sys.stderr)
                    return 2
                expires = datetime.now(UTC) + timedelta(days=args.expires_days)
            row, plaintext = await accounts.create_api_key(
                session, user.id, args.name, expires_at=expires, scopes=scopes
            )
            print(plaintext)
            print(f"(key {row.id} for {user.email}; it is shown only once)", file=sys.stderr)
        elif args.action == "list":
            now = datetime.now(UTC)
            for key in await accounts.list_api_keys(session, user.id):
                state = "revoked" if key.revoked_at else "active"
                if not key.revoked_at and key.expires_at and key.expires_at <= now:
                    state = "expired"
                expiry = f"expires {key.expires_at:%Y-%m-%d %H:%M}" if key.expires_at else ""
                limits = _describe_scopes(KeyScopes.from_stored(key.scopes))
                print(
                    f"{key.id}  {key.prefix}…  {key.name:<20} {state}  last used "
                    f"{key.last_used_at}  {expiry}  {limits}".rstrip()
                )
        elif args.action == "revoke":
            if not await accounts.revoke_api_key(session, user.id, args.key_id):
                print("No such active key for that user.", file=sys.stderr)
                return 1
            print("Revoked.")
        return 0

    return _run(_with_session(settings, action))


# ---------------------------------------------------------------- chat and login


def _url(args: argparse.Namespace) -> str:
    from parley.terminal.client import DEFAULT_URL

    return str(args.url or os.environ.get("PARLEY_URL") or DEFAULT_URL)


def cmd_chat(args: argparse.Namespace) -> int:
    from parley.terminal.chat import run_chat

    return run_chat(_url(args), args.model, args.message)


def cmd_login(args: argparse.Namespace) -> int:
    from parley.terminal.chat import run_login

    return run_login(_url(args), args.email)


def cmd_logout(args: argparse.Namespace) -> int:
    from parley.terminal.chat import run_logout

    return run_logout(_url(args))


# ---------------------------------------------------------------- doctor


def cmd_doctor(args: argparse.Namespace) -> int:
    from parley.terminal.doctor import run_doctor

    return _run(run_doctor(_settings(args), verbose=args.verbose))


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

    worker = sub.add_parser("worker", help="run background jobs (no web server)")
    worker.add_argument(
        "--concurrency", type=int, help="jobs run at once (PARLEY_JOBS_CONCURRENCY)"
    )
    worker.set_defaults(func=cmd_worker)

    url_help = "the Parley server (PARLEY_URL; default http://127.0.0.1:8080)"
    chat = sub.add_parser("chat", help="chat in the terminal with a Parley server")
    chat.add_argument("--url", help=url_help)
    chat.add_argument("--model", help="provider/model (default: the server's default)")
    chat.add_argument("-m", "--message", help="send one message, print the answer, exit")
    chat.set_defaults(func=cmd_chat)
    login = sub.add_parser("login", help="sign in to a server and save an API key for chat")
    login.add_argument("--url", help=url_help)
    login.add_argument("--email", help="asked when omitted (the password is always asked)")
    login.set_defaults(func=cmd_login)
    logout = sub.add_parser("logout", help="revoke and forget the saved API key")
    logout.add_argument("--url", help=url_help)
    logout.set_defaults(func=cmd_logout)

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
    kc.add_argument(
        "--expires-days", type=int, default=None, help="refuse the key after this many days"
    )
    kc.add_argument(
        "--scope",
        action="append",
        help="limit the key (repeatable): models, chat, responses, conversations, "
        "embeddings, or model:REF, assistant:SLUG, project:ID; none: no limits",
    )
    kl = keys_sub.add_parser("list")
    kl.add_argument("--user", required=True)
    kr = keys_sub.add_parser("revoke")
    kr.add_argument("--user", required=True)
    kr.add_argument("key_id")
    keys.set_defaults(func=cmd_keys)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    doctor = sub.add_parser("doctor", help="check what the set-up really does, say how to fix it")
    doctor.add_argument(
        "-v", "--verbose", action="store_true", help="also list the log records of the checks"
    )
    doctor.set_defaults(func=cmd_doctor)
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
