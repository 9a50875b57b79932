"""The chat UI in Debian's Chromium, driven by Playwright, against a real uvicorn on 127.0.0.1
serving the real pipeline (index, page store, extraction, citations) with a scripted backend.

Screenshots of the main states go to test-artifacts/ for people to look at."""

import json
import shutil
import time
from pathlib import Path

import pytest

from answer_engine.api.app import create_app
from answer_engine.components import build_pipeline
from answer_engine.ingest import register_source

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
QUESTION = "What was Maria Curie the first female recipient of?"
ANSWER = [
    "Maria Skłodowska-Curie",
    " was the first",
    " female recipient",
    " of the **Nobel Prize** [",
    "1",
    "].",
    " She was born",
    " in Warsaw [1].",
]
RELATED = ["1. Where was Maria Curie born?", "2. What did Curie research?"]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or shutil.which("chromium") is None,
    reason="LOUD SKIP: Debian's chromium is not installed (make test installs it with apt-get)",
)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    # Nothing may leave 127.0.0.1: refuse every other request the page could make.
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith("http://127.0.0.1") else route.abort()
        ),
    )
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, errors


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def start(settings, serve, backend):
    return serve(create_app(settings, pipeline=build_pipeline(settings, backend=backend)))


def ask(page, question):
    page.fill("#q", question)
    page.press("#q", "Enter")


def test_ask_stream_cite_follow_up_reload(settings, serve, fake_backend_cls, page):
    backend = fake_backend_cls(ANSWER, delay=0.12, related=RELATED)
    url = start(settings, serve, backend)
    page.goto(url)
    shot(page, "01-empty")
    ask(page, QUESTION)

    # Source cards appear before the answer, then the answer streams in piece by piece.
    page.wait_for_selector(".turn .source-card")
    page.wait_for_function("document.querySelector('.turn .answer').innerText.length > 0")
    partial = page.locator(".turn .answer").inner_text()
    page.wait_for_selector("#status:has-text('Answer complete.')", timeout=20000)
    final = page.locator(".turn .answer").inner_text()
    assert len(partial) < len(final), (partial, final)  # we saw it mid-stream
    assert "Nobel Prize" in final
    assert page.locator(".turn .answer strong").inner_text() == "Nobel Prize"  # markdown rendered
    card = page.locator(".turn .source-card").first
    assert "Warsaw" in card.inner_text() and "en.wikipedia.org" in card.inner_text()
    shot(page, "02-answer")

    # A citation is a superscript link; clicking it highlights its source card.
    cite = page.locator(".turn sup.cite a").first
    assert cite.inner_text() == "[1]"
    cite.click()
    assert "active" in card.get_attribute("class")
    shot(page, "03-citation-clicked")

    # Related questions are clickable follow-ups; the thread's history goes with them.
    related = page.locator(".turn .related-q")
    assert related.all_inner_texts() == ["Where was Maria Curie born?", "What did Curie research?"]
    related.first.click()
    page.wait_for_function("document.querySelectorAll('.turn').length === 2")
    # finished when its copy button shows (the status line still says the first answer is complete)
    page.wait_for_function(
        "document.querySelectorAll('.turn')[1].querySelector('.copy').hidden === false", timeout=20000
    )
    follow_up_prompt = [m for m in backend.calls if "follow-up questions" not in m[-1].content][-1]
    assert [m.role for m in follow_up_prompt][:3] == ["system", "user", "assistant"]
    assert follow_up_prompt[1].content == QUESTION
    assert "Nobel Prize" in follow_up_prompt[2].content
    shot(page, "04-follow-up")

    # Reload: the thread is kept in localStorage and reopens from the list.
    page.click("#new-thread")
    assert page.locator(".turn").count() == 0
    page.reload()
    page.wait_for_selector("#threads .thread-link")
    page.locator("#threads .thread-link", has_text="What was Maria Curie").click()
    assert page.locator(".turn").count() == 2
    assert "Nobel Prize" in page.locator(".turn .answer").first.inner_text()
    stored = json.loads(page.evaluate("localStorage.getItem('answer-engine.threads.v1')"))
    assert stored[0]["turns"][0]["q"] == QUESTION
    shot(page, "05-reopened-thread")


