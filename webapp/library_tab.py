"""The Library tab: what is indexed (sortable, searchable table and totals), and removing papers or sources.

Rows come from :func:`ingest.library.read_library`, the same as ``python -m ingest --list``.
Clicking a row puts its id in the removal box; the source list offers every source file.
"""

from __future__ import annotations

import gradio as gr

from chat.render import render_error, safe_url, text
from ingest.library import Library, filter_rows
from webapp.services import Services

HEADERS = ["Name", "Named from", "Id", "Year", "Source", "Chunks"]
MAX_ROWS = 2000  # rows sent to the browser; the filter box searches all of them


def _escape_md(value: str) -> str:
    return "".join(f"\\{c}" if c in "\\`*_{}[]()#+-.!|<>~$" else c for c in value)


def rows(library: Library, query: str = "") -> list[list]:
    out = []
    for row in filter_rows(library.rows, query or "")[:MAX_ROWS]:
        ident = _escape_md(row.paper_id)
        link = f"[{ident}]({row.url})" if safe_url(row.url) and "(" not in row.url and ")" not in row.url else ident
        out.append([row.name, "abstract (derived)" if row.derived else "title", link, row.year or "",
                    ", ".join(row.sources), row.chunks])
    return out


def totals(library: Library, shown: int) -> str:
    more = f" · showing {shown}" if shown < library.papers else ""
    derived = sum(r.derived for r in library.rows)
    return (f'<div class="pc-library-totals"><b>{library.papers} papers</b> · {library.chunks} chunks · '
            f'{len(library.sources)} sources · {derived} named from their abstracts{more}</div>')


def build(services: Services) -> dict:
    gr.Markdown("Everything in the index. Click a column to sort, type to search; click a row to select it "
                "for removal. `python -m ingest --list` prints the same rows.")
    summary = gr.HTML(elem_id="library-totals")
    with gr.Row():
        query = gr.Textbox(label="Search the library", placeholder="name, id, year or source file", scale=4,
                           elem_id="library-filter")
        refresh = gr.Button("Refresh", scale=1, elem_id="library-refresh")
    table = gr.Dataframe(headers=HEADERS, datatype=["str", "str", "markdown", "str", "str", "number"],
                         interactive=False, wrap=True, max_height=520, elem_id="library-table",
                         label="Indexed papers", column_widths=["38%", "12%", "16%", "7%", "19%", "8%"])
    with gr.Accordion("Remove papers", open=False, elem_id="library-remove"):
        with gr.Row():
            paper_id = gr.Textbox(label="Paper id", placeholder="click a row, or type an id", elem_id="remove-id")
            remove_paper = gr.Button("Remove this paper", variant="stop", elem_id="remove-paper")
        with gr.Row():
            source = gr.Dropdown(label="Source", choices=[], elem_id="remove-source-choice")
            remove_source = gr.Button("Remove every paper of this source", variant="stop", elem_id="remove-source")
        status = gr.HTML(elem_id="library-status")

    def show(text_query: str):
        library = services.library()
        shown = rows(library, text_query)
        return totals(library, len(shown)), shown, gr.Dropdown(choices=[s for s, _ in library.sources])

    def pick(event: gr.SelectData, current):
        row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        value = current.iloc[row, 2] if hasattr(current, "iloc") else current[row][2]
        return str(value).split("](")[0].lstrip("[").replace("\\", "")

    def remove(paper: str, src: str, which: str, text_query: str):
        try:
            removal = services.remove(paper_id=paper.strip()) if which == "paper" else services.remove(source=src)
        except ValueError as exc:
            return (render_error(str(exc)), *show(text_query))
        return (f'<div class="pc-ingest">{text(removal.summary())}</div>', *show(text_query))

    outputs = [summary, table, source]
    refresh.click(show, query, outputs, concurrency_id="retrieval", api_visibility="private")
    query.submit(show, query, outputs, concurrency_id="retrieval", api_visibility="private")
    table.select(pick, table, paper_id, queue=False, api_visibility="private")
    remove_paper.click(lambda p, s, q: remove(p, s, "paper", q), [paper_id, source, query], [status, *outputs],
                       concurrency_id="ingest", concurrency_limit=1, api_visibility="private")
    remove_source.click(lambda p, s, q: remove(p, s, "source", q), [paper_id, source, query], [status, *outputs],
                        concurrency_id="ingest", concurrency_limit=1, api_visibility="private")
    return {"show": show, "query": query, "outputs": outputs}
