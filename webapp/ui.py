"""The Gradio Blocks of the web app: conversations, chat, search, library and add-papers, wired to Services.

Conversations live in the browser (``gr.BrowserState``, encrypted with a secret kept beside
the index, so they survive a reload and a server restart). Answers run in the concurrency
group ``answer`` (several at once: extractive answers never wait for the model; a model
generates one answer at a time behind its own lock), retrieval-only events in ``retrieval``
and writes to the index in ``ingest``. All HTML comes from :mod:`chat.render` and
:mod:`chat.render_sources`, which escape every untrusted string.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import gradio as gr

from chat import export, render
from models.errors import PaperChatError
from webapp import assets, chat_tab, conversations, library_tab, other_tabs
from webapp.services import ANY_CATEGORY, Services, make_filters

ANSWER = dict(concurrency_id="answer", concurrency_limit=4)
PRIVATE = dict(api_visibility="private")  # UI plumbing: the public API is /ask only
STORAGE_KEY = "paperchat-conversations"


def build_ui(services: Services, secret: str | None = None) -> tuple[gr.Blocks, dict]:
    """The app and the options ``launch()`` needs (CSS, script, upload limit)."""
    facets = services.facets()
    with gr.Blocks(title="PaperChat", delete_cache=(3600, 3600)) as demo:
        store = gr.BrowserState(conversations.empty(), storage_key=STORAGE_KEY, secret=secret)
        gr.Markdown("# PaperChat\nAsk questions about the indexed paper abstracts; every claim cites its paper.",
                    elem_id="title")
        notice = gr.HTML(elem_id="notice")
        timer = gr.Timer(1.0)
        side = _sidebar(store)
        with gr.Tab("Chat", elem_id="tab-chat"):
            chat = _chat(services, facets, store, side)
        with gr.Tab("Search papers", elem_id="tab-search"):
            search = other_tabs.search_tab(services, facets)
        with gr.Tab("Library", elem_id="tab-library") as library:
            lib = library_tab.build(services)
        with gr.Tab("Add papers", elem_id="tab-add"):
            added = other_tabs.add_tab(services)
        library.select(lib["show"], lib["query"], lib["outputs"], concurrency_id="retrieval", **PRIVATE)
        progress_outputs = [notice, timer, chat["model"], chat["examples"], chat["category"], search["category"]]
        timer.tick(_startup_progress(services), None, progress_outputs, queue=False, **PRIVATE)
        added.then(_after_adding(services), None, progress_outputs[3:], concurrency_id="retrieval", **PRIVATE)
        demo.load(chat_tab.restore(services), store, [chat["chatbot"], chat["sources"], store, side["list"]],
                  **PRIVATE)
        gr.api(_api_ask(services), api_name="ask", **ANSWER)
    return demo, {"css": assets.CSS, "head": assets.JS, "max_file_size": "200mb"}


def _sidebar(store) -> dict:
    with gr.Sidebar(label="Conversations", open=False, elem_id="conversations"):
        listing = gr.Radio(label="Past conversations", choices=[], elem_id="conversation-list")
        new = gr.Button("New conversation", size="sm", elem_id="new-conversation")
        with gr.Accordion("Rename, delete, export", open=False, elem_id="conversation-tools"):
            title = gr.Textbox(label="New name for the open conversation", elem_id="rename-text")
            rename = gr.Button("Rename", size="sm", elem_id="rename")
            delete = gr.Button("Delete the open conversation", size="sm", variant="stop", elem_id="delete")
            export_button = gr.Button("Export as Markdown + BibTeX", size="sm", elem_id="export")
            files = gr.File(label="Exported files", file_count="multiple", interactive=False, elem_id="export-files")
    export_button.click(_export, store, files, queue=False, **PRIVATE)
    return {"list": listing, "new": new, "title": title, "rename": rename, "delete": delete}


def _chat(services: Services, facets, store, side) -> dict:
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=320):
            chatbot = gr.Chatbot(label="Conversation", elem_id="chatbot", height=520, buttons=[], sanitize_html=True,
                                 allow_tags=False, latex_delimiters=[], render_markdown=True,
                                 placeholder="Ask about the indexed papers: every claim in the answer cites one.")
            with gr.Row():
                question = gr.Textbox(label="Question", show_label=False, placeholder="Ask about the papers\u2026",
                                      scale=5, lines=1, max_lines=4, elem_id="question", autofocus=True)
                ask = gr.Button("Ask", variant="primary", scale=1, min_width=70, elem_id="ask")
        with gr.Column(scale=2, min_width=300):
            sources = gr.HTML(chat_tab.EMPTY_SOURCES, elem_id="sources", label="Sources")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=320):
            examples = gr.Dataset(label="Example questions", components=[question], elem_id="examples",
                                  samples=[[q] for q in services.examples(seed=0)])
            more = gr.Button("Other examples", size="sm", elem_id="more-examples")
        with gr.Column(scale=2, min_width=300):
            k, year_min, year_max, category, model = _settings(services, facets)
    inputs = [question, chatbot, store, k, year_min, year_max, category, model]
    outputs = [question, chatbot, sources, store, side["list"]]
    for trigger in (question.submit, ask.click):
        trigger(chat_tab.respond(services), inputs, outputs, show_progress="minimal", **ANSWER, **PRIVATE)
    examples.click(lambda sample: sample[0], examples, question, queue=False, **PRIVATE)
    more.click(lambda: gr.Dataset(samples=[[q] for q in services.examples()]), None, examples,
               concurrency_id="retrieval", **PRIVATE)
    chatbot.select(chat_tab.show_turn_sources(services), store, sources, queue=False, **PRIVATE)
    side["list"].input(chat_tab.reopen(services), [store, side["list"]], [chatbot, sources, store], queue=False,
                       **PRIVATE)
    managed = [chatbot, sources, store, side["list"]]
    side["new"].click(lambda s: chat_tab.manage(s, "new"), store, managed, queue=False, **PRIVATE)
    chatbot.clear(lambda s: chat_tab.manage(s, "new")[1:], store, managed[1:], queue=False, **PRIVATE)
    side["delete"].click(lambda s: chat_tab.manage(s, "delete"), store, managed, queue=False, **PRIVATE)
    side["rename"].click(lambda s, t: chat_tab.manage(s, "rename", t), [store, side["title"]], managed, queue=False,
                         **PRIVATE)
    return {"chatbot": chatbot, "sources": sources, "examples": examples, "category": category, "model": model}


def _settings(services: Services, facets) -> tuple:
    with gr.Accordion("Settings", open=False, elem_id="settings"):
        choices = services.model_choices()
        model = gr.Dropdown(choices, value=choices[0][1], label="Model", visible=len(choices) > 1, elem_id="model",
                            info="models that loaded; extractive answers quote the abstracts")
        k = gr.Slider(1, 10, value=5, step=1, label="Number of sources", elem_id="k")
        years = f"{facets.year_min}\u2013{facets.year_max}" if facets.year_min else "unknown"
        with gr.Row():
            year_min = gr.Textbox(label="From year", placeholder="any", info=f"index: {years}", max_length=5,
                                  elem_id="year-min")
            year_max = gr.Textbox(label="To year", placeholder="any", max_length=5, elem_id="year-max")
        category = gr.Dropdown([ANY_CATEGORY, *facets.categories], value=ANY_CATEGORY, label="Category",
                               allow_custom_value=True, elem_id="category")
    return k, year_min, year_max, category, model


def _startup_progress(services: Services):
    def tick():
        """The first start's progress in the page; when it is done, the controls that depend on it."""
        status = services.startup.status
        notes = render.render_notice(status.notes)
        if status.phase not in ("ready", "failed"):
            label = {"indexing": "Indexing the sample papers", "loading": "Loading the language model",
                     "enriching": "Looking up untitled papers on arXiv"}.get(status.phase, "Starting")
            bar = render.render_progress(f"{label}: {status.line}" if status.line else label, status.done,
                                         status.total)
            return bar + notes, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        choices, facets = services.model_choices(), services.facets()
        categories = [ANY_CATEGORY, *facets.categories]
        return (notes, gr.Timer(active=False), gr.Dropdown(choices=choices, value=choices[0][1],
                                                           visible=len(choices) > 1),
                gr.Dataset(samples=[[q] for q in services.examples(seed=0)]), gr.Dropdown(choices=categories),
                gr.Dropdown(choices=categories))
    return tick