def test_stop_mid_answer_stops_the_server(settings, serve, fake_backend_cls, page):
    backend = fake_backend_cls(["word "] * 400, delay=0.05)
    page.goto(start(settings, serve, backend))
    ask(page, QUESTION)
    page.wait_for_function("document.querySelector('.turn .answer').innerText.length > 10")
    page.click("#stop")
    page.wait_for_selector(".turn .stopped")
    shot(page, "06-stopped")
    deadline = time.monotonic() + 5
    while backend.closed == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backend.closed == 1  # the server closed the generation when the browser went away
    emitted = backend.emitted
    time.sleep(0.5)
    assert backend.emitted == emitted < 400
    assert page.locator("#ask").is_enabled()


def test_server_error_is_shown_inline(settings, serve, fake_backend_cls, page):
    page.goto(start(settings, serve, fake_backend_cls(["Partial", " answer"], fail_after=1)))
    ask(page, QUESTION)
    page.wait_for_selector(".turn .turn-error:has-text('model crashed')")
    shot(page, "07-error")


@pytest.mark.security
def test_xss_in_answer_and_page_text_does_not_execute(settings, serve, fake_backend_cls, page, tmp_path):
    evil = tmp_path / "evil.jsonl"
    evil.write_text(
        json.dumps(
            {
                "url": "https://evil.example/curie",
                "title": "Curie <img src=x onerror=\"window.__xss='title'\">",
                "text": "Maria Curie Nobel Prize <script>window.__xss='page'</script> recipient first female.",  # noqa: E501
            }
        )
        + "\n"
    )
    register_source(settings.data_dir, evil)
    answer = [
        "Maria Curie won the Nobel Prize [1]. <script>window.__xss='script'</script>",
        "<img src=x onerror=\"window.__xss='img'\"> [click me](javascript:window.__xss='link') ",
        "<a href=\"javascript:window.__xss='a'\">x</a><svg onload=\"window.__xss='svg'\"></svg>",
    ]
    page.goto(start(settings, serve, fake_backend_cls(answer)))
    ask(page, "Maria Curie Nobel Prize recipient first female evil")
    page.wait_for_selector("#status:has-text('Answer complete.')", timeout=20000)
    for link in page.locator(".turn .answer a").all():
        link.click(no_wait_after=True)
    page.locator(".turn .source-card a").first.hover()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    html = page.locator(".turn .answer").inner_html()
    assert (
        "<script" not in html and "onerror" not in html and "javascript:" not in html and "onload" not in html
    )
    assert "<img" not in html and "<svg" not in html  # no remote images from model output
    assert page.locator(".turn .source-card", has_text="<img").count() == 1  # shown as text, inert
    shot(page, "08-xss")


