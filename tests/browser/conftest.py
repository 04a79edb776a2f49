"""Browser fixtures: Debian's chromium driven by Playwright (never a downloaded browser), a phone-sized page for the
participant pages and a desk-sized one for the staff pages, and the live server's database sessions released."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def chromium(monkeypatch):
    from playwright import sync_api

    assert shutil.which(CHROMIUM), "the browser test needs Debian's chromium: apt-get install chromium"
    # Playwright's sync API keeps an event loop running in this thread, which makes Django refuse ORM calls here as
    # "async context". The test's own DB calls are plain synchronous code, so allow them for this test only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from django.db import connections

    with sync_api.sync_playwright() as pw:
        # While Playwright's loop runs, Django keeps a separate database connection for this thread. Close it when
        # the browser goes, so that no later test (which may run under another Playwright loop) reuses a connection
        # that server_sessions_released has since ended.
        connections.close_all()
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()
            connections.close_all()


@pytest.fixture
def browser_page(chromium):
    context = chromium.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def desk_page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def server_sessions_released():
    """After the test (and after the browser closed, since this fixture is set up first): the live server's request
    threads hold database sessions until their HTTP connections end. Wait for them, so the test database can be
    dropped at the end of the run; end any that linger."""
    yield
    import time

    from django.db import connection

    query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    deadline = time.monotonic() + 5
    with connection.cursor() as cursor:
        while True:
            cursor.execute(query)
            pids = [pid for (pid,) in cursor.fetchall()]
            if not pids or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # polling real server threads, not moving the clock
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
