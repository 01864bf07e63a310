"""Synthetic content and in-page probes for ``bench.web_perf``.

Every word of the streamed answer is numbered (``w123``), so the page can tell
how far rendering has got by reading the last word of the last rendered block,
a lookup whose cost does not depend on the answer's length.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import message_row

# The scripted upstream's tokenizer (parley.providers._upstream._WORDS).
_PIECES = re.compile(r"\s*\S+|\s+")


def numbered_answer(tokens: int) -> tuple[str, list[int]]:
    """Markdown of about ``tokens`` upstream tokens mixing paragraphs, headings,
    lists, code fences and tables, as real long answers do.

    Returns the text and, for each numbered word, the upstream token index it ends at."""
    parts: list[str] = []
    n = 0

    def words(k: int, fmt: str = "w{}") -> str:
        nonlocal n
        out = " ".join(fmt.format(n + i) for i in range(k))
        n += k
        return out

    kinds = ["p", "p", "h", "list", "p", "code", "p", "table"]
    total = 0
    while total < tokens:
        kind = kinds[len(parts) % len(kinds)]
        if kind == "p":
            part = f"{words(30)} **{words(2)}** `{words(1)}` {words(30)}.\n\n"
        elif kind == "h":
            part = f"## {words(4)}\n\n"
        elif kind == "list":
            part = "".join(f"- {words(8)}\n" for _ in range(5)) + "\n"
        elif kind == "code":
            lines = "".join(f"    {words(3)}({words(2)})\n" for _ in range(12))
            part = f"```python\n{lines}```\n\n"
        else:
            rows = "".join(f"| {words(1)} | {words(1)} | {words(1)} |\n" for _ in range(4))
            part = f"| {words(1)} | {words(1)} | {words(1)} |\n|---|---|---|\n{rows}\n"
        parts.append(part)
        # Its trailing blank line joins the next part's first token.
        total += len(_PIECES.findall(part)) - 1
    return _ends("".join(parts))


def numbered_code(tokens: int) -> tuple[str, list[int]]:
    """One fenced code block of about ``tokens`` tokens: the worst case for a
    renderer that re-renders the unfinished block (it never finishes)."""
    lines = []
    for i in range(0, tokens, 3):
        lines.append(f"    w{i} = w{i + 1}(w{i + 2})\n")
    return _ends("```python\n" + "".join(lines) + "```\n")


def _ends(text: str) -> tuple[str, list[int]]:
    ends: list[int] = []
    for index, piece in enumerate(_PIECES.findall(text)):
        ends.extend([index + 1] * len(re.findall(r"w\d+", piece)))
    return text, ends


def token_count(text: str) -> int:
    return len(_PIECES.findall(text))


def conversation_rows(
    user_id: str, count: int, seed: int = 3
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """A conversation of ``count`` messages (one branch) as table rows; the last
    answer has math so the chat route loads every lazy chunk it can."""
    rnd = random.Random(seed)
    vocab = [f"{a}{b}" for a in ("lor", "ips", "dol", "sit", "am", "con") for b in "aeiouyx"]
    conv_id = uuid.uuid4().hex
    base = datetime.now(UTC) - timedelta(hours=2)
    msgs: list[dict[str, Any]] = []
    parent = None
    for i in range(count):
        user = i % 2 == 0
        if user:
            content = " ".join(rnd.choices(vocab, k=15)) + "?"
        else:
            para = " ".join(rnd.choices(vocab, k=60)) + "."
            items = "".join(f"- {' '.join(rnd.choices(vocab, k=6))}\n" for _ in range(3))
            content = f"{para}\n\n{items}\n**{rnd.choice(vocab)}** {para}"
            if i % 10 == 1:
                content += "\n\n```python\ndef f(x):\n    return x * 2\n```"
            if i == count - 1:
                content += "\n\nFinally, $e^{i\\pi} + 1 = 0$."
        at = base + timedelta(seconds=i)
        msg_id = uuid.uuid4().hex
        role = "user" if user else "assistant"
        msgs.append(message_row(msg_id, conv_id, user_id, parent, role, content, at))
        parent = msg_id
    now = datetime.now(UTC)
    conv = {
        "id": conv_id,
        "user_id": user_id,
        "title": f"Long conversation ({count} messages)",
        "title_generated": True,
        "tools": [],
        "pinned": False,
        "archived": False,
        "temporary": False,
        "active_leaf_id": parent,
        "created_at": base,
        "updated_at": now,
    }
    return conv_id, msgs, conv


# ------------------------------------------------------------------ page scripts

# Frame monitor: rAF gaps above 50 ms (frames dropped) and long tasks, from arm()
# on. Only gaps are stored, so its own cost is constant per frame.
FRAME_MONITOR = """() => {
  const s = { gaps: [], longtasks: [], running: true, frames: 0, start: performance.now() };
  window.__frames = s;
  let last = performance.now();
  const loop = (t) => {
    if (!s.running) return;
    s.frames++;
    if (t - last > 50) s.gaps.push(t - last);
    last = t;
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
  try {
    const po = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) s.longtasks.push(e.duration);
    });
    po.observe({ type: 'longtask' });
    s.po = po;
  } catch (e) { /* longtask timing unsupported */ }
}"""

FRAME_STOP = """() => {
  const s = window.__frames;
  s.running = false;
  if (s.po) s.po.disconnect();
  const ms = performance.now() - s.start;
  return { gaps: s.gaps, longtasks: s.longtasks, frames: s.frames, ms };
}"""

# The highest word number in the last answer's last rendered block (-1: none yet),
# and whether that answer is still streaming.
LAST_WORD = """() => {
  const all = document.querySelectorAll('[data-testid=message][data-role=assistant]');
  const msg = all[all.length - 1];
  const md = msg && msg.querySelector('.md');
  const streaming = !!msg && msg.dataset.status === 'streaming';
  let node = md && md.lastChild;
  while (node && node.lastChild) node = node.lastChild;
  // Walk back from the deepest last node: a few steps, whatever the answer's length.
  for (let steps = 0; node && node !== md && steps < 200; steps++) {
    const found = node.nodeType === 3 ? node.data.match(/w\\d+/g) : null;
    if (found) return { word: Number(found[found.length - 1].slice(1)), streaming };
    if (node.previousSibling) {
      node = node.previousSibling;
      while (node.lastChild) node = node.lastChild;
    } else node = node.parentNode;
  }
  return { word: -1, streaming };
}"""


def visible_watcher(message_id: str) -> str:
    """Init script: records when ``message_id`` is rendered inside the viewport
    (``window.__pv.at``, ms since ``t0``); armed at document start and by ``__pvArm()``."""
    sel = f'[data-testid=message][data-message-id="{message_id}"] [data-testid=message-content]'
    return (
        "(() => {"
        f"const sel = {sel!r};"
        "const check = () => { const el = document.querySelector(sel);"
        "  if (el && el.textContent.trim()) { const r = el.getBoundingClientRect();"
        "    if (r.height > 0 && r.top < innerHeight && r.bottom > 0) {"
        "      window.__pv.at = performance.now() - window.__pv.t0; return; } }"
        "  requestAnimationFrame(check); };"
        "window.__pvArm = () => { window.__pv = { at: null, t0: performance.now() };"
        "  requestAnimationFrame(check); };"
        "window.__pv = { at: null, t0: 0 }; requestAnimationFrame(check);"
        "})();"
    )
