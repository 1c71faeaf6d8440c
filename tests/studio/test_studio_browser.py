"""The studio in headless Chromium (Debian's /usr/bin/chromium via playwright, no browser
download): edit configs/demo.yaml in the Launch form down to a tiny run, see the inline
error of a negative learning rate, launch, watch the loss curve grow, open the report, chat
with the final model; stop a run and resume it; compare two runs; inspect a data file.
Screenshots go to test-artifacts/studio_*.png."""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("chromium") is None,
                                reason="Debian chromium not installed (scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from studio_helpers import StudioServer

    from medllm.studio.app import create_studio_app

    runs = tmp_path_factory.mktemp("studio") / "runs"
    app = create_studio_app(runs)
    with StudioServer(app) as srv:
        srv.runs = runs
        yield srv
    app.state.launcher.close()
    app.state.chat.stop()
    for job in runs.glob("*/studio_job.json"):          # never leave a pipeline running
        pid = json.loads(job.read_text()).get("pid")
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, TypeError, PermissionError):
            pass


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert errors == [], errors


def field(path: str) -> str:
    return f'[data-path="{path}"] > input, [data-path="{path}"] > select'


def run_status(page) -> str:
    return page.inner_text("#run-status").strip() if page.locator("#run-status").count() else ""


def state(studio, name: str) -> dict:
    return json.loads((studio.runs / name / "state.json").read_text())["stages"]


TINY = {"name": "tiny-llama"}
SHORT = dict(batch_size=4, grad_accum=1, max_seq_len=128, log_every=1)
# tiny-llama steps take ~50 ms on an idle machine: enough steps that the curve is seen growing
PRETRAIN_STEPS = 40
SFT_STEPS = 120   # long enough for the stop to arrive mid-stage


