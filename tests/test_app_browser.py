"""The web app in headless Chromium: streamed cited answers, sources, hostile text, filters, adding papers.

``python app.py`` is served on a free 127.0.0.1 port over an index of the seed papers plus
one hostile paper whose title and abstract carry <script> and <img onerror>; written to the
store directly, because ingest's own cleaning would strip the tags and this test is about
what the browser does with them. arXiv is a stand-in on 127.0.0.1. The screenshot goes to
tests/artifacts/app.png.
"""

from __future__ import annotations

import json
import re
import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest

from ingest.chunk import ChunkerConfig, chunk_paper
from ingest.records import Paper
from ingest.store import Store, StoreConfig
from tests.app_server import ROOT, serve_app
from tests.fixtures.standins import ArxivStandin, serve

playwright = pytest.importorskip("playwright.sync_api")  # a test dependency (requirements-dev.txt)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "tests" / "artifacts"
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
HOSTILE = Paper(
    paper_id="doc-hostile-widgets", title=f"Quantum widget calibration {SCRIPT}",
    abstract=(f"Quantum widget calibration {IMG} aligns each widget lattice with a reference beam. "
              f"Calibrated quantum widgets {SCRIPT} drift by less than 0.1% per hour."),
    authors=('<b onmouseover="window.__pwned=3">Mallory</b>',), date="2024-02-01", categories=("cs.CR",),
    url="javascript:window.__pwned=4")
UPLOADED = {"id": "2399.00001", "title": "Sourdough fermentation kinetics of wild yeast",
            "abstract": "We measure sourdough fermentation kinetics of wild yeast at five temperatures. Wild yeast "
                        "ferments sourdough twice as fast at 30 degrees as at 20 degrees.",
            "authors": ["Ada Baker"], "published": "2023-11-02", "categories": "q-bio.PE"}
OBSERVE = """() => {
  window.__states = [];
  const chat = document.querySelector('#chatbot');
  new MutationObserver(() => {
    const answers = chat.querySelectorAll('.pc-answer');
    const last = answers[answers.length - 1];
    if (last) window.__states.push([answers.length, last.classList.contains('pc-streaming'),
                                    last.querySelector('.pc-text') ? last.querySelector('.pc-text').innerText.length : 0]);
  }).observe(chat, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory, seed_index, embedder) -> Path:
    """A copy of the session's seed index plus the hostile paper."""
    index = tmp_path_factory.mktemp("browser") / "index"
    shutil.copytree(seed_index.path, index)
    store = Store.open(StoreConfig(path=str(index)), embedder.name, embedder.dim)
    chunks = chunk_paper(HOSTILE, ChunkerConfig(), embedder.max_tokens)
    store.write([HOSTILE], chunks, embedder.embed([c.text for c in chunks]))
    return index


@pytest.fixture(scope="module")
def arxiv():
    """The arXiv stand-in; ``arxiv.stop()`` takes it off the network (the app then sees arXiv offline)."""
    service = ArxivStandin()
    with ExitStack() as stack:
        service.base = stack.enter_context(serve(service))
        service.stop = stack.close
        yield service


@pytest.fixture(scope="module")
def app(hostile_index, arxiv):
    with serve_app(["--index", str(hostile_index)], env={"PAPERCHAT_ARXIV_URL": arxiv.base + "/api/query"}) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, app):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    # Citation links open arxiv.org: answer them here, the machine is offline.
    context.route(re.compile(r"https://arxiv\.org/.*"),
                  lambda route: route.fulfill(status=200, content_type="text/html", body="<title>arXiv</title>ok"))
    page = context.new_page()
    page.goto(app.url)
    page.wait_for_selector("#question textarea", timeout=120_000)
    page.evaluate(OBSERVE)
    yield page
    context.close()


def ask(page, question: str, timeout_ms: int = 180_000):
    """Type a question, press Ask, wait for its final answer; returns the answer element."""
    before = page.locator("#chatbot .pc-trace").count()
    page.fill("#question textarea", question)
    page.click("#ask")
    page.wait_for_function(f"document.querySelectorAll('#chatbot .pc-trace').length > {before}", timeout=timeout_ms)
    return page.locator("#chatbot .pc-answer").last


