"""The Gradio Blocks of the web app: chat, search and add-papers tabs, wired to :class:`Services`.

Each browser session keeps its own conversation in ``gr.State``. Events that run the
model share the concurrency group ``generate`` (one at a time: llama.cpp is not
re-entrant); retrieval-only events (search, example refresh) run in the ``retrieval``
group and ingest in ``ingest``, so neither waits behind a long answer. All HTML comes
from :mod:`chat.render`, which escapes every untrusted string.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import gradio as gr

from chat import render
from models.errors import PaperChatError
from webapp.services import ANY_CATEGORY, EXTRACTIVE, Services, make_filters

GENERATE = dict(concurrency_id="generate", concurrency_limit=1)
RETRIEVAL = dict(concurrency_id="retrieval", concurrency_limit=4)
INGEST = dict(concurrency_id="ingest", concurrency_limit=1)
PRIVATE = dict(api_visibility="private")  # UI plumbing: the public API is /ask only
_EMPTY_SOURCES = '<div class="pc-sources"><p>Sources of the latest answer appear here.</p></div>'


def _message(role: str, html: str) -> dict:
    return {"role": role, "content": html}


def build_ui(services: Services) -> tuple[gr.Blocks, dict]:
    """The app and the options ``launch()`` needs (CSS, upload limit)."""
    facets = services.facets()
    with gr.Blocks(title="PaperChat") as demo:
        gr.Markdown("# PaperChat\nAsk questions about the indexed paper abstracts; every claim cites its paper.")
        gr.HTML(render.render_notice(services.notices), elem_id="notice")
        history = gr.State([])  # this session's (question, answer text) pairs
        with gr.Tab("Chat"):
            chat = _chat_tab(services, facets, history)
        with gr.Tab("Search papers"):
            _search_tab(services, chat["filters"])
        with gr.Tab("Add papers"):
            _add_tab(services, chat)
        gr.api(_api_ask(services), api_name="ask", **GENERATE)
    return demo, {"css": render.CSS, "max_file_size": "200mb"}


def _chat_tab(services: Services, facets, history: gr.State) -> dict:
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Conversation", elem_id="chatbot", height=520, buttons=["copy", "copy_all"],
                                 sanitize_html=True, allow_tags=False, latex_delimiters=[], render_markdown=True)
            with gr.Row():
                question = gr.Textbox(show_label=False, placeholder="Ask about the papers…", scale=5,
                                      elem_id="question", lines=1, max_lines=4)
                ask = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
            k, year_min, year_max, category, model = _settings(services, facets)
            examples = gr.Dataset(label="Example questions", components=[question], elem_id="examples",
                                  samples=[[q] for q in services.examples(seed=0)])
            with gr.Row():
                more = gr.Button("Other examples", size="sm", elem_id="more-examples")
                clear = gr.Button("Clear chat", size="sm", elem_id="clear")
        with gr.Column(scale=2):
            sources = gr.HTML(_EMPTY_SOURCES, elem_id="sources", label="Sources")
    inputs = [question, chatbot, history, k, year_min, year_max, category, model]
    outputs = [question, chatbot, sources, history]
    for trigger in (question.submit, ask.click):
        trigger(_respond(services), inputs, outputs, show_progress="minimal", **GENERATE, **PRIVATE)
    examples.click(lambda sample: sample[0], examples, question, queue=False, **PRIVATE)
    more.click(lambda: gr.Dataset(samples=[[q] for q in services.examples()]), None, examples, **RETRIEVAL, **PRIVATE)
    clear.click(lambda: ([], [], _EMPTY_SOURCES), None, [chatbot, history, sources], queue=False, **PRIVATE)
    return {"filters": (k, year_min, year_max, category), "examples": examples, "category": category}


def _settings(services: Services, facets) -> tuple:
    with gr.Accordion("Settings", open=False, elem_id="settings"):
        with gr.Row():
            k = gr.Slider(1, 10, value=5, step=1, label="Number of sources", elem_id="k")
            model = gr.Dropdown(list(services.choices), value=services.choices[0], label="Model",
                                visible=len(services.choices) > 1, elem_id="model")
        with gr.Row():
            years = f"{facets.year_min}\u2013{facets.year_max}" if facets.year_min else "unknown"
            year_min = gr.Number(label="From year", value=None, precision=0, info=f"empty: any (index: {years})",
                                 elem_id="year-min")
            year_max = gr.Number(label="To year", value=None, precision=0, info="empty: any", elem_id="year-max")
            category = gr.Dropdown([ANY_CATEGORY, *facets.categories], value=ANY_CATEGORY, label="Category",
                                   allow_custom_value=True, elem_id="category")
    return k, year_min, year_max, category, model


def _respond(services: Services):
    def respond(question, messages, history, k, year_min, year_max, category, model) -> Iterator[tuple]:
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        shown = [*messages, _message("user", render.render_user(question))]
        yield "", [*shown, _message("assistant", render.render_partial(""))], gr.skip(), gr.skip()
        answer, partial = None, ""
        try:
            filters = make_filters(year_min, year_max, category)
            answerer = services.answerer(model)
            with services.lock.read():
                for event in answerer.stream(question, history=[tuple(h) for h in history], k=int(k), filters=filters):
                    if isinstance(event, str):
                        partial += event
                        yield gr.skip(), [*shown, _message("assistant", render.render_partial(partial))], \
                            gr.skip(), gr.skip()
                    else:
                        answer = event
        except (PaperChatError, ValueError) as exc:
            yield gr.skip(), [*shown, _message("assistant", render.render_error(str(exc)))], gr.skip(), gr.skip()
            return
        notes = answerer.notes if model != EXTRACTIVE and answerer.llm is None else ()  # the chosen model failed
        yield (gr.skip(), [*shown, _message("assistant", render.render_answer(answer, notes))],
               render.render_sources(answer), [*history, [question, answer.answer]])
    return respond


def _search_tab(services: Services, filters) -> None:
    k, year_min, year_max, category = filters
    with gr.Row():
        query = gr.Textbox(show_label=False, placeholder="Search the indexed papers…", scale=5, elem_id="search-query")
        go = gr.Button("Search", scale=1, elem_id="search")
    results = gr.HTML(elem_id="search-results")

    def search(text, k, year_min, year_max, category):
        if not (text or "").strip():
            return render.render_hits([])
        try:
            return render.render_hits(services.search(text, int(k), make_filters(year_min, year_max, category)))
        except (PaperChatError, ValueError) as exc:
            return render.render_error(str(exc))

    for trigger in (query.submit, go.click):
        trigger(search, [query, k, year_min, year_max, category], results, **RETRIEVAL, **PRIVATE)


def _add_tab(services: Services, chat: dict) -> None:
    gr.Markdown("Upload files in any format the ingest reads (JSON Lines, JSON, CSV/TSV, Parquet, the sample "
                "page formats), or fetch from arXiv with a query such as `arxiv:retrieval augmented generation`, "
                "`arxiv:ti:QLoRA` or `arxiv:2305.14314`.")
    files = gr.File(label="Files", file_count="multiple", elem_id="upload")
    arxiv = gr.Textbox(label="arXiv query", placeholder="arxiv:…", elem_id="arxiv")
    add = gr.Button("Add papers", variant="primary", elem_id="add")
    status = gr.HTML(elem_id="add-status")

    def add_papers(uploaded, query, progress=gr.Progress()):
        sources = [_keep_upload(services, f) for f in uploaded or []]
        query = (query or "").strip()
        if query:
            sources.append(query if query.startswith(("arxiv:", "hf:")) else f"arxiv:{query}")
        if not sources:
            return render.render_error("Choose a file or type an arXiv query first."), gr.skip(), gr.skip()

        def report_progress(p):
            progress((p.papers_parsed, None), desc=f"Indexing: {p.papers_parsed} papers read, "
                                                   f"{p.chunks_embedded} chunks embedded", unit="papers")
        progress(0, desc="Reading sources…")
        try:
            report = services.add_papers(sources, report_progress)
        except PaperChatError as exc:
            return render.render_error(f"Could not add papers: {exc}"), gr.skip(), gr.skip()
        facets = services.facets()
        return (render.render_ingest(report), gr.Dataset(samples=[[q] for q in services.examples()]),
                gr.Dropdown(choices=[ANY_CATEGORY, *facets.categories]))

    add.click(add_papers, [files, arxiv], [status, chat["examples"], chat["category"]], **INGEST, **PRIVATE)


def _keep_upload(services: Services, path: str) -> str:
    """Copy an upload beside the index so the index's source list names a file that stays."""
    folder = os.path.join(services.settings.index, "uploads", uuid.uuid4().hex[:8])
    os.makedirs(folder, exist_ok=True)
    return shutil.copy(path, os.path.join(folder, os.path.basename(path)))


def _api_ask(services: Services):
    def ask(question: str, k: int = 5, year_min: int | None = None, year_max: int | None = None,
            category: str = "", model: str = "") -> dict:
        """Answer one question; returns the JSON of `python -m chat ask --json`."""
        if not (question or "").strip():
            raise gr.Error("question is empty")
        try:
            answerer = services.answerer(model or None)
            with services.lock.read():
                answer = answerer.ask(question, k=int(k), filters=make_filters(year_min, year_max, category))
        except (PaperChatError, ValueError) as exc:
            raise gr.Error(str(exc)) from exc
        return answer.to_json()
    return ask
