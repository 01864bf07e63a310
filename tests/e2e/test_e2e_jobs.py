"""Admin → Jobs as an admin sees it: a dead letter with its error and attempts,
retried (it then runs and is done) or discarded; where files are stored.

The dead letters are real rows of the server's ``jobs`` table, written by the
test as a failed job leaves them (a test double for five failed attempts)."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from e2ehelpers import open_admin, shot
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def _dead_job(database: Path, error: str) -> str:
    job_id = uuid.uuid4().hex
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(database) as conn:
        conn.execute(
            "INSERT INTO jobs (id, kind, payload, active_key, user_id, state, attempts,"
            " max_attempts, run_after, lease_until, worker, last_error, created_at, updated_at,"
            " finished_at) VALUES (?, 'knowledge.ingest', ?, NULL, NULL, 'dead', 5, 5, ?, NULL,"
            " 'gone-worker', ?, ?, ?, ?)",
            (job_id, f'{{"file_id": "{uuid.uuid4().hex}"}}', now, error, now, now, now),
        )
    return job_id


def test_an_admin_retries_and_discards_dead_jobs(
    admin_page: Page, server: str, e2e_tmp: Path
) -> None:
    page = admin_page
    page.set_viewport_size({"width": 1280, "height": 900})
    database = e2e_tmp / "data" / "parley.db"
    _dead_job(database, "OSError: the disk was full")
    _dead_job(database, "TimeoutError: the parser hung")

    page.goto("/admin/users")
    open_admin(page, "jobs")
    table = page.get_by_test_id("jobs-table")
    full = table.get_by_test_id("job-row").filter(has_text="the disk was full")
    hung = table.get_by_test_id("job-row").filter(has_text="the parser hung")
    expect(full).to_contain_text("knowledge.ingest")
    expect(full).to_contain_text("5 / 5")
    expect(page.get_by_test_id("jobs-state-dead")).to_contain_text("(2)")
    expect(page.get_by_test_id("storage-card")).to_contain_text("in the data directory")
    shot(page, "admin-jobs")

    # Retry: the job runs again (its file is gone, so it has nothing to do) and is done.
    full.get_by_test_id("job-retry").click()
    expect(full).to_have_count(0)
    page.get_by_test_id("jobs-state-done").click()
    retried = page.get_by_test_id("job-row").filter(has_text="the disk was full")
    for _ in range(30):  # the server's loop picks it up within a poll (1 s)
        if retried.count():
            break
        page.wait_for_timeout(500)
        page.get_by_test_id("jobs-refresh").click()
    expect(retried).to_contain_text("1 / 5")

    # Discard: gone from the dead letters, and from the queue.
    page.get_by_test_id("jobs-state-dead").click()
    hung.get_by_test_id("job-discard").click()
    expect(page.get_by_test_id("jobs-empty")).to_be_visible()
    expect(page.get_by_test_id("jobs-state-dead")).to_contain_text("(0)")