@pytest.mark.slow
def test_launch_watch_report_chat(studio, page):
    page.goto(studio.url + "/#/launch")
    page.fill("#load-path", str(REPO / "configs" / "demo.yaml"))
    page.click("#load")
    page.wait_for_function("document.getElementById('f-model.name') && "
                           "document.getElementById('f-model.name').value === 'smollm2-135m-instruct'")
    page.fill(field("name"), "studio-a")
    page.fill(field("model.name"), "tiny-llama")
    page.click('[data-stage="dpo"] .remove-stage')
    page.wait_for_selector('[data-stage="dpo"]', state="detached")
    for stage, steps in (("pretrain", PRETRAIN_STEPS), ("sft", 2)):
        page.fill(field(f"stages.{stage}.max_steps"), str(steps))
        for k, v in SHORT.items():
            page.fill(field(f"stages.{stage}.{k}"), str(v))
    for i in range(3):
        page.fill(field(f"data.sources.{i}.max_samples"), "24")
    for i in (2, 1):   # keep demo_mcq only: drop PubMedQA, then demo_free
        page.locator('[data-path="eval.tasks"] > div.card').nth(i).locator(":scope > button.remove").click()
    page.wait_for_function("document.querySelectorAll('[data-path=\"eval.tasks\"] > div.card').length === 1")
    page.fill(field("eval.tasks.0.limit"), "16")
    page.select_option(field("eval.safety_probes"), "false")
    page.select_option(field("eval.models"), '"base_and_final"')
    page.fill(field("eval.max_new_tokens"), "8")
    # an invalid value: the inline message is `medllm validate`'s own
    page.fill(field("stages.sft.lr"), "-0.001")
    err = '[data-path="stages.sft.lr"] > .err'
    page.wait_for_function(f"document.querySelector('{err}').textContent.includes('greater than 0')")
    assert page.inner_text(err) == "stages.sft.lr: Input should be greater than 0 (got -0.001)"
    assert page.locator("#launch").is_disabled()
    page.screenshot(path=str(ARTIFACTS / "studio_launch_error.png"), full_page=False)
    page.fill(field("stages.sft.lr"), "0.001")
    page.wait_for_function("document.getElementById('validation').textContent.startsWith('OK')")
    assert page.inner_text(err) == ""
    assert "--name studio-a" in page.inner_text("#command")
    page.click("#launch")
    page.wait_for_url("**/#/run/studio-a")

    # the loss curve gains points while pretrain runs (log_history.jsonl, polled)
    seen, t0 = [], time.time()
    while time.time() - t0 < 170:
        if page.locator("#chart-pretrain").count():
            pts = int(page.get_attribute("#chart-pretrain", "data-points") or 0)
            st = page.locator('[data-stage="pretrain"] .status').first.inner_text()
            if not seen or seen[-1] != (pts, st):
                seen.append((pts, st))
        if run_status(page) in ("done", "failed", "interrupted"):
            break
        time.sleep(0.4)
    assert run_status(page) == "done", (seen, page.inner_text("#log-tail"))
    live = sorted({p for p, st in seen if st == "running" and 0 < p < PRETRAIN_STEPS})
    assert len(live) >= 2, f"curve did not grow while training: {seen}"
    page.wait_for_function(f"document.getElementById('chart-pretrain').dataset.points === '{PRETRAIN_STEPS}'")
    assert page.locator("#eval-table tr").count() >= 3          # header + base + sft
    page.screenshot(path=str(ARTIFACTS / "studio_run.png"), full_page=True)

    with page.context.expect_page() as report_info:
        page.click("a.file:text('report.html')")
    report = report_info.value
    report.wait_for_load_state()
    assert "demo_mcq" in report.content() and "not a substitute" in report.content()
    report.close()

    page.goto(studio.url + "/#/chat")
    page.wait_for_function("document.querySelectorAll('#chat-run option').length >= 1")
    page.select_option("#chat-run", "studio-a")
    page.click("#chat-load")
    page.wait_for_function("document.getElementById('chat-status').textContent === 'ready'", timeout=60_000)
    # every stage can be chatted with: the final (full fine-tuned sft) model as the run itself, the LoRA
    # pretrain stage as its adapter, and the model it started from
    offered = [o.get_attribute("value") for o in page.locator("#chat-model option").all()]
    assert {"studio-a", "studio-a/pretrain", "studio-a/base"} <= set(offered), offered
    page.fill("#chat-max_tokens", "24")
    page.fill("#chat-question", "What are the warning signs of a stroke?")
    page.evaluate("""() => { window.__seen = []; new MutationObserver(() => {
        const b = document.querySelector('#chat-messages .msg.assistant'); if (b) window.__seen.push(b.textContent);
    }).observe(document.getElementById('chat-messages'), {subtree: true, childList: true, characterData: true}); }""")
    page.click("#chat-send")
    page.wait_for_function("document.getElementById('chat-status').textContent === 'done'", timeout=60_000)
    answer = page.inner_text("#chat-messages .msg.assistant")
    assert "not a diagnosis" in answer
    assert len(set(page.evaluate("window.__seen"))) >= 3, "answer did not stream"
    page.screenshot(path=str(ARTIFACTS / "studio_chat.png"), full_page=True)


