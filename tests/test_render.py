"""chat/render.py: every untrusted string is inert, citations link, supporting sentences are marked."""

from __future__ import annotations

import html
from html.parser import HTMLParser

import pytest

from chat import render
from chat.answer import Answer, Citation, Source
from chat.retrieve import Hit
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
                "strong", "h4", "p", "br"}
ALLOWED_ATTRS = {"class", "href", "target", "rel", "title", "data-paper-id"}


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
    """Only our own tags and attributes; links only to http(s); no Markdown/LaTeX syntax left."""
    assert "\n" not in fragment  # a blank line would end Markdown's HTML block in the chatbot
    parsed = parse(fragment)
    for tag, attrs in parsed.tags:
        assert tag in ALLOWED_TAGS, tag
        assert set(attrs) <= ALLOWED_ATTRS, attrs
        if "href" in attrs:
            assert attrs["href"].startswith(("https://", "http://")), attrs
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


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<script>x</script>", "", "https://a/ b"])
def test_unsafe_urls_are_not_linked(url):
    assert "<a" not in render.link_markers("claim [1]", {1: (url, "t")})


@pytest.mark.parametrize("abstract, sentence, marked", [
    ("One. The key idea. End.", "The key idea.", "The key idea."),
    ("One. The   key\nidea. End.", "the key idea.", "The   key\nidea."),
    ("See <b>bold</b> claim. End.", "See <b>bold</b> claim.", "See <b>bold</b> claim."),
    ("One. Two.", "Not in there.", None),
])
def test_highlight_marks_the_supporting_sentence_escaped(abstract, sentence, marked):
    out = render.highlight(abstract, [sentence])
    parsed = parse(out)
    assert " ".join(" ".join(parsed.text).split()) == " ".join(abstract.split())
    marks = [tag for tag, _ in parsed.tags if tag == "mark"]
    if marked is None:
        assert not marks
    else:
        assert marks == ["mark"] and f"<mark>{render.text(marked)}</mark>" in out


@pytest.mark.parametrize("mode, abstained", [("llm", False), ("extractive", False), ("extractive", True)])
def test_rendered_answer_sources_and_trace_are_inert(mode, abstained):
    answer = make_answer(mode, abstained)
    message = render.render_answer(answer)
    panel = render.render_sources(answer)
    for fragment in (message, panel, render.render_trace(answer), render.render_user(answer.question)):
        assert_inert(fragment)
        assert "<script" not in fragment and "<img" not in fragment and "<svg" not in fragment
    parsed = parse(message)
    badge = " ".join(attrs.get("class", "") for tag, attrs in parsed.tags if tag == "span")
    assert ("pc-llm" in badge) == (mode == "llm") and ("pc-extractive" in badge) == (mode == "extractive")
    assert ("pc-abstained" in badge) == abstained
    shown = "".join(parsed.text)
    assert ("model: qwen2.5-0.5b-instruct-q4_k_m.gguf" in shown) == (mode == "llm")
    assert ("extractive" in shown) == (mode == "extractive")
    links = [a["href"] for tag, a in parsed.tags if tag == "a"]
    assert links == ([] if abstained else ["https://arxiv.org/abs/2305.14314"])  # [2] is javascript:, [7] unknown


def test_sources_panel_lists_cited_papers_with_marks():
    panel = render.render_sources(make_answer())
    parsed = parse(panel)
    text = "".join(parsed.text)
    assert "QLoRA: Efficient Finetuning of Quantized LLMs" in text and "Tim Dettmers" in text and "2023-05-23" in text
    assert HOSTILE[0] in text and HOSTILE[1] in text  # the hostile paper's title and abstract, literally
    assert '<mark>QLoRA reduces memory usage enough to finetune a 65B model on a single 48GB GPU.</mark>' in panel
    assert f"<mark>{render.text(HOSTILE[1] + ' works.')}</mark>" in panel
    assert "not supported" in text  # citation 2 was flagged by the checker
    assert [a["href"] for tag, a in parsed.tags if tag == "a"] == ["https://arxiv.org/abs/2305.14314"]


def test_abstained_answer_lists_nearest_papers():
    panel = render.render_sources(make_answer("extractive", abstained=True, text="The indexed papers do not cover."))
    assert "Nearest papers" in panel and "<mark>" not in panel
    assert [a.get("data-paper-id") for tag, a in parse(panel).tags if tag == "div" and "data-paper-id" in a] == \
        ["2305.14314", "doc-evil"]


def test_trace_shows_ids_scores_tokens_timings():
    trace = render.render_trace(make_answer())
    parsed = parse(trace)
    assert parsed.tags[0][0] == "details" and ("open" not in parsed.tags[0][1])
    text = "".join(parsed.text)
    for expected in ("2305.14314", "doc-evil", "0.0310", "0.0160", "812 prompt tokens", "generate 1.25s", "1.40s",
                     "invalid markers removed: 1", HOSTILE[3]):
        assert expected in text, expected


def test_partial_answer_is_escaped_with_cursor():
    out = render.render_partial("Streaming <img src=x onerror=alert(1)> [1")
    assert_inert(out)
    assert "pc-streaming" in out and "<img" not in out


def test_example_questions_use_titles():
    papers = [PAPER, Paper(paper_id="x", title="", abstract="No title."), EVIL]
    questions = render.example_questions(papers, 5)
    assert questions[0] == 'What does "QLoRA: Efficient Finetuning of Quantized LLMs" propose?'
    assert len(questions) == 2 and HOSTILE[0] in questions[1]  # raw text: the textbox shows it as text


def test_ingest_report_and_errors_are_escaped():
    from ingest.pipeline import IngestReport
    from ingest.sources import Rejection

    report = IngestReport(added=2, rejected=[Rejection(HOSTILE[1], 3, HOSTILE[0])] * 12, papers_in_index=7)
    out = render.render_ingest(report)
    assert_inert(out)
    assert "added 2" in out and "12 rejected" in out and "2 more" in out and "pc-error" not in out
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