def _after_adding(services: Services):
    def refresh():
        """New papers: new example questions and categories."""
        categories = [ANY_CATEGORY, *services.facets().categories]
        return (gr.Dataset(samples=[[q] for q in services.examples()]), gr.Dropdown(choices=categories),
                gr.Dropdown(choices=categories))
    return refresh


def _export(store):
    """The open conversation as Markdown (answers with one reference list) and BibTeX, as downloads."""
    conversation = conversations.current(store)
    if not conversation or not conversation.get("turns"):
        gr.Warning("Nothing to export yet: ask a question first.")
        return None
    markdown, refs = export.conversation_markdown(conversation["title"], conversation["turns"])
    folder = tempfile.mkdtemp(prefix="paperchat-export-")
    stem = "".join(c if c.isalnum() else "-" for c in conversation["title"])[:40].strip("-") or "conversation"
    paths = [os.path.join(folder, f"{stem}.md"), os.path.join(folder, f"{stem}.bib")]
    for path, content in zip(paths, (markdown, export.bibtex(refs) + "\n")):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(content)
    _prune_exports(os.path.dirname(folder))
    return paths


def _prune_exports(parent: str, max_age_s: float = 3600) -> None:
    """Exports are served from Gradio's cache; our copies older than an hour go."""
    for name in os.listdir(parent):
        path = os.path.join(parent, name)
        if name.startswith("paperchat-export-") and time.time() - os.path.getmtime(path) > max_age_s:
            shutil.rmtree(path, ignore_errors=True)


def _api_ask(services: Services):
    def ask(question: str, k: int = 5, year_min: int | None = None, year_max: int | None = None,
            category: str = "", model: str = "") -> dict:
        """Answer one question; returns the JSON of `python -m chat ask --json`."""
        if not (question or "").strip():
            raise gr.Error("question is empty")
        if not services.ready:
            raise gr.Error(services.startup.status.message())
        try:
            answerer = services.answerer(model or None)
            with services.lock.read():
                answer = answerer.ask(question, k=int(k), filters=make_filters(year_min, year_max, category))
        except (PaperChatError, ValueError) as exc:
            raise gr.Error(str(exc)) from exc
        return answer.to_json()
    return ask
