"""chat/render.py, chat/render_sources.py, chat/export.py: every untrusted string is inert, citations can be
followed, cited sentences are marked and numbered, flags are badges, exports' references match the citations."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from chat import export, render
from chat.answer import Answer, Citation, Draft, SentenceCheck, Source
from chat.citations import UNSUPPORTED_FLAG
from chat.render_sources import cited_sentences, highlight, render_hits, render_sources
from chat.retrieve import Filters, Hit
from ingest.records import Paper

HOSTILE = [
    '<script>window.__pwned=1</script>',
    '<img src=x onerror="window.__pwned=2">',
    '"><svg onload=alert(1)>',
    '[click](javascript:alert(1))',
    '![x](https://evil.example/x.png)',
    '$$\\href{javascript:alert(1)}{x}$$',
    '`code` *bold* _em_ ~~gone~~ | a | b |',
    '${window.__pwned=3}',
    '&lt;script&gt;already escaped&lt;/script&gt;',
    '<details open><summary>fake</summary></details>',
    "It's #1 & \"quoted\" \\ back\\slash",
]
ALLOWED_TAGS = {"div", "span", "a", "mark", "details", "summary", "table", "tr", "td", "th", "ul", "li", "b",
                "strong", "h4", "p", "br", "sup", "button", "progress"}
ALLOWED_ATTRS = {"class", "href", "target", "rel", "title", "data-paper-id", "id", "hidden", "type", "open"}


class _Tags(HTMLParser):
    """Collects every tag and attribute the browser would build from a fragment, and its text
    (decoded, or raw as written when ``raw``: entities are then left out)."""

    def __init__(self, raw: bool = False):
        super().__init__(convert_charrefs=not raw)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(fragment: str, raw: bool = False) -> _Tags:
    parser = _Tags(raw)
    parser.feed(fragment)
    parser.close()
    return parser


def assert_inert(fragment: str) -> _Tags:
    """Only our own tags and attributes; links only to http(s) or a card in the page; no Markdown/LaTeX left."""
    assert "\n" not in fragment  # a blank line would end Markdown's HTML block in the chatbot
    parsed = parse(fragment)
    for tag, attrs in parsed.tags:
        assert tag in ALLOWED_TAGS, tag
        assert set(attrs) <= ALLOWED_ATTRS, attrs
        if "href" in attrs:
            assert attrs["href"].startswith(("https://", "http://")) or re.fullmatch(r"#pc-paper-[\w-]+",
                                                                                     attrs["href"]), attrs
    raw_text = "".join(parse(fragment, raw=True).text)
    for char in "`*_$~|{}[]":  # the text as written has no Markdown/LaTeX syntax left
        assert char not in raw_text, (char, raw_text)
    return parsed


PAPER = Paper(paper_id="2305.14314", title="QLoRA: Efficient Finetuning of Quantized LLMs",
              abstract="We present QLoRA. QLoRA reduces memory usage enough to finetune a 65B model on a single "
                       "48GB GPU. It introduces 4-bit NormalFloat.",
              authors=("Tim Dettmers", "Artidoro Pagnoni"), date="2023-05-23", url="https://arxiv.org/abs/2305.14314",
              arxiv_id="2305.14314")
EVIL = Paper(paper_id="doc-evil", title=f"Widgets {HOSTILE[0]}", abstract=f"Calibrating widgets. {HOSTILE[1]} works.",
             authors=(HOSTILE[2],), date="2024", url="javascript:alert(1)")
ORCA = Paper(paper_id="doc-0123456789abcdef", title="", abstract="To address this, we develop Orca, a 13B model. "
             "Orca learns from explanation traces. Orca beats Vicuna on BBH.")


def make_answer(mode="llm", abstained=False, text="QLoRA fits a 65B model on one GPU [1]. Widgets [2][7].") -> Answer:
    hits = (Hit(PAPER, 0.031, 0.71, 0.9, (PAPER.abstract,), 1), Hit(EVIL, 0.016, 0.2, 0.4, (EVIL.abstract,), 2))
    citations = () if abstained else (
        Citation(1, PAPER.paper_id, PAPER.title, PAPER.url,
                 "QLoRA reduces memory usage enough to finetune a 65B model on a single 48GB GPU.", True),
        Citation(2, EVIL.paper_id, EVIL.title, EVIL.url, HOSTILE[1] + " works.", False))
    sources = tuple(Source(h.paper.paper_id, h.paper.title, h.score, h.paper) for h in hits)
    return Answer(question=HOSTILE[0], answer=text, mode=mode, abstained=abstained, citations=citations,
                  sources=sources, timings={"retrieve": 0.05, "generate": 1.25, "total": 1.4},
                  model="qwen2.5-0.5b-instruct-q4_k_m.gguf" if mode == "llm" else "", standalone_query=HOSTILE[3],
                  prompt_tokens=812, removed_markers=1, unsupported=1, retrieved=hits)


def orca_answer(text="Orca learns from explanation traces [1]. Orca beats Vicuna on BBH [1].") -> Answer:
    hit = Hit(ORCA, 0.5, 0.6, 0.7, (ORCA.abstract,), 1)
    return Answer(question="What is Orca?", answer=text, mode="extractive", abstained=False,
                  citations=(Citation(1, ORCA.paper_id, "Orca", "", "Orca learns from explanation traces.", True),),
                  sources=(Source(ORCA.paper_id, "Orca", 0.5, ORCA),), timings={"total": 0.1}, model="",
                  standalone_query="What is Orca?", prompt_tokens=0, removed_markers=0, unsupported=0, retrieved=(hit,),
                  checks=tuple(SentenceCheck(s, (1,), True, 0.9, 0.9) for s in re.findall(r"[^.]+\[1\]\.", text)))


@pytest.mark.parametrize("value", HOSTILE)
def test_text_escapes_html_markdown_and_latex(value):
    out = render.text(value)
    assert parse(out).tags == []  # no element at all
    assert html.unescape(out) == value  # shown literally
    for char in "<>`*_[]$~|{}":
        assert char not in out


@pytest.mark.parametrize("answer, expected", [
    ("a [1].", ["https://a/1"]),
    ("a [1, 3].", ["https://a/1", "https://a/3"]),
    ("a [1-3].", ["https://a/1", "https://a/2", "https://a/3"]),
    ("a [1][2].", ["https://a/1", "https://a/2"]),
    ("a [1; 2] and [9].", ["https://a/1", "https://a/2"]),  # [9] has no source: stays text
])
def test_markers_become_links(answer, expected):
    targets = {n: (f"https://a/{n}", f"title {n}") for n in (1, 2, 3)}
    parsed = assert_inert(render.link_markers(answer, targets))
    assert [attrs["href"] for tag, attrs in parsed.tags if tag == "a"] == expected
    assert all(attrs["rel"] == "noopener noreferrer" for tag, attrs in parsed.tags if tag == "a")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<script>x</script>", "", "https://a/ b",
                                 "#pc-paper-x\" onclick=\"alert(1)"])
def test_unsafe_urls_are_not_linked(url):
    assert "<a" not in render.link_markers("claim [1]", {1: (url, "t")})


def test_a_paper_without_a_page_is_cited_by_a_link_to_its_card():
    answer = orca_answer()
    message = render.render_answer(answer)
    links = [a for tag, a in assert_inert(message).tags if tag == "a"]
    assert {a["href"] for a in links} == {"#pc-paper-doc-0123456789abcdef"}
    assert links[0]["title"] == "Orca (in the sources panel)" and "pc-cite" in links[0]["class"]
    panel = render_sources(answer)
    cards = [a for tag, a in assert_inert(panel).tags if tag == "div" and "data-paper-id" in a]
    assert [c["id"] for c in cards] == ["pc-paper-doc-0123456789abcdef"]  # the link's target
    assert 'class="pc-derived"' in panel and 'class="pc-derived"' in message  # a derived name says so


def test_every_cited_sentence_of_a_paper_is_marked_and_numbered():
    answer = orca_answer()
    assert cited_sentences(answer, 1) == ["Orca learns from explanation traces.",
                                          "Orca learns from explanation traces [1].", " Orca beats Vicuna on BBH [1]."]
    panel = render_sources(answer)
    marks = re.findall(r"<mark>(.*?)</mark><sup class=\"pc-markno\">&#91;1&#93;</sup>", panel)
    assert marks == ["Orca learns from explanation traces.", "Orca beats Vicuna on BBH."]


def test_the_unsupported_flag_is_a_badge_not_body_text():
    answer = make_answer(text=f"QLoRA fits a 65B model on one GPU [1]. It runs on phones {UNSUPPORTED_FLAG}.")
    message = render.render_answer(answer)
    parsed = assert_inert(message)
    flags = [a for tag, a in parsed.tags if tag == "span" and a.get("class") == "pc-flag"]
    assert len(flags) == 1 and "supports" in flags[0]["title"]
    assert UNSUPPORTED_FLAG not in "".join(parsed.text)


@pytest.mark.parametrize("mode, abstained", [("llm", False), ("extractive", False), ("extractive", True)])
def test_rendered_answer_sources_and_trace_are_inert(mode, abstained):
    answer = make_answer(mode, abstained)
    message = render.render_answer(answer, Filters(year_min=2021), "md [1]\n**References**")
    panel = render_sources(answer)
    for fragment in (message, panel, render.render_trace(answer), render.render_user(answer.question),
                     render.render_draft(answer, HOSTILE[1])):
        assert_inert(fragment)
        assert "<script" not in fragment and "<img" not in fragment and "<svg" not in fragment
    parsed = parse(message)
    badge = " ".join(attrs.get("class", "") for tag, attrs in parsed.tags if tag == "span")
    assert ("pc-llm" in badge) == (mode == "llm") and ("pc-extractive" in badge) == (mode == "extractive")
    assert ("pc-abstained" in badge) == abstained and "pc-filter" in badge
    shown = "".join(parsed.text)
    assert ("model: Qwen2.5 0.5B Instruct (Q4_K_M)" in shown) == (mode == "llm")
    assert "filter: year from 2021" in shown
    links = [a["href"] for tag, a in parsed.tags if tag == "a"]
    assert links == ([] if abstained else ["https://arxiv.org/abs/2305.14314", "#pc-paper-doc-evil",
                                           "https://arxiv.org/abs/2305.14314"])  # [2] is javascript: -> its card
    hidden = [a for tag, a in parsed.tags if tag == "div" and a.get("class") == "pc-md"]
    assert hidden and hidden[0]["title"] == "md [1]\n**References**"  # what Copy puts on the clipboard


def test_a_draft_says_the_model_is_writing_and_shows_its_text():
    draft = Draft(make_answer("extractive"), final=False)
    out = render.render_draft(draft.answer, "The model says [1")
    assert_inert(out)
    assert "pc-streaming" in out and "the model is writing" in out and "The model says &#91;1" in out


def test_sources_panel_lists_cited_papers_with_marks():
    panel = render_sources(make_answer(), Filters(category="cs.CL"))
    parsed = parse(panel)
    text = "".join(parsed.text)
    assert "QLoRA: Efficient Finetuning of Quantized LLMs" in text and "Tim Dettmers" in text and "2023-05-23" in text
    assert HOSTILE[0] in text and HOSTILE[1] in text  # the hostile paper's title and abstract, literally
    assert '<mark>QLoRA reduces memory usage enough to finetune a 65B model on a single 48GB GPU.</mark>' in panel
    assert f"<mark>{render.text(HOSTILE[1] + ' works.')}</mark>" in panel
    assert "not supported" in text and "Searched only: category cs.CL" in text
    assert [a["href"] for tag, a in parsed.tags if tag == "a"] == ["https://arxiv.org/abs/2305.14314"]


def test_abstained_answer_lists_nearest_papers_as_links():
    text = ("The indexed papers do not cover this question. The nearest papers are:\n"
            "- QLoRA (https://arxiv.org/abs/2305.14314)\n- Orca (doc-0123456789abcdef)")
    answer = make_answer("extractive", abstained=True, text=text)
    panel = render_sources(answer)
    assert "Nearest papers" in panel and "<mark>" not in panel
    assert [a.get("data-paper-id") for tag, a in parse(panel).tags if tag == "div" and "data-paper-id" in a] == \
        ["2305.14314", "doc-evil"]
    links = [a["href"] for tag, a in assert_inert(render.render_answer(answer)).tags if tag == "a"]
    assert links == ["https://arxiv.org/abs/2305.14314", "#pc-paper-doc-0123456789abcdef"]


def test_a_filter_that_matches_nothing_says_so():
    answer = make_answer("extractive", abstained=True, text="No indexed paper matches: year 2030\u20132030.")
    answer = Answer(**{**answer.__dict__, "sources": ()})
    panel = render_sources(answer, Filters(year_min=2030, year_max=2030))
    assert "No indexed paper matches: year 2030\u20132030." in html.unescape(panel)


def test_trace_shows_ids_scores_tokens_timings():
    trace = render.render_trace(make_answer())
    parsed = parse(trace)
    assert parsed.tags[0][0] == "details" and ("open" not in parsed.tags[0][1])
    text = "".join(parsed.text)
    for expected in ("2305.14314", "doc-evil", "0.0310", "0.0160", "812 prompt tokens", "generate 1.25s", "1.40s",
                     "invalid markers removed: 1", HOSTILE[3]):
        assert expected in text, expected


def test_search_results_show_the_best_matching_sentence():
    hits = [Hit(PAPER, 0.9, 0.7, 0.5, (f"{PAPER.title}\n{PAPER.abstract}",), 1)]
    out = render_hits(hits, ["It introduces 4-bit NormalFloat."])
    assert_inert(out)
    assert "<mark>It introduces 4-bit NormalFloat.</mark>" in out and "Best match:" in out


def test_partial_answer_is_escaped_with_cursor():
    out = render.render_partial("Streaming <img src=x onerror=alert(1)> [1")
    assert_inert(out)
    assert "pc-streaming" in out and "<img" not in out


@pytest.mark.parametrize("name, label", [
    ("qwen2.5-0.5b-instruct-q4_k_m.gguf", "Qwen2.5 0.5B Instruct (Q4_K_M)"),
    ("Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q4_k_m.gguf", "Qwen2.5 0.5B Instruct (Q4_K_M)"),
    ("../shared/models/stories260K.gguf", "Stories260K"),
    ("bartowski/Llama-3.2-1B-Instruct-GGUF:Llama-3.2-1B-Instruct-Q8_0.gguf", "Llama 3.2 1B Instruct (Q8_0)"),
])
def test_models_are_named_readably(name, label):
    assert render.model_label(name) == label


def test_example_questions_use_titles():
    papers = [PAPER, Paper(paper_id="x", title="", abstract="No title."), EVIL]
    questions = render.example_questions(papers, 5)
    assert questions[0] == 'What does "QLoRA: Efficient Finetuning of Quantized LLMs" propose?'
    assert len(questions) == 2 and HOSTILE[0] in questions[1]  # raw text: the textbox shows it as text


def test_ingest_report_and_errors_are_escaped_and_name_uploads_as_uploaded():
    from ingest.pipeline import IngestReport
    from ingest.sources import Rejection

    report = IngestReport(added=2, rejected=[Rejection("/tmp/gradio/ab12/bakery.jsonl", 3, HOSTILE[0])] * 12,
                          papers_in_index=7)
    out = render.render_ingest(report, rename={"/tmp/gradio/ab12/bakery.jsonl": "bakery.jsonl"})
    assert_inert(out)
    assert "added 2" in out and "12 rejected" in out and "2 more" in out and "pc-error" not in out
    assert "/tmp/gradio" not in out and "bakery.jsonl:3" in out
    assert_inert(render.render_error(HOSTILE[0]))


def test_a_source_that_failed_as_a_whole_is_an_error():
    from ingest.pipeline import IngestReport
    from ingest.sources import Rejection

    report = IngestReport(added=1, rejected=[Rejection("arxiv:x", None, "arXiv API cannot be reached"),
                                             Rejection("a.jsonl", 2, "no abstract")])
    out = render.render_ingest(report)
    assert out.count('class="pc-error"') == 1 and "Could not add papers from arxiv:x" in out
    assert "added 1" in out and "2 rejected" in out


def test_papers_added_to_an_index_chunked_otherwise_bring_a_rechunk_note():
    from ingest.pipeline import IngestReport

    assert "pc-warn" not in render.render_ingest(IngestReport(added=1))
    out = render.render_ingest(IngestReport(added=1, stale_chunker="v1 <b>old</b>"))
    assert 'class="pc-warn"' in out and "python -m ingest --rechunk" in out and "&#60;b&#62;old" in out
    assert_inert(out)


def test_a_conversation_exports_with_one_reference_list_and_bibtex():
    first = export.turn_record("What is QLoRA?", make_answer("extractive"), "")
    second = export.turn_record("And Orca?", orca_answer("Orca imitates [1]. QLoRA is cheaper [2]."), "year from 2021")
    second["refs"].append({**first["refs"][0], "n": 2})  # the second answer cites QLoRA as its [2]
    markdown, refs = export.conversation_markdown("Notes", [first, second])
    assert [r["paper_id"] for r in refs] == ["2305.14314", "doc-evil", "doc-0123456789abcdef"]
    assert "Orca imitates [3]. QLoRA is cheaper [1]." in markdown  # renumbered to the one list
    assert "*Searched only: year from 2021*" in markdown
    listed = re.findall(r"^(\d+)\. (.*)$", markdown.split("## References")[1], re.M)
    assert [n for n, _ in listed] == ["1", "2", "3"] and "Orca (name derived from the abstract)" in listed[2][1]
    bib = export.bibtex(refs)
    assert bib.count("@misc{") == 3 and "eprint = {2305.14314}" in bib and "author = {Tim Dettmers and Artidoro" in bib
    assert "{" + HOSTILE[0] not in bib and "note = {title derived from the abstract" in bib