@pytest.mark.slow
def test_stop_and_resume_keeps_done_stages(studio, page):
    import yaml

    recipe = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    recipe.update(name="studio-b", model=TINY)
    del recipe["stages"]["dpo"]
    recipe["stages"]["pretrain"].update(max_steps=1, **SHORT)
    recipe["stages"]["sft"].update(max_steps=SFT_STEPS, **SHORT)   # long enough to be stopped mid-stage
    for s in recipe["data"]["sources"]:
        s["max_samples"] = 24
    recipe["eval"].update(tasks=[{"task": "demo_mcq", "mode": "loglik", "limit": 16}], safety_probes=False,
                          models="base_and_final", max_new_tokens=8)
    page.goto(studio.url + "/#/runs")
    page.evaluate("d => Studio.api('/api/launch', {data: d})", recipe)
    page.goto(studio.url + "/#/run/studio-b")
    page.wait_for_function("document.getElementById('chart-sft') && +document.getElementById('chart-sft').dataset.points >= 1",
                           timeout=120_000, polling=300)
    page.click("#stop")
    page.wait_for_function("document.getElementById('run-status').textContent.trim() === 'interrupted'", timeout=60_000)
    st = state(studio, "studio-b")
    assert st["pretrain"]["status"] == "done" and st["sft"]["status"] == "interrupted"
    assert "SIGTERM" in st["sft"]["error"]
    pretrain_done_at = st["pretrain"]["finished"]
    page.screenshot(path=str(ARTIFACTS / "studio_interrupted.png"), full_page=True)
    page.click("#resume")
    page.wait_for_function("document.getElementById('run-status').textContent.trim() === 'done'", timeout=150_000,
                           polling=500)
    st = state(studio, "studio-b")
    assert st["pretrain"]["finished"] == pretrain_done_at            # not trained again
    assert st["sft"]["status"] == "done" and st["sft"]["metrics"]["global_step"] == SFT_STEPS


@pytest.mark.slow
def test_compare_two_finished_runs(studio, page):
    for name in ("studio-a", "studio-b"):
        if not (studio.runs / name / "report.html").is_file():
            pytest.skip("needs the two runs of the tests above")
    page.goto(studio.url + "/#/runs")
    page.wait_for_selector('tr[data-run="studio-b"]')
    page.screenshot(path=str(ARTIFACTS / "studio_runs.png"), full_page=True)
    page.goto(studio.url + "/#/compare")
    page.wait_for_selector('input[data-run="studio-b"]')
    page.check('input[data-run="studio-a"]')
    page.check('input[data-run="studio-b"]')
    page.click("#compare-go")
    page.wait_for_selector("#compare-table td.delta")
    a = json.loads((studio.runs / "studio-a" / "stages" / "eval" / "sft" / "results.json").read_text())
    b = json.loads((studio.runs / "studio-b" / "stages" / "eval" / "sft" / "results.json").read_text())
    va = a["tasks"]["demo_mcq:loglik"]["metrics"]["acc_norm"]["value"]
    vb = b["tasks"]["demo_mcq:loglik"]["metrics"]["acc_norm"]["value"]
    row = page.locator("#compare-table tr", has_text="acc_norm").first
    delta = float(row.locator("td.delta").inner_text())
    assert delta == pytest.approx(vb - va, abs=1e-3)
    assert page.locator("#compare-result svg.chart").count() >= 2     # bars + loss curves
    page.screenshot(path=str(ARTIFACTS / "studio_compare.png"), full_page=True)


def test_data_page_problems_and_deid(studio, page, tmp_path):
    f = tmp_path / "notes.jsonl"
    f.write_text('{"instruction": "Mr John Smith (born 03/04/1961, phone 555-123-4567) reports chest pain.", '
                 '"output": "Assess for acute coronary syndrome."}\n{"question": 1}\n'
                 '{"instruction": "Dose of aspirin?", "output": "75-100 mg daily for secondary prevention."}\n')
    page.goto(studio.url + "/#/data")
    page.fill("#data-path", str(f))
    page.click("#data-inspect")
    page.wait_for_selector("#data-summary")
    assert page.inner_text("#data-format") == "alpaca"
    assert page.inner_text("#data-problems").startswith(f"{f}:2:")
    page.click("#deid-run")
    page.wait_for_selector(".deid-after mark", timeout=60_000)
    before = page.inner_text(".deid-before >> nth=0")
    after = page.inner_text(".deid-after >> nth=0")
    assert "John Smith" in before and "John Smith" not in after and "555-123-4567" not in after
    assert "John Smith" in [m.inner_text() for m in page.locator(".deid-before mark").all()]
    page.screenshot(path=str(ARTIFACTS / "studio_data.png"), full_page=True)