def retrieved_ids(answer) -> list[str]:
    """Paper ids in the answer's trace table (read from the DOM: the <details> may be closed)."""
    return answer.evaluate("a => Array.from(a.querySelectorAll('.pc-trace td:nth-child(2)')).map(td => td.textContent)")


def test_streamed_answer_with_citation_links_sources_and_trace(page):
    answer = ask(page, "How does distilling step-by-step train smaller models that outperform LLMs "
                       "with less training data?")
    n = page.locator("#chatbot .pc-answer").count()
    states = [s for s in page.evaluate("window.__states") if s[0] == n]
    streamed = [length for _, streaming, length in states if streaming]
    assert streamed and max(streamed) > 0, states  # partial text was shown before the final answer
    assert not states[-1][1]  # and then replaced by the final, checked answer
    assert answer.locator(".pc-badge.pc-extractive").inner_text() == "extractive"

    ids = retrieved_ids(answer)
    links = answer.locator("a.pc-cite")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert "https://arxiv.org/abs/2305.02301" in hrefs, hrefs
    for href in hrefs:
        assert href.removeprefix("https://arxiv.org/abs/") in ids, (href, ids)
    with page.expect_popup() as popup:
        links.first.click()
    assert popup.value.url == hrefs[0]  # the link works: it opens the paper's page
    popup.value.close()

    cited = set(re.findall(r"\[(\d+)\]", answer.locator(".pc-text").inner_text()))
    assert page.locator("#sources .pc-source").count() == len(cited) > 0  # one entry per cited paper
    first = page.locator('#sources .pc-source[data-paper-id="2305.02301"]')
    assert "distill" in first.inner_text().lower()
    assert first.locator("mark").count() >= 1 and first.locator("mark").first.inner_text() in first.inner_text()
    assert first.locator("a").first.get_attribute("href") == "https://arxiv.org/abs/2305.02301"

    trace = answer.locator("details.pc-trace")
    assert not trace.evaluate("d => d.open")
    trace.locator("summary").click()
    assert trace.evaluate("d => d.open") and "2305.02301" in trace.inner_text() and "prompt tokens" in trace.inner_text()


def test_hostile_paper_renders_as_text(page):
    answer = ask(page, "How does quantum widget calibration work?")
    assert "doc-hostile-widgets" in retrieved_ids(answer)
    panel = page.locator("#sources").inner_text()
    assert SCRIPT in panel and IMG in panel and '<b onmouseover="window.__pwned=3">Mallory</b>' in panel
    assert IMG in answer.inner_text() or SCRIPT in answer.inner_text()  # quoted by the extractive answer, as text
    assert page.evaluate("window.__pwned") is None
    for shown in (panel, page.locator("#chatbot").inner_text()):  # escaped once, not twice
        assert "&#" not in shown and "&lt;" not in shown and "&amp;" not in shown
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"], #sources script, #chatbot script, "
                         "#sources b[onmouseover]').length") == 0
    assert page.locator('#sources a[href^="javascript"]').count() == 0

    page.get_by_role("tab", name="Search papers").click()
    page.fill("#search-query textarea", "quantum widget calibration")
    page.click("#search")
    page.wait_for_selector("#search-results .pc-source", timeout=60_000)
    assert SCRIPT in page.locator("#search-results").inner_text()
    assert page.evaluate("window.__pwned") is None
    page.get_by_role("tab", name="Chat").click()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)


def standalone_query(answer) -> str:
    return answer.evaluate("a => a.querySelector('.pc-trace li').textContent").removeprefix("query: ")


def test_each_session_has_its_own_conversation(browser, app, page):
    other = browser.new_page()
    other.goto(app.url)
    other.wait_for_selector("#question textarea", timeout=120_000)
    assert other.locator("#chatbot .pc-answer").count() == 0
    follow_up = "And how much do they drift?"
    # Without history the follow-up is searched as typed; with this session's history about
    # quantum widgets it is rewritten to stand alone.
    assert standalone_query(ask(other, follow_up)) == follow_up
    rewritten = standalone_query(ask(page, follow_up))
    assert rewritten != follow_up and "quantum" in rewritten.lower(), rewritten
    assert other.locator("#chatbot .pc-answer").count() == 1
    other.close()