def test_phone_width(settings, serve, fake_backend_cls, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith("http://127.0.0.1") else route.abort()
        ),
    )
    page = context.new_page()
    page.goto(start(settings, serve, fake_backend_cls(ANSWER, related=RELATED)))
    assert not page.locator("#sidebar").is_visible() or page.locator("#sidebar").bounding_box()["x"] < 0
    ask(page, QUESTION)
    page.wait_for_selector("#status:has-text('Answer complete.')", timeout=20000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"horizontal scroll on a phone: {width}px"
    shot(page, "09-phone")
    page.click("#toggle-threads")
    page.wait_for_timeout(300)
    assert page.locator("#sidebar").bounding_box()["x"] >= 0
    shot(page, "10-phone-threads")
    context.close()


def test_verification_badge_evidence_and_removed_sentence(settings, serve, fake_backend_cls, page):
    """The verifier's outcome in the UI: a quiet badge, the evidence under a citation on hover, the
    sentence no source states struck out of the answer; long titles stay inside their cards."""
    answer = [
        "Maria Skłodowska-Curie was the first female recipient of the Nobel Prize [1].",
        " Maria Curie was born in Warsaw and won the Nobel Prize twice [1].",
    ]
    backend = fake_backend_cls(answer)  # the default check: "twice" is on no page
    page.goto(start(settings, serve, backend))
    ask(page, QUESTION)
    page.wait_for_selector("#status:has-text('Answer complete.')", timeout=20000)

    badge = page.locator(".turn .support")
    assert badge.is_visible() and "Partly supported" in badge.inner_text()
    assert "twice" not in page.locator(".turn .answer").inner_text()
    removed = page.locator(".turn .removed")
    assert removed.is_visible() and "1 sentence removed" in removed.inner_text()
    removed.locator("summary").click()
    assert "won the Nobel Prize twice" in removed.locator("li").inner_text()

    page.locator(".turn sup.cite a").first.hover()
    evidence = page.locator(".turn sup.cite .evidence")
    evidence.wait_for()
    assert "first female recipient of the Nobel Prize" in evidence.inner_text()
    shot(page, "06-verification")

    # the timing line is rounded, and a card's title does not spill out of its card
    assert page.locator(".turn .timings").inner_text().count(".") <= 3
    card = page.locator(".turn .source-card").first.bounding_box()
    title = page.locator(".turn .source-card .title").first.bounding_box()
    assert title["x"] + title["width"] <= card["x"] + card["width"] + 1


def test_search_mode_toggle_and_the_steps_as_they_happen(settings, serve, fake_backend_cls, page):
    """Pro chosen in the UI reaches the server; each search shows as a step while the answer is
    being found (open), and the steps collapse once the answer streams; the choice is remembered."""
    backend = fake_backend_cls(ANSWER, delay=0.05, plans=["Rhine river"], plan_delay=1.5)
    page.goto(start(settings, serve, backend))
    assert page.locator("#mode").input_value() == "auto"
    page.select_option("#mode", "pro")
    ask(page, QUESTION)

    steps = page.locator(".turn .steps")
    # while the model decides the next search, the steps so far are open
    page.wait_for_selector(".turn .steps[open] li:has-text('Checking whether the pages found')")
    assert f"Searching for: {QUESTION}" in steps.locator("li").first.inner_text()
    shot(page, "07-pro-steps-open")
    page.wait_for_selector("#status:has-text('Answer complete.')", timeout=20000)
    assert steps.get_attribute("open") is None  # collapsed once the answer arrived
    assert steps.locator("summary").inner_text().startswith("Pro search: 2 searches")
    steps.locator("summary").click()
    texts = steps.locator("li").all_inner_texts()
    assert "Searching for: Rhine river" in texts
    assert any(t.startswith("Read ") and "Rhine" in t for t in texts)
    assert len(backend.plan_prompts) == 2  # the server planned: Pro reached it
    shot(page, "08-pro-steps-reopened")

    # the choice is remembered; Fast searches once and asks the model nothing
    page.reload()
    assert page.locator("#mode").input_value() == "pro"
    page.select_option("#mode", "fast")
    page.click("#new-thread")
    ask(page, QUESTION)
    page.wait_for_selector("#status:has-text('Answer complete.')", timeout=20000)
    assert page.locator(".turn .steps summary").inner_text().startswith("Fast search: 1 search,")
    assert len(backend.plan_prompts) == 2


def test_library_upload_then_an_answer_cites_it(settings, serve, fake_backend_cls, page, tmp_path):
    note = tmp_path / "zephyr-notes.md"
    note.write_text(
        "# Project Zephyr\n\nProject Zephyr is the internal codename for the Bluebird weather balloon. "
        "It was launched from Tromsø in March 2026.\n",
        encoding="utf-8",
    )
    backend = fake_backend_cls(
        ["Project Zephyr is the internal codename for the Bluebird weather balloon [1]."]
    )
    page.goto(start(settings, serve, backend))
    page.click("#open-library")
    page.wait_for_selector("#documents .empty")
    page.set_input_files("#upload-file", str(note))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#library-status:has-text('Added')", timeout=30000)
    assert page.locator("#documents .document .title").all_inner_texts() == ["Project Zephyr"]
    shot(page, "10-library")
    page.click("#close-library")

    ask(page, "What is Project Zephyr the codename for?")
    page.wait_for_selector("#status:has-text('Answer complete.')", timeout=20000)
    card = page.locator(".turn .source-card").first
    assert "Project Zephyr" in card.inner_text() and "uploaded · zephyr-notes.md" in card.inner_text()
    assert page.locator(".turn sup.cite a").first.inner_text() == "[1]"
    assert "Bluebird" in page.locator(".turn .answer").inner_text()
    shot(page, "11-answer-cites-upload")

    # a wrong file type is refused with the server's reason, and deleting empties the library
    page.click("#open-library")
    bad = tmp_path / "tool.exe"
    bad.write_bytes(b"MZ\x90\x00")
    page.set_input_files("#upload-file", str(bad))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#library-status.error:has-text('unsupported file type')")
    page.click("#documents .delete-doc")
    page.wait_for_selector("#documents .empty")
