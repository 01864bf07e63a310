"""The README's curl walkthrough of ``/v1/responses``, run as written (bash, curl,
jq) against a live server whose model is the compliance server's rule-based one:
the documented commands keep working."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from test_responses_compliance import compliance_server

from parley.providers.scripted import ScriptedModel

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(default=compliance_server.answer)


def _walkthrough() -> str:
    text = README.read_text()
    section = text[text.index("#### A walkthrough with curl") :]
    found = re.search(r"```bash\n(.*?)```", section, re.S)
    assert found is not None, "the walkthrough's bash block is missing"
    return found.group(1)


def test_the_readme_curl_walkthrough_runs(
    live: tuple[str, str], scripted: ScriptedModel, tmp_path: Path
) -> None:
    base, key = live
    script = _walkthrough().replace(
        "export PARLEY=http://127.0.0.1:8080/v1 KEY=pk-... MODEL=parley",
        f"export PARLEY={base} KEY={key} MODEL=scripted/scripted",
    )
    assert f"KEY={key}" in script, "the walkthrough's first line changed: update this test"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("completed\n"), out[:300]  # step 1: status, then the text
    assert "event: response.completed" in out  # step 2 streamed to the end
    assert '"name": "get_weather"' in out  # step 4: the model asked for the function
    assert "null" not in out.splitlines()[-1]  # ...and answered from its output