def test_category_filter_restricts_sources(page):
    page.locator("#settings").get_by_text("Settings").first.click()
    page.click("#category input")
    page.fill("#category input", "cs.CR")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    answer = ask(page, "Which papers discuss language models?")
    assert set(retrieved_ids(answer)) == {"doc-hostile-widgets"}  # the only cs.CR paper
    page.click("#category input")
    page.fill("#category input", "any")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")


def test_example_questions_come_from_indexed_titles(page, app):
    example = page.locator("#examples button").first
    text = example.inner_text()
    example.click()
    page.wait_for_function("document.querySelector('#question textarea').value.length > 0")
    question = page.input_value("#question textarea")
    assert question.startswith(("What does", "What are", "How does")) and text.rstrip(".…")[:20] in question


def test_add_papers_by_upload_and_arxiv_then_ask(page, arxiv, tmp_path):
    upload = tmp_path / "bakery.jsonl"
    upload.write_text(json.dumps(UPLOADED) + "\n")
    page.get_by_role("tab", name="Add papers").click()
    page.set_input_files("#upload input[type=file]", str(upload))
    page.wait_for_selector("#upload >> text=bakery.jsonl", timeout=60_000)
    page.fill("#arxiv textarea", "arxiv:retrieval augmented")
    page.click("#add")
    page.wait_for_selector("#add-status .pc-ingest", timeout=180_000)
    assert "added 3" in page.locator("#add-status").inner_text()  # the upload and the two papers of the feed
    assert arxiv.requests  # the stand-in was asked

    page.get_by_role("tab", name="Chat").click()
    answer = ask(page, "How fast does wild yeast ferment sourdough?")
    assert "2399.00001" in retrieved_ids(answer)  # the keyword index was refreshed too
    answer = ask(page, "What is retrieval-augmented generation for knowledge-intensive NLP tasks?")
    hrefs = [a.get_attribute("href") for a in answer.locator("a.pc-cite").all()]
    assert "https://arxiv.org/abs/2005.11401" in hrefs


def test_arxiv_offline_is_a_clear_message(page, arxiv):
    arxiv.stop()  # nothing listens on its port any more
    page.get_by_role("tab", name="Add papers").click()
    page.fill("#arxiv textarea", "arxiv:anything")
    page.click("#add")
    page.wait_for_selector("#add-status .pc-error", timeout=120_000)
    message = page.locator("#add-status").inner_text()
    assert "Could not add papers" in message and "arXiv API cannot be reached" in message, message
    assert "Traceback" not in message


def test_a_local_model_streams_with_its_badge(browser, hostile_index, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(hostile_index, index)
    model = ROOT.parent / "shared" / "models" / "stories260K.gguf"
    with serve_app(["--index", str(index), "--model", str(model)]) as server:
        page = browser.new_page()
        page.goto(server.url)
        page.wait_for_selector("#question textarea", timeout=120_000)
        page.evaluate(OBSERVE)
        answer = ask(page, "How does distilling step-by-step train smaller models that outperform LLMs?")
        assert answer.locator(".pc-badge.pc-llm").inner_text() == "model: stories260K.gguf"
        lengths = [length for count, streaming, length in page.evaluate("window.__states") if count == 1 and streaming]
        assert len(set(lengths)) >= 3 and lengths == sorted(lengths), lengths  # token by token, growing
        assert "&#" not in answer.inner_text()  # the model's quotes and apostrophes are escaped once, not twice
        assert "prompt tokens" in answer.locator(".pc-trace summary").inner_text()
        assert int(answer.locator(".pc-trace summary").inner_text().split(" prompt tokens")[0].split("· ")[-1]) > 0
        page.close()


def test_clear_chat_empties_the_conversation(page):
    page.get_by_role("tab", name="Chat").click()
    assert page.locator("#chatbot .pc-answer").count() > 0
    page.click("#clear")
    page.wait_for_function("document.querySelectorAll('#chatbot .pc-answer').length === 0")
    assert "Sources of the latest answer appear here" in page.locator("#sources").inner_text()
    follow_up = "And how much do they drift?"
    assert standalone_query(ask(page, follow_up)) == follow_up  # the history went with the messages
