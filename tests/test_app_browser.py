"""The web app in headless Chromium: answers with followable citations, conversations that last, export,
the library, hostile text, filters, adding papers, dark mode and a phone.

One ``python app.py`` serves the whole module, on a free 127.0.0.1 port, over a copy of the
session's sample index plus one hostile paper whose title and abstract carry <script> and
<img onerror> (written to the store directly: ingest's own cleaning would strip the tags, and
this test is about what the browser does with them). arXiv is a stand-in on 127.0.0.1.
Screenshots go to tests/artifacts/ (laptop light and dark, phone).
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest

from ingest.chunk import ChunkerConfig, chunk_paper
from ingest.records import Paper
from ingest.store import Store, StoreConfig
from tests.app_server import CONTRAST_JS, ROOT, chromium, serve_app
from tests.fixtures.standins import ArxivStandin, serve

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
QLORA_DOC = "doc-6b7688703829de0d"  # the QLoRA sample: no title, no arXiv id
QLORA_Q = "How can a 65B parameter model be finetuned on a single 48GB GPU?"
DISTIL_Q = "How does distilling step-by-step train smaller models that outperform LLMs with less training data?"
OBSERVE = """() => {
  window.__states = [];
  const chat = document.querySelector('#chatbot');
  new MutationObserver(() => {
    const answers = chat.querySelectorAll('.pc-answer');
    const last = answers[answers.length - 1];
    if (last) window.__states.push([answers.length, last.classList.contains('pc-streaming'),
                                    last.querySelector('.pc-stream .pc-text') ? last.querySelector('.pc-stream .pc-text').innerText.length : -1,
                                    last.querySelector('.pc-badge') ? last.querySelector('.pc-badge').innerText : '',
                                    document.querySelectorAll('#sources .pc-source').length]);
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
def gradio_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gradio-tmp")


@pytest.fixture(scope="module")
def app(hostile_index, arxiv, gradio_tmp):
    env = {"PAPERCHAT_ARXIV_URL": arxiv.base + "/api/query", "GRADIO_TEMP_DIR": str(gradio_tmp)}
    with serve_app(["--index", str(hostile_index), "--model", "none"], env=env) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def open_page(browser, app, **context):
    """A fresh browser context (its own localStorage: its own conversations) on the app."""
    context.setdefault("viewport", {"width": 1400, "height": 1000})
    ctx = browser.new_context(**context)
    # Citation links open arxiv.org: answer them here, the machine is offline.
    ctx.route(re.compile(r"https://arxiv\.org/.*"),
              lambda route: route.fulfill(status=200, content_type="text/html", body="<title>arXiv</title>ok"))
    page = ctx.new_page()
    page.goto(app.url, timeout=120_000)  # a loaded machine serves the first page slowly
    page.wait_for_selector("#sources .pc-loaded", timeout=120_000)  # the browser's conversations are restored
    page.evaluate(OBSERVE)
    return page


@pytest.fixture(scope="module")
def page(browser, app):
    page = open_page(browser, app)
    yield page
    page.context.close()


SAVED = "localStorage.getItem('paperchat-conversations')"


def ask(page, question: str, timeout_ms: int = 180_000):
    """Type a question, press Ask, wait for its final answer and for the browser to have saved it."""
    before = page.locator("#chatbot .pc-trace").count()
    saved = page.evaluate(SAVED)
    page.fill("#question textarea", question)
    page.click("#ask")
    page.wait_for_function(f"document.querySelectorAll('#chatbot .pc-trace').length > {before} && "
                           "!document.querySelector('#chatbot .pc-streaming')", timeout=timeout_ms)
    page.wait_for_function(f"{SAVED} !== {json.dumps(saved)}", timeout=30_000)
    return page.locator("#chatbot .pc-answer").last


def retrieved_ids(answer) -> list[str]:
    """Paper ids in the answer's trace table (read from the DOM: the <details> may be closed)."""
    return answer.evaluate("a => Array.from(a.querySelectorAll('.pc-trace td:nth-child(2)')).map(td => td.textContent)")


def cited(answer) -> set[str]:
    return set(re.findall(r"\[(\d+)\]", answer.locator(".pc-text").first.inner_text()))


def test_sources_first_then_the_answer_with_citation_links_and_trace(page):
    answer = ask(page, DISTIL_Q)
    n = page.locator("#chatbot .pc-answer").count()
    states = [s for s in page.evaluate("window.__states") if s[0] == n]
    waiting = [s for s in states if s[1]]
    assert waiting and not states[-1][1]  # a placeholder first, then the final answer
    assert answer.locator(".pc-badge.pc-extractive").inner_text() == "extractive"
    ids = retrieved_ids(answer)
    links = answer.locator(".pc-text a.pc-cite")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert "https://arxiv.org/abs/2305.02301" in hrefs, hrefs
    for href in hrefs:
        assert href.removeprefix("https://arxiv.org/abs/").removeprefix("#pc-paper-") in ids, (href, ids)
    assert links.first.get_attribute("title")  # hovering a citation shows the paper's name
    assert links.first.evaluate("a => getComputedStyle(a).textDecorationLine") == "underline"  # styled as a link
    with page.expect_popup() as popup:
        answer.locator('a.pc-cite[href="https://arxiv.org/abs/2305.02301"]').first.click()
    assert popup.value.url == "https://arxiv.org/abs/2305.02301"  # the link works: it opens the paper's page
    popup.value.close()

    assert page.locator("#sources .pc-source").count() == len(cited(answer)) > 0  # one card per cited paper
    card = page.locator('#sources .pc-source[data-paper-id="2305.02301"]')
    assert "distill" in card.inner_text().lower()
    marks = card.locator("mark")
    assert marks.count() >= 1 and card.locator(".pc-markno").first.inner_text().startswith("[")  # numbered
    assert card.locator("a").first.get_attribute("href") == "https://arxiv.org/abs/2305.02301"
    assert answer.locator(".pc-refs li").count() == len(cited(answer))  # the references travel with the answer
    trace = answer.locator("details.pc-trace")
    assert not trace.evaluate("d => d.open")
    trace.locator("summary").click()
    assert trace.evaluate("d => d.open") and "2305.02301" in trace.inner_text() and "prompt tokens" in trace.inner_text()


def test_a_citation_of_a_paper_without_arxiv_id_scrolls_to_its_card(page):
    answer = ask(page, QLORA_Q)
    link = answer.locator(f'.pc-text a.pc-cite[href="#pc-paper-{QLORA_DOC}"]').first
    assert link.get_attribute("title") == "QLoRA (in the sources panel)"  # its derived name, on hover
    card = page.locator(f"#sources #pc-paper-{QLORA_DOC}")
    assert "QLoRA" in card.locator(".pc-derived").inner_text()  # named from its abstract, and marked so
    page.evaluate("document.querySelector('#sources .pc-sources').scrollTop = 0; window.scrollTo(0, 0)")
    card.evaluate("c => c.parentElement.scrollTop = c.parentElement.scrollHeight")  # scroll the card away
    link.click()
    page.wait_for_function(f"document.querySelector('#sources #pc-paper-{QLORA_DOC}').classList.contains('pc-flash')")
    page.wait_for_timeout(800)  # the smooth scroll
    box, panel = card.bounding_box(), page.locator("#sources .pc-sources").bounding_box()
    assert panel["y"] - 1 <= box["y"] <= panel["y"] + panel["height"], (box, panel)
    assert page.url.endswith("/")  # handled in the page: no navigation


def test_copy_gives_markdown_with_numbered_references(page):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    answer = page.locator("#chatbot .pc-answer").last
    answer.locator("button.pc-copy").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "<" not in copied and "&#" not in copied, copied  # Markdown, not the message's HTML
    body, refs = copied.split("**References**")
    assert set(re.findall(r"\[(\d+)\]", body)) == {m for m in re.findall(r"^(\d+)\. ", refs, re.M)} == cited(answer)
    assert "QLoRA (name derived from the abstract)" in refs


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
    assert page.locator('a[href^="javascript"]').count() == 0

    page.get_by_role("tab", name="Search papers").click()
    page.fill("#search-query textarea", "quantum widget calibration")
    page.click("#search")
    page.wait_for_selector("#search-results .pc-source", timeout=60_000)
    assert SCRIPT in page.locator("#search-results").inner_text()
    assert page.evaluate("window.__pwned") is None
    page.get_by_role("tab", name="Chat").click()


def test_search_has_its_own_controls_and_shows_the_best_passage(page):
    page.get_by_role("tab", name="Search papers").click()
    page.fill("#search-query textarea", "finetune a 65B model on one GPU with 4-bit quantization")
    page.fill("#search-k input[type=number]", "3")
    page.click("#search")
    page.wait_for_function("document.querySelectorAll('#search-results .pc-source').length === 3", timeout=60_000)
    results = page.locator("#search-results .pc-source")
    for i in range(3):  # titled or not, every result shows its best-matching sentence, marked in the abstract
        best = results.nth(i).locator(".pc-best").inner_text()
        assert best.startswith("Best match:") and results.nth(i).locator("mark").count() == 1
    assert QLORA_DOC in results.first.get_attribute("data-paper-id") + results.nth(1).get_attribute("data-paper-id")
    page.fill("#search-year-min textarea", "2030")
    page.click("#search")
    page.wait_for_function("(document.querySelector('#search-results') || {innerText: ''}).innerText.includes('No matching papers')")
    page.fill("#search-year-min textarea", "")
    page.get_by_role("tab", name="Chat").click()


def standalone_query(answer) -> str:
    return answer.evaluate("a => a.querySelector('.pc-trace li').textContent").removeprefix("query: ")


def test_each_browser_has_its_own_conversation(browser, app, page):
    other = open_page(browser, app)
    assert other.locator("#chatbot .pc-answer").count() == 0
    follow_up = "And how much do they drift?"
    # Without history the follow-up is searched as typed; with this browser's history about quantum
    # widgets it is rewritten to stand alone.
    assert standalone_query(ask(other, follow_up)) == follow_up
    rewritten = standalone_query(ask(page, follow_up))
    assert rewritten != follow_up and "quantum" in rewritten.lower(), rewritten
    assert other.locator("#chatbot .pc-answer").count() == 1
    other.context.close()


def test_conversations_survive_a_reload_and_reopen_from_the_list(browser, app):
    page = open_page(browser, app)
    first = ask(page, QLORA_Q).locator(".pc-text").first.inner_text()
    page.reload()
    page.wait_for_selector("#sources .pc-loaded", timeout=120_000)
    assert page.locator("#chatbot .pc-answer .pc-text").first.inner_text() == first
    assert page.locator("#sources .pc-source").count() >= 1  # and its sources
    page.click("#new-conversation")
    page.wait_for_function("document.querySelectorAll('#chatbot .pc-answer').length === 0")
    ask(page, DISTIL_Q)
    items = page.locator("#conversation-list label")
    assert items.count() == 2 and "65B" in items.nth(1).inner_text() and "distilling" in items.first.inner_text()
    items.nth(1).click()  # reopen the first conversation
    page.wait_for_function("document.querySelector('#chatbot .pc-answer .pc-text') && "
                           "(document.querySelector('#chatbot .pc-answer .pc-text') || {innerText: ''}).innerText.includes('65B')")
    assert standalone_query(ask(page, "and how much memory does it save?")) != "and how much memory does it save?"
    page.locator("#conversation-tools").get_by_text("Rename, delete, export").click()
    page.fill("#rename-text textarea", "QLoRA memory notes")
    page.click("#rename")
    page.wait_for_function("(document.querySelector('#conversation-list') || {innerText: ''}).innerText.includes('QLoRA memory notes')")
    page.reload()
    page.wait_for_function("(document.querySelector('#conversation-list') || {innerText: ''}).innerText.includes('QLoRA memory notes · "
                           "2 answers') && document.querySelectorAll('#chatbot .pc-answer').length === 2")
    page.context.close()


def test_export_writes_markdown_whose_references_match_the_citations(browser, app):
    page = open_page(browser, app)
    cited_ids = set()
    for question in (QLORA_Q, DISTIL_Q):  # (an answer locator is lazy: read each answer's references at once)
        cited_ids |= set(ask(page, question).evaluate(
            "a => Array.from(a.querySelectorAll('.pc-refs li')).map(li => li.className)"))
    page.locator("#conversation-tools").get_by_text("Rename, delete, export").click()
    page.click("#export")
    page.wait_for_selector("#export-files a[href$='.bib']", timeout=60_000)
    files = {Path(a.get_attribute("href").split("?")[0]).suffix: fetch(app.url, a.get_attribute("href"))
             for a in page.locator("#export-files a").all()}
    markdown, bib = files[".md"], files[".bib"]
    body, refs = markdown.split("## References")
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", body)}
    listed = [int(n) for n in re.findall(r"^(\d+)\. ", refs, re.M)]
    assert numbers == set(listed) == set(range(1, len(listed) + 1)) and len(listed) == len(cited_ids)
    assert "## " + QLORA_Q in markdown and "QLoRA (name derived from the abstract)" in refs
    assert "arXiv:2305.02301" in refs and "eprint = {2305.02301}" in bib and bib.count("@misc{") == len(listed)
    page.context.close()


def fetch(base: str, href: str) -> str:
    url = href if href.startswith("http") else base.rstrip("/") + "/" + href.lstrip("/")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        return response.read().decode()


def test_category_filter_is_shown_and_restricts_sources(page):
    page.get_by_role("tab", name="Chat").click()
    page.locator("#settings").get_by_text("Settings").first.click()
    assert page.input_value("#year-min textarea") == "" and page.input_value("#year-max textarea") == ""
    page.click("#category input")
    page.fill("#category input", "cs.CR")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    answer = ask(page, "Which papers discuss language models?")
    assert set(retrieved_ids(answer)) == {"doc-hostile-widgets"}  # the only cs.CR paper
    assert answer.locator(".pc-filter").inner_text() == "filter: category cs.CR"
    assert "Searched only: category cs.CR" in page.locator("#sources").inner_text()
    page.click("#category input")
    page.fill("#category input", "any")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")


def test_example_questions_come_from_indexed_titles(page):
    example = page.locator("#examples button").first
    text = example.inner_text()
    example.click()
    page.wait_for_function("document.querySelector('#question textarea').value.length > 0")
    question = page.input_value("#question textarea")
    assert question.startswith(("What does", "What are", "How does")) and text.rstrip(".…")[:20] in question


def test_add_papers_by_upload_and_arxiv_then_ask(page, arxiv, tmp_path, gradio_tmp, hostile_index):
    upload = tmp_path / "bakery.jsonl"
    upload.write_text(json.dumps(UPLOADED) + "\n")
    page.get_by_role("tab", name="Add papers").click()
    page.set_input_files("#upload input[type=file]", str(upload))
    page.wait_for_selector("#upload >> text=bakery.jsonl", timeout=60_000)
    page.fill("#arxiv textarea", "arxiv:retrieval augmented")
    page.click("#add")
    page.wait_for_selector("#add-status .pc-ingest", timeout=180_000)
    status = page.locator("#add-status").inner_text()
    assert "added 3" in status and str(tmp_path) not in status and str(gradio_tmp) not in status
    assert arxiv.requests  # the stand-in was asked
    assert not list(gradio_tmp.rglob("bakery.jsonl")) and not (hostile_index / "uploads").exists()  # no copy kept

    page.get_by_role("tab", name="Chat").click()
    answer = ask(page, "How fast does wild yeast ferment sourdough?")
    assert "2399.00001" in retrieved_ids(answer)  # the keyword index was refreshed too
    answer = ask(page, "What is retrieval-augmented generation for knowledge-intensive NLP tasks?")
    hrefs = [a.get_attribute("href") for a in answer.locator("a.pc-cite").all()]
    assert "https://arxiv.org/abs/2005.11401" in hrefs


def test_an_upload_without_a_file_name_is_answered_not_a_server_error(page):
    page.get_by_role("tab", name="Add papers").click()
    page.fill("#arxiv textarea", "")
    page.set_input_files("#upload input[type=file]", files=[
        {"name": "", "mimeType": "application/json", "buffer": (json.dumps(UPLOADED) + "\n").encode()}])
    page.wait_for_timeout(1500)
    page.evaluate("document.querySelector('#add-status .pc-ingest').remove()")
    page.click("#add")
    page.wait_for_selector("#add-status .pc-ingest, #add-status .pc-error", timeout=120_000)
    assert page.locator(".toast-body.error, .toast-wrap .error").count() == 0
    assert "unchanged 1" in page.locator("#add-status").inner_text()
    page.get_by_role("tab", name="Chat").click()


def test_arxiv_offline_is_a_clear_message(page, arxiv):
    arxiv.stop()  # nothing listens on its port any more
    page.get_by_role("tab", name="Add papers").click()
    page.fill("#arxiv textarea", "arxiv:anything")
    page.click("#add")
    page.wait_for_selector("#add-status .pc-error", timeout=120_000)
    message = page.locator("#add-status").inner_text()
    assert "Could not add papers" in message and "arXiv API cannot be reached" in message, message
    assert "Traceback" not in message
    page.get_by_role("tab", name="Chat").click()


def test_dark_mode_highlights_and_links_are_readable(browser, app):
    page = open_page(browser, app, color_scheme="dark")
    ask(page, "How does QLoRA reduce memory?")
    assert page.evaluate("document.body.classList.contains('dark')")
    for selector in ("#sources mark", "#chatbot .pc-text a.pc-cite", "#chatbot .pc-badge", "#sources .pc-markno"):
        contrast = page.locator(selector).first.evaluate(CONTRAST_JS)
        assert contrast["ratio"] >= 4.5, (selector, contrast)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "laptop-dark.png"), full_page=True)
    page.context.close()


def test_on_a_phone_the_question_box_is_in_view_and_sources_follow_the_answer(browser, app):
    page = open_page(browser, app, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.wait_for_timeout(1000)  # the page settles (the conversation list stays closed on a phone)
    box = page.locator("#question textarea").bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] <= 844, box
    center = page.evaluate(f"document.elementFromPoint({box['x'] + box['width'] / 2}, "
                           f"{box['y'] + box['height'] / 2}).tagName")
    assert center == "TEXTAREA"  # visible, not covered
    assert page.get_by_label("Question").count() == 1  # labelled for screen readers
    ask(page, QLORA_Q)
    order = page.evaluate("['#chatbot', '#question', '#sources', '#examples'].map(s => "
                          "document.querySelector(s).getBoundingClientRect().top)")
    assert order == sorted(order), order  # the sources come right after the conversation, before the extras
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "phone.png"))
    page.context.close()


