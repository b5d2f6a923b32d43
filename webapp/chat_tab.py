"""The Chat tab: ask, see the sources as soon as retrieval ends, the model's answer stream in, keep it.

``respond`` follows ``Answerer.stream``: a Draft (the extractive or "not covered" answer and
its sources) is shown at once, the model's text streams in below it, and the checked Answer
replaces both. Each answered question is saved to the browser's conversation store
(:mod:`webapp.conversations`) with its message HTML and references, so a reload or a
server restart shows the conversation again.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import gradio as gr

from chat import export, render
from chat.answer import Answer
from chat.render_sources import render_sources
from models.errors import PaperChatError
from webapp import conversations
from webapp.services import Services, make_filters

EMPTY_SOURCES = '<div class="pc-sources"><p>Sources of the latest answer appear here.</p></div>'


def message(role: str, html: str) -> dict:
    return {"role": role, "content": html}


def respond(services: Services):
    def respond(question, messages, store, k, year_min, year_max, category, model) -> Iterator[tuple]:
        """Outputs: question box, chat, sources panel, conversation store, conversation list."""
        skip = gr.skip()
        question = (question or "").strip()
        if not question:
            yield skip, skip, skip, skip, skip
            return
        store = conversations.valid(store)
        history = conversations.history(conversations.current(store))
        shown = [*messages, message("user", render.render_user(question))]
        if not services.ready:
            yield "", [*shown, message("assistant", render.render_waiting(services.startup.status.message()))], \
                skip, skip, skip
            return
        try:
            filters = make_filters(year_min, year_max, category)
        except ValueError as exc:
            yield skip, [*shown, message("assistant", render.render_error(str(exc)))], skip, skip, skip
            return
        yield "", [*shown, message("assistant", render.render_waiting("Searching the papers\u2026"))], skip, skip, skip
        answer = None
        try:
            for shown_now, panel, answer in _stream(services, question, history, k, filters, model):
                yield skip, [*shown, message("assistant", shown_now)], panel, skip, skip
        except (PaperChatError, ValueError) as exc:
            yield skip, [*shown, message("assistant", render.render_error(str(exc)))], skip, skip, skip
            return
        turn = export.turn_record(question, answer, render.filters_label(filters))
        turn["html"] = render.render_answer(answer, filters, export.answer_markdown(answer.answer, turn["refs"]))
        store = conversations.add_turn(store, turn)
        yield (skip, [*shown, message("assistant", turn["html"])], render_sources(answer, filters), store,
               gr.Radio(choices=conversations.choices(store), value=store["current"]))
    return respond


def _stream(services: Services, question, history, k, filters, model):
    """(message HTML, sources panel or skip, final Answer or None) for every step of the answer."""
    draft, partial = None, ""
    with services.lock.read():
        for event in services.answerer(model).stream(question, history=history, k=int(k), filters=filters):
            if isinstance(event, Answer):
                yield render.render_answer(event, filters), gr.skip(), event
            elif isinstance(event, str):
                partial += event
                html = render.render_draft(draft.answer, partial, filters) if draft else render.render_partial(partial)
                yield html, gr.skip(), None
            else:  # a Draft: the quoted answer and its sources, before the model writes
                draft = event
                html = render.render_answer(event.answer, filters) if event.final else \
                    render.render_draft(event.answer, "", filters)
                yield html, render_sources(event.answer, filters), None


def reopen(services: Services):
    def reopen(store, conversation_id):
        """A conversation chosen from the list: its messages and its last answer's sources."""
        store = conversations.select(store, conversation_id)
        conversation = conversations.current(store)
        turns = (conversation or {}).get("turns", [])
        panel = turn_sources(services, turns[-1]) if turns else EMPTY_SOURCES
        return conversations.messages(conversation, render.render_user), panel, store
    return reopen


def restore(services: Services):
    def restore(store):
        """On page load: the browser's conversations and the one that was open."""
        store = conversations.valid(store)
        messages, panel, store = reopen(services)(store, store.get("current"))
        panel = f'<div class="pc-loaded">{panel}</div>'  # marks the page as restored (tests wait for it)
        return messages, panel, store, gr.Radio(choices=conversations.choices(store), value=store.get("current"))
    return restore


def show_turn_sources(services: Services):
    def show(store, event: gr.SelectData):
        """Clicking an answer shows its sources in the panel."""
        turns = (conversations.current(store) or {}).get("turns", [])
        index = event.index if isinstance(event.index, int) else event.index[0]
        return turn_sources(services, turns[index // 2]) if 0 <= index // 2 < len(turns) else gr.skip()
    return show


def turn_sources(services: Services, turn: dict) -> str:
    """The sources panel of a saved answer, its papers read again from the index."""
    papers = services.store.get_papers([r["paper_id"] for r in turn.get("refs", [])])
    citations = [SimpleNamespace(n=r["n"], paper_id=r["paper_id"], title=r["title"], url=r["url"], supported=True,
                                 supporting_sentence=(r.get("sentences") or [""])[0]) for r in turn.get("refs", [])]
    sources = [SimpleNamespace(paper_id=pid, paper=p, score=None) for pid, p in papers.items()]
    answer = SimpleNamespace(citations=citations, sources=sources, checks=(), abstained=turn.get("abstained", False))
    return render_sources(answer, turn.get("filters") or None)


def manage(store, action: str, title: str = ""):
    """New, rename or delete the open conversation: (chat, sources, store, list)."""
    store = conversations.valid(store)
    current = store.get("current")
    if action == "new":
        store = conversations.new_conversation(store)
    elif action == "delete":
        store = conversations.delete(store, current)
    elif action == "rename":
        store = conversations.rename(store, current, title)
        listing = gr.Radio(choices=conversations.choices(store), value=store["current"])
        return gr.skip(), gr.skip(), store, listing
    return [], EMPTY_SOURCES, store, gr.Radio(choices=conversations.choices(store), value=None)
