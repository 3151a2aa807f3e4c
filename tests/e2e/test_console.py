"""The web console in a real browser: Debian's Chromium, driven by Playwright.

One server (uvicorn on a SQLite file, in this module's loop), one loopback HTTP receiver, two
real `cronwheel worker` processes and one browser serve the whole module; each test opens
its own browser context (its own cookies) and logs in with a token. Screenshots of every page
go to tests/e2e/screenshots/ (kept by CI, ignored by git).

Tokens: the console's seam (`ui/session.py`) is the real one (`ui/access.AppAccess` over the
node's app service); the server is provisioned with the test admin token, and the app
`team-a` with an operator and a viewer token is made through the app service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from cronwheel.api.app import create_app
from cronwheel.api.convert import submission
from cronwheel.api.schemas import JobIn
from cronwheel.domain.access import Role
from cronwheel.domain.jobs import JobState
from cronwheel.domain.worker_target import SpecParsers
from cronwheel.runtime import Node
from cronwheel.ui.access import AppAccess
from cronwheel.ui.app import install
from cronwheel.ui.trends import Trends
from tests.e2e.test_workers import until, workers
from tests.receivers import HttpReceiver
from tests.servers import RunningServer, running_server
from tests.support import TEST_ADMIN_TOKEN, free_port

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).parent / "screenshots"
GROUP = "console"
ADMIN = TEST_ADMIN_TOKEN
WAIT_MS = 15_000


@dataclass
class Console:
    server: RunningServer
    receiver: HttpReceiver
    browser: Browser
    job_types: SpecParsers
    operator: str = ""  # tokens of the app team-a, made through the app service
    operator_prefix: str = ""
    viewer: str = ""
    contexts: dict[str, BrowserContext] = field(default_factory=dict)

    async def make_tokens(self) -> None:
        apps = self.server.node.apps
        await apps.create_app("team-a", namespaces=("team-a",))
        operator = await apps.create_token("team-a", Role.OPERATOR, label="operator of team-a")
        viewer = await apps.create_token("team-a", Role.VIEWER, label="viewer of team-a")
        self.operator, self.operator_prefix = operator.token, operator.record.prefix
        self.viewer = viewer.token

    async def page(self, token: str | None = ADMIN) -> Page:
        """A new page at the dashboard, logged in with `token` (one browser context per
        token, logged in once), or of a fresh context with no session when `token` is None."""
        context = self.contexts.get(token or "")
        if context is None:
            context = await self.browser.new_context(base_url=self.server.base_url,
                                                     viewport={"width": 1280, "height": 860})
            context.set_default_timeout(WAIT_MS)
            if token is not None:
                self.contexts[token] = context
                page = await context.new_page()
                await page.goto("/ui/login")
                await page.get_by_label("Token").fill(token)
                await page.get_by_role("button", name="Log in").click()
                await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
                return page
        page = await context.new_page()
        if token is not None:
            await page.goto("/ui")
        return page

    async def add_job(self, namespace: str, key: str, **body: Any) -> None:
        """A job made behind the console's back, through the service."""
        node = self.server.node
        spec = JobIn(namespace=namespace, key=key, **body)
        item = submission(spec, node.clock.now(), self.job_types)
        [outcome] = await node.service.submit([item])
        assert outcome.created