def test_a_local_model_streams_after_the_sources_are_shown(browser, hostile_index, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(hostile_index, index)
    model = ROOT.parent / "shared" / "models" / "stories260K.gguf"
    with serve_app(["--index", str(index), "--model", str(model)]) as server:
        page = open_page(browser, server)
        page.locator("#settings").get_by_text("Settings").first.click()
        page.wait_for_function("document.querySelector('#model input') && "
                               "document.querySelector('#model input').value.startsWith('Stories260K')",
                               timeout=120_000)  # the model loaded in the background, chosen by its name
        answer = ask(page, DISTIL_Q)
        states = [s for s in page.evaluate("window.__states") if s[0] == 1]
        drafting = [s for s in states if s[1] and s[3].startswith("extractive")]
        assert drafting and all(s[4] > 0 for s in drafting), states  # the quoted answer and sources came first
        lengths = [s[2] for s in drafting if s[2] >= 0]
        assert len(set(lengths)) >= 3 and lengths == sorted(lengths), lengths  # then the model's text, growing
        badge = answer.locator(".pc-badge").first.inner_text()
        assert badge in ("model: Stories260K", "extractive (model answer not used)"), badge
        if badge.startswith("extractive"):  # the checker refused the tiny model's text: it says why
            assert answer.locator(".pc-warn").count() == 1
        assert "&#" not in answer.inner_text()  # quotes and apostrophes are escaped once, not twice
        page.context.close()


def test_library_lists_every_paper_and_removes_one(page, seed_ingest):
    page.get_by_role("tab", name="Library").click()
    page.wait_for_function("(document.querySelector('#library-totals') || {innerText: ''}).innerText.includes('papers')", timeout=60_000)
    total = seed_ingest.report.papers_in_index + 1 + 3  # the samples, the hostile paper, three added
    assert f"{total} papers" in page.locator("#library-totals").inner_text()
    page.fill("#library-filter textarea", "qlora")
    page.keyboard.press("Enter")
    page.wait_for_function("(document.querySelector('#library-totals') || {innerText: ''}).innerText.includes('showing')")
    table = page.locator("#library-table").inner_text()
    assert QLORA_DOC in table and "abstract (derived)" in table
    page.fill("#library-filter textarea", "")
    page.keyboard.press("Enter")
    page.locator("#library-remove").get_by_text("Remove papers").click()
    page.fill("#remove-id textarea", "doc-hostile-widgets")
    page.click("#remove-paper")
    page.wait_for_function("(document.querySelector('#library-status') || {innerText: ''}).innerText.includes('removed 1 papers')")
    assert f"{total - 1} papers" in page.locator("#library-totals").inner_text()
    page.get_by_role("tab", name="Chat").click()
    answer = ask(page, "How does quantum widget calibration work?")
    assert "doc-hostile-widgets" not in retrieved_ids(answer)  # gone from search too
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "laptop-light.png"), full_page=True)
