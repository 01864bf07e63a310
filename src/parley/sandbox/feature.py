"""The code interpreter as a Parley feature: the ``run_python`` tool and its outputs route.

The tool's text (what the model reads) lists stdout, the result, errors and
the names of files made; charts and files travel as attachments on the tool
step, served by ``GET /api/sandbox/outputs/{id}`` to their owner only.
Deleting an account or a conversation removes its outputs and kills its
kernels at once (``deletion.SandboxData``, registered even when code execution
is off, since outputs made earlier remain).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from parley.config import Settings
from parley.sandbox.bwrap import Limits
from parley.sandbox.deletion import SandboxData
from parley.sandbox.manager import (
    RunResult,
    SandboxManager,
    config_from_settings,
    default_python,
)
from parley.sandbox.outputs import OutputStore
from parley.sandbox.routes import router
from parley.seam import CONVERSATION_FILES, ConversationFiles, FeatureContext
from parley.storage.objects import Scoped, build_object_store
from parley.tools import Tool, ToolContext, ToolOutput, tool_from_function
from parley.userdata.journal import DeletionJournal

log = logging.getLogger(__name__)

__all__ = [
    "SandboxFeature",
    "config_from_settings",
    "default_python",
    "render",
    "sandbox_feature",
]

TOOL_NAME = "run_python"
HOUSEKEEPING_EVERY_S = 3600.0
PENDING_GRACE_S = 600.0
_SECTION_CHARS = 6000


def _clip(text: str, limit: int = _SECTION_CHARS) -> str:
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit - limit * 2 // 3
    omitted = len(text) - limit
    return f"{text[:head]}\n[... {omitted} characters omitted ...]\n{text[-tail:]}"


def render(result: RunResult, limits: Limits) -> ToolOutput:
    """The model-facing text and the user-facing attachments of one run."""
    if result.unavailable:
        return ToolOutput(result.unavailable, is_error=True)
    run = result.execution
    parts: list[str] = list(result.notes)
    failed = False
    if run is not None:
        if run.stdout:
            parts.append(f"stdout:\n{_clip(run.stdout)}")
        if run.stderr:
            parts.append(f"stderr:\n{_clip(run.stderr)}")
        if run.result:
            parts.append(f"result:\n{_clip(run.result.rstrip())}")
        if run.error:
            failed = True
            error = _clip(run.error)
            if run.error_name == "MemoryError":
                error += (
                    f"\n(The sandbox is limited to {limits.memory_bytes // 2**20} MB of memory.)"
                )
            elif re.search(r"No space left on device|Errno 28", run.error):
                error += f"\n(The working directory is limited to {limits.disk_bytes // 2**20} MB.)"
            elif re.search(r"File too large|Errno 27", run.error):
                error += f"\n(Files are limited to {limits.file_bytes // 2**20} MB each.)"
            parts.append(f"error:\n{error}")
        if run.timed_out:
            failed = True
            parts.append(
                f"Execution stopped: it ran longer than the {limits.wall_seconds:g} s limit."
            )
        if run.died:
            failed = True
            parts.append(f"{run.died} Variables from earlier calls are lost.")
        elif run.oom_kills:
            parts.append(
                f"{run.oom_kills} process(es) of the sandbox ran out of memory and were killed "
                f"(its processes together may use {limits.memory_bytes // 2**20} MB)."
            )
        if run.leftovers_killed:
            parts.append(
                f"{run.leftovers_killed} process(es) the code left running were stopped when "
                "the call ended: nothing runs in the background between calls."
            )
    if result.attachments:
        listed = ", ".join(
            f"{a.filename} ({'image shown to the user' if a.kind == 'image' else 'file'})"
            for a in result.attachments
        )
        parts.append(f"Files given to the user: {listed}")
    if result.quota_note:
        parts.append(result.quota_note)
    text = "\n\n".join(parts) or "(no output)"
    return ToolOutput(text, is_error=failed, attachments=[a.as_dict() for a in result.attachments])


class SandboxFeature:
    """Registers ``run_python`` and serves outputs; the manager holds the kernels."""

    name = "sandbox"
    router: Any = router
    body_limits: ClassVar[dict[str, int]] = {}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = config_from_settings(settings)
        self.manager: SandboxManager | None = None
        self.store: OutputStore | None = None
        # outputs' bytes: the data dir (None) or the S3 bucket's ``sandbox/outputs/``
        self.objects: Scoped | None = (
            Scoped(build_object_store(settings), "sandbox/outputs")
            if settings.storage_backend != "local"
            else None
        )
        self.data: SandboxData | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._conversation_files: Callable[[], ConversationFiles | None] = lambda: None

    def tool(self) -> Tool:
        async def run_python(code: str, ctx: ToolContext) -> ToolOutput:
            """Run Python code in a sandboxed Jupyter session kept for this conversation.

            Variables and files persist between calls. pandas, numpy and matplotlib
            are installed; there is no internet access. The working directory is
            /mnt/data and holds the conversation's files; files you save there and
            matplotlib charts (plt.show()) are given to the user.

            Args:
                code: Python source to execute; the last expression's value is returned.
            """
            if self.manager is None:
                return ToolOutput("Code execution is unavailable: it is not started.", True)
            result = await self.manager.run(ctx.user_id or "", ctx.conversation_id, code)
            return render(result, self.config.limits)

        timeout = self.config.limits.wall_seconds + self.config.start_timeout_s + 5
        return tool_from_function(
            run_python,
            name=TOOL_NAME,
            timeout_s=timeout,
            title="Run code",
            summary="Runs Python in a sandbox to compute, analyse files and make charts",
        )

    async def start(self, ctx: FeatureContext) -> None:
        await self._start_user_data(ctx)  # outputs are deleted even with execution off
        if not self.settings.sandbox_enabled:
            return
        self.store = OutputStore(
            ctx.db, self.settings.data_dir / "sandbox" / "outputs", self.objects
        )
        ctx.provide(OutputStore, self.store)
        # The conversation's files come from the knowledge feature when it runs.
        files = ctx.lookup(CONVERSATION_FILES)
        self._conversation_files = files
        self.manager = SandboxManager(self.config, self.store, self._files)
        reason = self.manager.unavailable_reason()
        if reason:
            # said once; the tool is not offered (the model would only be told it failed)
            log.warning(
                "code interpreter unavailable, run_python is not offered: %s "
                "(`parley doctor` checks the sandbox)",
                reason,
            )
            ctx.withhold_tool(self.tool(), f"Code execution is unavailable: {reason}")
            return
        if cgroups := self.manager.cgroup_status():
            log.warning(
                "code interpreter without cgroups (%s): memory, process and CPU limits "
                "hold per process only, not for a sandbox as a whole (README: Code interpreter)",
                cgroups,
            )
        if ctx.settings.tool_timeout_s < self.config.limits.wall_seconds + 2:
            log.warning(
                "PARLEY_TOOL_TIMEOUT_S (%s) is below PARLEY_SANDBOX_WALL_S (%s): "
                "long runs will be cut by the tool timeout",
                ctx.settings.tool_timeout_s,
                self.config.limits.wall_seconds,
            )
        ctx.add_tool(self.tool())
        ctx.add_revoker(self._revoke)
        if self.config.spares > 0:
            # Spares are started in the background and retried: a sandbox whose kernels
            # cannot start withdraws the tool until one does (the manager logs it once).
            self.manager.on_status = lambda error: self._offer(ctx, error)
        self.manager.start_reaper()

    def _offer(self, ctx: FeatureContext, error: str) -> None:
        if not error:
            ctx.add_tool(self.tool(), replace=True)
        else:
            reason = f"Code execution is unavailable: the sandbox cannot start ({error})."
            ctx.withhold_tool(self.tool(), reason)

    async def _start_user_data(self, ctx: FeatureContext) -> None:
        """Account and conversation deletion remove outputs and kill kernels
        (``parley.sandbox.deletion``); a deletion a crash interrupted is finished
        now, and unreferenced outputs are swept now and hourly."""
        data_dir = self.settings.data_dir
        self.data = SandboxData(
            ctx.db,
            data_dir / "sandbox" / "outputs",
            DeletionJournal(data_dir / "deletions" / "sandbox"),
            lambda: self.manager,
            self.objects,
        )
        ctx.add_user_data(self.data)
        ctx.add_conversation_data(self.data)
        await self.data.replay()
        self._housekeeping = asyncio.create_task(self._sweep_forever(self.data))

    @staticmethod
    async def _sweep_forever(data: SandboxData) -> None:
        while True:
            await data.collect_orphan_outputs()
            await asyncio.sleep(HOUSEKEEPING_EVERY_S)
            try:
                await data.replay(older_than_s=PENDING_GRACE_S)
            except Exception:
                log.exception("completing pending output deletions failed")

    async def _files(self, user_id: str, conversation_id: str | None) -> list[tuple[str, Path]]:
        files = self._conversation_files()
        if files is None:
            return []
        return [(name, Path(path)) for name, path in await files(user_id, conversation_id)]

    async def _revoke(self, user_id: str) -> None:
        """A disabled or deleted account's kernels die at once, mid-run included."""
        if self.manager is not None:
            await self.manager.close_for(user_id)

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
            self._housekeeping = None
        if self.manager is not None:
            await self.manager.close()
            self.manager = None


def sandbox_feature(settings: Settings) -> SandboxFeature:
    """The factory listed in ``DEFAULT_FEATURES``."""
    return SandboxFeature(settings)
