"""What the code interpreter is for: state, isolation, files in, charts and files out,
caps, reaping, and refusing to run at all when the sandbox is missing."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import MemorySink, Runner
from parley.messages import ToolCall
from parley.sandbox import SandboxConfig, SandboxManager
from parley.sandbox.feature import SandboxFeature
from parley.tools import ToolContext, ToolRegistry

SALES = "month,region,amount\n2026-01,north,120\n2026-01,south,80\n2026-02,north,150\n"


async def test_state_persists_between_calls(run: Runner) -> None:
    await run("import math\ntotal = sum(range(10))\ndef double(x):\n    return 2 * x")
    out = await run("double(total) + math.floor(0.5)")
    assert "result:\n90" in out.text
    assert not out.is_error


async def test_conversations_do_not_share_state(manager: SandboxManager) -> None:
    first, second = Runner(manager, "u1", "c1"), Runner(manager, "u1", "c2")
    await first("token = 'from c1'\nopen('note.txt', 'w').write(token)")
    out = await second("import os\nprint(os.listdir('.'))\ntoken")
    assert "NameError" in out.text
    assert "note.txt" not in out.text
    assert manager.kernel_count("u1") == 2


async def test_csv_in_pandas_chart_and_csv_out(
    sandbox_config: SandboxConfig, tmp_path: Path
) -> None:
    csv = tmp_path / "upload-7f3a"
    csv.write_text(SALES)
    seen: list[tuple[str, str | None]] = []

    async def files(user_id: str, conversation_id: str | None) -> list[tuple[str, Path]]:
        seen.append((user_id, conversation_id))
        return [("sales.csv", csv)]

    sink = MemorySink()
    manager = SandboxManager(sandbox_config, sink, files)
    try:
        run = Runner(manager)
        out = await run(
            "import pandas as pd\nimport matplotlib.pyplot as plt\n"
            "df = pd.read_csv('sales.csv')\n"
            "by_region = df.groupby('region')['amount'].sum()\n"
            "by_region.to_csv('by_region.csv')\n"
            "ax = by_region.plot(kind='bar')\nplt.savefig('chart.png')\nplt.show()\n"
            "print(by_region.to_dict())"
        )
        assert not out.is_error, out.text
        assert "{'north': 270, 'south': 80}" in out.text
        by_name = {a["filename"]: a for a in out.attachments}
        assert set(by_name) == {"figure-1.png", "chart.png", "by_region.csv"}, by_name
        assert by_name["figure-1.png"]["kind"] == "image"
        assert by_name["chart.png"]["media_type"] == "image/png"
        assert by_name["by_region.csv"]["media_type"] == "text/csv"
        assert by_name["figure-1.png"]["url"].startswith("/api/sandbox/outputs/")
        saved = {name: data for _, _, name, data in sink.saved.values()}
        assert saved["figure-1.png"].startswith(b"\x89PNG")
        assert saved["by_region.csv"].decode().splitlines() == [
            "region,amount",
            "north,270",
            "south,80",
        ]
        assert "sales.csv" not in by_name  # inputs are not handed back
        assert seen == [("u1", "c1")]

        csv.write_text(SALES + "2026-02,south,20\n")  # the user replaced the file
        again = await run("int(pd.read_csv('sales.csv')['amount'].sum())")
        assert "result:\n370" in again.text
        assert again.attachments == []
    finally:
        await manager.close()


async def test_idle_kernels_are_reaped(sandbox_config: SandboxConfig) -> None:
    manager = SandboxManager(replace(sandbox_config, idle_s=0.3), MemorySink())
    try:
        run = Runner(manager)
        await run("x = 1")
        assert await manager.reap_idle() == 0 or manager.kernel_count() == 0
        await asyncio.sleep(0.4)
        assert await manager.reap_idle() == 1
        assert manager.kernel_count() == 0
        out = await run("print('back')")
        assert "back" in out.text and "starts fresh" in out.text
    finally:
        await manager.close()


async def test_reaper_task_runs_by_itself(sandbox_config: SandboxConfig) -> None:
    manager = SandboxManager(replace(sandbox_config, idle_s=0.2), MemorySink())
    try:
        await Runner(manager)("1")
        manager.start_reaper(interval_s=0.1)
        for _ in range(50):
            if manager.kernel_count() == 0:
                break
            await asyncio.sleep(0.1)
        assert manager.kernel_count() == 0
    finally:
        await manager.close()


@pytest.mark.slow  # four kernels started one after another (not in `make test-fast`)
async def test_per_user_cap_evicts_the_least_recently_used(sandbox_config: SandboxConfig) -> None:
    manager = SandboxManager(replace(sandbox_config, per_user=2), MemorySink())
    try:
        for conv in ("a", "b", "c"):
            await Runner(manager, "u1", conv)(f"name = {conv!r}")
        assert manager.kernel_count("u1") == 2
        assert manager.kernel_for("u1", "a") is None
        other = Runner(manager, "u2", "z")
        await other("1")
        assert manager.kernel_count() == 3  # the cap is per user
        out = await Runner(manager, "u1", "a")("name")
        assert "starts fresh" in out.text and "NameError" in out.text
    finally:
        await manager.close()


async def test_per_user_cap_refuses_when_all_busy(sandbox_config: SandboxConfig) -> None:
    manager = SandboxManager(replace(sandbox_config, per_user=2), MemorySink())
    try:
        slow = [Runner(manager, "u1", c)("import time\ntime.sleep(2)") for c in ("a", "b")]
        tasks = [asyncio.create_task(s) for s in slow]
        # Both kernels started and running their code (however long start-up took on
        # a busy machine): each stays busy for two more seconds.
        deadline = time.monotonic() + 60
        while manager.kernel_count("u1") < 2:
            assert time.monotonic() < deadline, "the two kernels did not start"
            assert not any(t.done() for t in tasks), [t.result() for t in tasks if t.done()]
            await asyncio.sleep(0.05)
        refused = await Runner(manager, "u1", "c")("print('should not run')")
        assert refused.is_error
        assert "already have 2 Python sessions" in refused.text
        await asyncio.gather(*tasks)
    finally:
        await manager.close()


async def test_unavailable_without_bubblewrap_runs_nothing(
    sandbox_config: SandboxConfig, tmp_path: Path
) -> None:
    marker = tmp_path / "ran-unsandboxed"
    manager = SandboxManager(replace(sandbox_config, bwrap="/nonexistent/bwrap"), MemorySink())
    try:
        out = await Runner(manager)(f"open({str(marker)!r}, 'w').write('x')")
        assert out.is_error
        assert out.text.startswith("Code execution is unavailable: bubblewrap")
        assert "apt-get install bubblewrap" in out.text
        assert not marker.exists()
        assert manager.kernel_count() == 0
    finally:
        await manager.close()


async def test_unavailable_without_the_kernel_venv(sandbox_config: SandboxConfig) -> None:
    manager = SandboxManager(
        replace(sandbox_config, python=Path("/nonexistent/bin/python")), MemorySink()
    )
    out = await Runner(manager)("1")
    assert out.is_error and "Code execution is unavailable" in out.text
    assert "make install" in out.text


async def test_unavailable_when_the_kernel_does_not_start(
    sandbox_config: SandboxConfig, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"
    fake.symlink_to("/bin/false")
    venv.chmod(0o755)
    tmp_path.chmod(0o755)
    manager = SandboxManager(replace(sandbox_config, python=fake), MemorySink())
    try:
        out = await Runner(manager)("1")
        assert out.is_error
        assert "Code execution is unavailable" in out.text, out.text
        assert manager.kernel_count() == 0
    finally:
        await manager.close()


async def test_run_python_tool_through_the_registry(
    sandbox_config: SandboxConfig, tmp_path: Path
) -> None:
    from parley.config import load_settings

    settings = load_settings(data_dir=tmp_path, sandbox_wall_s=6.0, local_model_enabled=False)
    feature = SandboxFeature(settings)
    feature.manager = SandboxManager(sandbox_config, MemorySink())
    try:
        registry = ToolRegistry([feature.tool()])
        spec = registry.specs()[0]
        assert spec.name == "run_python"
        assert spec.parameters["required"] == ["code"]
        code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
        outcome = await registry.run(
            ToolCall("t1", "run_python", json.dumps({"code": code})),
            context=ToolContext(user_id="u9", conversation_id="c9"),
        )
        assert not outcome.is_error, outcome.output
        assert [a["kind"] for a in outcome.attachments] == ["image"]
        assert "figure-1.png (image shown to the user)" in outcome.output
        assert feature.manager.kernel_for("u9", "c9") is not None
    finally:
        await feature.manager.close()