def script_errors(page: Page) -> list[str]:
    """Errors the page's scripts report from now on (a refused script or style included)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def console(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Console]:
    receiver = await HttpReceiver().start()
    made: list[FastAPI] = []

    def make_app(node: Node) -> FastAPI:
        app = create_app(node=node)
        install(app, AppAccess(node.apps), Trends(every_s=0.5))
        made.append(app)
        return app

    database = tmp_path_factory.mktemp("console") / "cw.db"
    try:
        async with (
            running_server(database, make_app=make_app, worker_lease_seconds=2.0) as server,
            workers(server, "w1", "w2", group=GROUP),
            async_playwright() as playwright,
        ):
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            found = Console(server, receiver, browser, made[0].state.job_types)
            await found.make_tokens()
            # A job that fails every second, for the dashboard's failures.
            await found.add_job("default", "flaky-export", schedule={"kind": "rate", "every": "1s"},
                                target={"kind": "http", "url": f"http://127.0.0.1:{free_port()}/"},
                                retry={"max_attempts": 1})
            yield found
            await browser.close()
    finally:
        await receiver.stop()


async def job_state(console: Console, namespace: str, key: str) -> JobState:
    return (await console.server.node.service.get(namespace, key)).state


# -- the tests ---------------------------------------------------------------------------


async def test_log_in_create_a_job_and_see_it_fire(console: Console) -> None:
    page = await console.page(token=None)
    await page.goto("/ui/jobs")
    assert "/ui/login" in page.url  # not logged in: asked for a token first
    await page.get_by_label("Token").fill("cw_nobody00_" + "x" * 40)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text("unknown, expired or revoked")
    await shot(page, "01-login-refused")
    await page.get_by_label("Token").fill(ADMIN)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    cookie = next(c for c in await page.context.cookies() if c["name"] == "cw_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert ADMIN not in await page.content() and ADMIN not in cookie["value"]

    await page.get_by_role("link", name="New job").click()
    await page.get_by_label("Key").fill("nightly-report")
    await page.get_by_label("Schedule").select_option("rate")
    await page.get_by_label("Expression").fill("1s")
    await page.get_by_label("URL").fill(console.receiver.url)
    await page.get_by_label("Payload").fill('{"report": "nightly"}')
    await shot(page, "02-new-job-form")
    await page.get_by_role("button", name="Create job").click()
    await expect(page.get_by_role("status")).to_contain_text("job nightly-report created")

    await until(_received(console, 2), "two deliveries to the receiver", 10)
    assert console.receiver.received[0].json() == {"report": "nightly"}
    await page.reload()
    await expect(page.locator("text=succeeded").first).to_be_visible()
    await expect(page.get_by_role("heading", name="Next fire times")).to_be_visible()
    await shot(page, "03-job-page")

    await page.get_by_label("Payload for this run").fill('{"report": "by hand"}')
    await page.get_by_role("button", name="Trigger now").click()
    await expect(page.get_by_role("status")).to_contain_text("triggered run")
    await until(_arrived(console, {"report": "by hand"}), "the triggered payload", 10)

    await page.locator("a[href^='/ui/runs/']").last.click()  # the oldest run on the page
    await expect(page.get_by_role("heading", name="Attempts")).to_be_visible()
    await page.get_by_role("button", name="Rerun").click()
    await expect(page.get_by_role("status").filter(has_text="rerun of")).to_be_visible()
    await expect(page.locator("dd", has_text="manual")).to_be_visible()
    await expect(page.locator("#run-state")).to_contain_text("succeeded")  # it refreshes
    await shot(page, "03b-run-page-rerun")

    await page.get_by_role("link", name="Dashboard").click()
    await expect(page.get_by_role("link", name="nightly-report").first).to_be_visible()
    await expect(page.get_by_role("link", name="flaky-export").first).to_be_visible()
    assert "success: <strong>0" not in await page.content()


def _arrived(console: Console, payload: Any) -> Any:
    async def check() -> bool:
        return any(r.json() == payload for r in console.receiver.received)
    return check


def _received(console: Console, count: int) -> Any:
    async def check() -> bool:
        return len(console.receiver.received) >= count
    return check


async def test_bad_input_is_shown_on_the_field_and_writes_nothing(console: Console) -> None:
    page = await console.page()
    await page.goto("/ui/jobs/new")
    await page.get_by_label("Key").fill("broken")
    await page.get_by_label("Expression").fill("61 * * * *")
    await page.get_by_label("Target", exact=True).select_option("log")
    await page.get_by_role("button", name="Create job").click()
    expression = page.get_by_label("Expression")
    await expect(expression).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_role("alert")).to_contain_text("Expression: minute")
    await shot(page, "05-new-job-refused")
    with pytest.raises(Exception, match="no job"):
        await console.server.node.service.get("default", "broken")


async def test_follow_a_live_worker_log_and_kill_the_run(console: Console) -> None:
    page = await console.page()
    await page.goto("/ui/jobs/new")
    await page.get_by_label("Key").fill("long-count")
    await page.get_by_label("Schedule").select_option("once")
    await page.get_by_label("Expression").fill("0")
    await page.get_by_label("Target", exact=True).select_option("worker")
    await page.get_by_label("Worker group").fill(GROUP)
    await page.get_by_label("Shell command").fill(
        "for i in $(seq 1 400); do echo line $i; sleep 0.05; done")
    await page.get_by_role("button", name="Create job").click()
    await expect(page.get_by_role("status")).to_contain_text("created")
    [run] = await until(_runs_of(console, "long-count"), "the job's run", 10)
    errors = script_errors(page)
    await page.reload()
    await page.locator(f"a[href='/ui/runs/{run.id}']").click()

    log = page.locator("#log-text")
    await expect(log).to_contain_text("line 3")
    await page.evaluate("window.sameDocument = true")
    await expect(log).to_contain_text("line 12")  # more lines came in without a reload
    assert await page.evaluate("window.sameDocument === true")
    await expect(page.locator("#follow-status")).to_contain_text("Following")
    await shot(page, "06-run-live-log")

    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.get_by_role("button", name="Kill run").click()
    await expect(page.locator("#run-state")).to_contain_text("killed")
    run_id = page.url.split("/ui/runs/")[1].split("?")[0]
    run, _attempts = await console.server.node.service.run(run_id)
    assert run.state.value == "killed"
    await expect(page.locator("#log-text")).to_contain_text("line 1\n")
    await shot(page, "07-run-killed")
    assert errors == []


async def test_switch_a_worker_off_for_a_job(console: Console) -> None:
    await console.add_job("default", "on-two-workers", schedule={"kind": "rate", "every": "1h"},
                          target={"kind": "worker", "group": GROUP, "type": "shell",
                                  "spec": {"command": "echo hi"}})
    page = await console.page()
    await page.goto("/ui/job?namespace=default&key=on-two-workers")
    await page.get_by_role("button", name="Switch w1 off for this job").click()
    await expect(page.get_by_role("status")).to_contain_text("w1 switched off")
    await expect(page.get_by_role("button", name="Switch w1 on for this job")).to_be_visible()
    job = await console.server.node.service.get("default", "on-two-workers")
    switches = {w.status.info.name: w.enabled
                for w in await console.server.node.workers.job_workers(job)}
    assert switches == {"w1": False, "w2": True}
    # w2 is now the only one on: switching it off too would leave the group nobody.
    await page.get_by_role("button", name="Switch w2 off for this job").click()
    await expect(page.get_by_role("alert")).to_contain_text("w2")

    for _ in range(3):  # every run of the job now goes to w2
        await page.get_by_role("button", name="Trigger now").click()
        await expect(page.get_by_role("status")).to_contain_text("triggered")
    runs = await console.server.node.service.runs("default", "on-two-workers", None, 10)
    hosts = set()
    for run in runs:
        tasks = await until(_tasks_of(console, run.id), "a task for the run", 10)
        hosts |= {t.worker_name for t in tasks}
    assert hosts == {"w2"}
    await page.reload()
    await shot(page, "08-job-worker-switches")

    await page.get_by_role("link", name="Workers").click()
    await expect(page.get_by_role("cell", name="w1", exact=True)).to_be_visible()
    await shot(page, "09-workers")
    await page.get_by_role("link", name="Cluster").click()
    await expect(page.get_by_text("this node")).to_be_visible()
    await shot(page, "10-cluster")
    await page.get_by_role("link", name="Runs").click()
    await page.get_by_label("State").select_option("killed")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_role("link", name="long-count")).to_be_visible()
    await expect(page.get_by_role("link", name="nightly-report")).to_have_count(0)
    await shot(page, "11-runs-filtered")
    await page.get_by_label("State").select_option("")
    await page.get_by_label("Fired from").fill("2099-01-01T00:00:00")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_text("No runs.")).to_be_visible()  # none fired in that range


def _runs_of(console: Console, key: str) -> Any:
    async def check() -> Any:
        return await console.server.node.service.runs("default", key, None, 10)
    return check


def _tasks_of(console: Console, run_id: str) -> Any:
    async def check() -> Any:
        return await console.server.node.workers.tasks(run_id)
    return check


async def test_each_role_is_refused_what_it_may_not_do(console: Console) -> None:
    rate = {"kind": "rate", "every": "1h"}
    log_target = {"kind": "log"}
    await console.add_job("team-a", "mine", schedule=rate, target=log_target)
    await console.add_job("other", "theirs", schedule=rate, target=log_target)

    viewer = await console.page(console.viewer)
    await viewer.goto("/ui/job?namespace=team-a&key=mine")
    await expect(viewer.get_by_role("heading", name="Definition")).to_be_visible()
    await expect(viewer.get_by_role("button", name="Pause")).to_have_count(0)
    csrf = await viewer.locator("input[name=csrf]").first.input_value()
    answer = await viewer.request.post("/ui/job/pause", form={
        "csrf": csrf, "namespace": "team-a", "key": "mine"})
    assert answer.status == 403 and "viewer token may not pause" in await answer.text()
    assert await job_state(console, "team-a", "mine") is JobState.ACTIVE
    await viewer.set_content(await answer.text())
    await shot(viewer, "12-viewer-refused")

    operator = await console.page(console.operator)
    await operator.goto("/ui/jobs")
    await expect(operator.get_by_role("link", name="mine")).to_be_visible()
    await expect(operator.get_by_role("link", name="theirs")).to_have_count(0)
    await expect(operator.get_by_role("link", name="nightly-report")).to_have_count(0)
    answer = await operator.request.get("/ui/job?namespace=other&key=theirs")
    assert answer.status == 404  # another app's job: as if it did not exist
    assert (await operator.request.get("/ui/apps")).status == 403
    await expect(operator.get_by_role("link", name="Apps")).to_have_count(0)
    csrf = await operator.locator("input[name=csrf]").first.input_value()
    answer = await operator.request.post("/ui/job/pause", form={
        "csrf": csrf, "namespace": "other", "key": "theirs"})
    assert answer.status == 404
    assert await job_state(console, "other", "theirs") is JobState.ACTIVE
    await operator.get_by_role("button", name="Pause mine").click()  # its own: allowed
    await expect(operator.get_by_role("status")).to_contain_text("pause done")
    assert await job_state(console, "team-a", "mine") is JobState.PAUSED
    await shot(operator, "13-operator-jobs")

    admin = await console.page(ADMIN)
    await admin.get_by_role("link", name="Apps").click()
    await expect(admin.get_by_role("heading", name="team-a")).to_be_visible()
    await expect(admin.get_by_text(f"{console.operator_prefix}_…")).to_be_visible()
    assert console.operator not in await admin.content()  # a token's secret is never shown
    await shot(admin, "16-apps")

    stale = await operator.request.post("/ui/job/resume", form={
        "csrf": "forged", "namespace": "team-a", "key": "mine"})
    assert stale.status == 403  # a form from elsewhere carries no session token
    assert await job_state(console, "team-a", "mine") is JobState.PAUSED


async def test_main_actions_work_from_the_keyboard(console: Console) -> None:
    await console.add_job("default", "keyboard", schedule={"kind": "rate", "every": "1h"},
                          target={"kind": "log"})
    page = await console.page(token=None)
    await page.goto("/ui/login")
    await page.keyboard.type(ADMIN)  # the token field has the focus
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")  # brand, Dashboard, Jobs
    assert await page.evaluate("document.activeElement.textContent") == "Jobs"
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()

    await page.get_by_label("Key starts with").focus()
    await page.keyboard.type("keyboard")
    await page.keyboard.press("Enter")  # submits the filter form
    await expect(page.get_by_role("link", name="keyboard")).to_be_visible()
    pause = page.get_by_role("button", name="Pause keyboard")
    await page.get_by_role("link", name="keyboard").focus()
    started = time.monotonic()
    while not await pause.evaluate("b => b === document.activeElement"):
        await page.keyboard.press("Tab")
        assert time.monotonic() - started < 5, "Tab never reached the Pause button"
    outline = await pause.evaluate("b => getComputedStyle(b).outlineStyle")
    assert outline != "none"  # the focus is visible
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("keyboard: pause done")
    assert await job_state(console, "default", "keyboard") is JobState.PAUSED
    await console.add_job("dispatch:billing", "sync-ledger",
                          schedule={"kind": "cron", "expr": "0 3 * * *", "tz": "Europe/Berlin"},
                          target={"kind": "log"})
    await page.goto("/ui/jobs")
    await shot(page, "14-jobs-list")
    await page.get_by_label("Dialect").select_option("dispatchserver")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_role("link", name="sync-ledger")).to_be_visible()
    await expect(page.get_by_role("link", name="keyboard")).to_have_count(0)

    errors = script_errors(page)
    await page.get_by_role("link", name="Dashboard").click()
    await expect(page.get_by_role("link", name="flaky-export").first).to_be_visible()
    answer = await page.request.get("/ui")
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    async with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true"
                                    and r.status == 200, timeout=8_000):
        pass  # htmx refreshes the live part by itself, under the policy
    await shot(page, "15-dashboard")
    assert errors == []


async def test_a_job_page_shows_the_jobs_it_waits_for_and_those_waiting_for_it(
    console: Console,
) -> None:
    far = {"kind": "cron", "expr": "0 0 1 1 *"}
    sink = {"kind": "http", "url": f"{console.receiver.url}/deps"}
    await console.add_job("default", "extract", schedule=far, target=sink)
    await console.add_job("default", "load", schedule={"kind": "dependencies"}, target=sink,
                          depends_on=[{"job": "extract", "strategy": "last", "window": "h(6)"}])
    page = await console.page()
    await page.goto("/ui/job?namespace=default&key=load")
    deps = page.get_by_role("region", name="Dependencies")
    await expect(deps).to_contain_text("default/extract last over h(6)")
    await deps.get_by_role("link", name="default/extract").click()
    await expect(page.get_by_role("heading", name="extract")).to_be_visible()
    await expect(page.get_by_role("region", name="Dependencies").get_by_role(
        "link", name="default/load")).to_be_visible()
    await expect(page.get_by_role("region", name="Dependencies")).to_contain_text(
        "Waits for (upstream) Nothing.")


async def test_an_admin_reads_the_audit_trail_and_others_may_not(console: Console) -> None:
    rate = {"kind": "rate", "every": "1h"}
    await console.add_job("team-a", "audited", schedule=rate, target={"kind": "log"})
    operator = await console.page(console.operator)
    await operator.goto("/ui/jobs?namespace=team-a")
    await operator.get_by_role("button", name="Pause audited").click()
    await expect(operator.get_by_role("status")).to_contain_text("pause done")
    csrf = await operator.locator("input[name=csrf]").first.input_value()
    refused = await operator.request.post("/ui/job/pause", form={
        "csrf": csrf, "namespace": "default", "key": "flaky-export"})
    assert refused.status == 404  # another app's job: refused as if it did not exist
    # not an admin: no link, and the page itself is refused
    await expect(operator.get_by_role("link", name="Audit", exact=True)).to_have_count(0)
    denied = await operator.request.get("/ui/audit")
    assert denied.status == 403, await denied.text()

    admin = await console.page(ADMIN)
    errors = script_errors(admin)
    await admin.get_by_role("link", name="Audit", exact=True).click()
    await expect(admin.get_by_role("heading", name="Audit trail")).to_be_visible()
    await admin.get_by_label("App").fill("team-a")
    await admin.get_by_label("Action").fill("console.pause_job")
    await admin.get_by_role("button", name="Filter").click()
    rows = admin.locator("tbody tr")
    await expect(rows.filter(has_text="audited")).to_contain_text("ok")
    await expect(rows.filter(has_text="audited")).to_contain_text(console.operator_prefix)
    await expect(rows.filter(has_text="flaky-export")).to_contain_text("not_found")
    await admin.get_by_label("Outcome").select_option("not_found")
    await admin.get_by_role("button", name="Filter").click()
    await admin.wait_for_url("**outcome=not_found**")  # the filtered page, not the last one
    # only refusals now (the module's other tests may have left some of their own)
    await expect(rows.filter(has_text="audited")).to_have_count(0)
    await expect(rows.filter(has_text="flaky-export")).to_contain_text("not_found")
    await admin.goto("/ui/audit")
    await shot(admin, "17-audit")
    assert not errors
