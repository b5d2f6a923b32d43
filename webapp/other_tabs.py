"""The Search and Add-papers tabs.

Search has its own controls (number of results, years, category) and shows, per result, the
sentence of the abstract closest to the query. Adding papers runs the same ingest as the
command line with a progress bar (done/total, rate, time left), looks up new papers without a
title or arXiv id on arXiv, and deletes uploaded files once they are indexed: the index keeps
their names, the server keeps no copy, and results name files as the user named them.
"""

from __future__ import annotations

import os
import shutil

import gradio as gr

from chat.render import render_error, render_ingest, render_notice
from chat.render_sources import render_hits
from models.errors import PaperChatError
from webapp.services import ANY_CATEGORY, Services, make_filters

RETRIEVAL = dict(concurrency_id="retrieval", concurrency_limit=4, api_visibility="private")
INGEST = dict(concurrency_id="ingest", concurrency_limit=1, api_visibility="private")


def search_tab(services: Services, facets) -> dict:
    with gr.Row():
        query = gr.Textbox(label="Search the indexed papers", placeholder="words, a claim or a question", scale=5,
                           elem_id="search-query")
        go = gr.Button("Search", scale=1, variant="primary", elem_id="search")
    with gr.Row():
        k = gr.Slider(1, 30, value=10, step=1, label="Results", elem_id="search-k")
        year_min = gr.Textbox(label="From year", placeholder="any", elem_id="search-year-min", max_length=5)
        year_max = gr.Textbox(label="To year", placeholder="any", elem_id="search-year-max", max_length=5)
        category = gr.Dropdown([ANY_CATEGORY, *facets.categories], value=ANY_CATEGORY, label="Category",
                               allow_custom_value=True, elem_id="search-category")
    results = gr.HTML(elem_id="search-results")

    def search(text, k, year_min, year_max, category):
        if not (text or "").strip():
            return render_hits([])
        if not services.ready:
            return render_error(services.startup.status.message())
        try:
            hits, best = services.search(text, int(k), make_filters(year_min, year_max, category))
        except (PaperChatError, ValueError) as exc:
            return render_error(str(exc))
        return render_hits(hits, best)

    for trigger in (query.submit, go.click):
        trigger(search, [query, k, year_min, year_max, category], results, **RETRIEVAL)
    return {"category": category}


def add_tab(services: Services):
    """The tab; returns the "add" event (the caller refreshes what depends on the index after it)."""
    gr.Markdown("Upload files in any format the ingest reads (JSON Lines, JSON, CSV/TSV, Parquet, the sample "
                "page formats), or fetch from arXiv with a query such as `arxiv:retrieval augmented generation`, "
                "`arxiv:ti:QLoRA` or `arxiv:2305.14314`.")
    files = gr.File(label="Files", file_count="multiple", elem_id="upload")
    arxiv = gr.Textbox(label="arXiv query", placeholder="arxiv:\u2026", elem_id="arxiv")
    lookup = gr.Checkbox(value=True, label="Look up new papers without a title or arXiv id on arXiv "
                                           "(title, authors, date, link; only confident matches)", elem_id="lookup")
    add = gr.Button("Add papers", variant="primary", elem_id="add")
    status = gr.HTML(elem_id="add-status")

    def add_papers(uploaded, query, lookup, progress=gr.Progress()):
        uploads = [u for u in (uploaded or []) if u]
        query = (query or "").strip()
        sources = [u for u in uploads if os.path.isfile(u)]
        if query:
            sources.append(query if query.startswith(("arxiv:", "hf:")) else f"arxiv:{query}")
        if not sources:
            return render_error("Choose a file or type an arXiv query first.")
        if not services.ready:
            return render_error(services.startup.status.message())

        def report_progress(done: int = 0, total: int | None = None, line: str = "") -> None:
            progress((done, total) if total else None, desc=f"Indexing: {line}", unit="records")
        try:
            report, looked_up = services.add_papers(sources, report_progress, lookup=bool(lookup))
        except PaperChatError as exc:
            return render_error(f"Could not add papers: {exc}")
        finally:
            _delete_uploads(uploads)
        names = {path: os.path.basename(path) for path in uploads}
        return render_ingest(report, rename=names) + render_notice([looked_up.summary() if looked_up else ""])

    event = add.click(add_papers, [files, arxiv, lookup], status, **INGEST)
    event.then(lambda: None, None, files, queue=False, api_visibility="private")  # the uploads are gone
    return event


def _delete_uploads(paths) -> None:
    """Uploaded files are read once: delete them and their (per-upload) temporary folders."""
    for path in paths:
        try:
            os.remove(path)
            folder = os.path.dirname(path)
            if not os.listdir(folder):
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass  # already gone
