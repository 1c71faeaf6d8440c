"""End to end in headless Chromium: type a question in the web chat, watch the
answer stream in, save a screenshot under test-artifacts/."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medllm.config.serve import SamplingDefaults, ServeConfig

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("chromium") is None,
                    reason="Debian chromium not installed (scripts/setup.sh installs it)")
def test_web_chat_streams_an_answer(loopback, served_run):
    sync_api = pytest.importorskip("playwright.sync_api")
    served_run.default.sampling = SamplingDefaults(max_tokens=40, temperature=0.6)
    srv = loopback(ServeConfig())
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 750})
            page.goto(srv.url + "/")
            assert "Medical disclaimer" in page.inner_text("#disclaimer")
            page.wait_for_function("document.querySelectorAll('#model option').length === 2")
            page.select_option("#model", "demo/sft")
            page.fill("#max_tokens", "40")
            page.fill("#question", "What are the warning signs of a stroke?")
            # record every intermediate text of the answer bubble as it streams
            page.evaluate("""() => { window.__seen = []; new MutationObserver(() => {
                const b = document.querySelector('.msg.assistant'); if (b) window.__seen.push(b.textContent);
            }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true}); }""")
            page.click("#send")
            page.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=120_000)
            answer = page.inner_text(".msg.assistant")
            seen = page.evaluate("window.__seen")
            page.screenshot(path=str(ARTIFACTS / "web_chat.png"), full_page=True)
            assert page.inner_text(".msg.user") == "What are the warning signs of a stroke?"
            assert "not a diagnosis" in answer
            assert len(set(seen)) >= 3, "answer did not arrive in pieces"
            assert page.locator("#history li").count() == 1   # conversation kept in history
        finally:
            browser.close()
            served_run.default.sampling = SamplingDefaults(max_tokens=16)
