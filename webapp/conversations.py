"""The conversations a browser keeps (in ``gr.BrowserState``): plain JSON, changed only by these functions.

A store is ``{"v": 1, "current": id or None, "items": [conversation, ...]}``, most recently
used first; a conversation is ``{"id", "title", "created", "updated", "turns": [turn, ...]}``
and a turn what :func:`chat.export.turn_record` returns plus ``html``, the message as it
was shown. Every function returns a new store (Gradio saves a value it sees change) and
keeps it within ``MAX_CONVERSATIONS`` / ``MAX_TURNS`` / ``MAX_BYTES``, dropping the oldest.

>>> store = add_turn(empty(), {"question": "What is QLoRA?", "answer": "4-bit finetuning [1].", "refs": [],
...                            "html": "<div>...</div>"}, now=1700000000)
>>> [c["title"] for c in store["items"]], history(current(store))
(['What is QLoRA?'], [('What is QLoRA?', '4-bit finetuning [1].')])
>>> store = rename(store, store["current"], "  QLoRA notes "); current(store)["title"]
'QLoRA notes'
>>> current(delete(store, store["current"])) is None
True
"""

from __future__ import annotations

import json
import time
import uuid
from copy import deepcopy

MAX_CONVERSATIONS = 40
MAX_TURNS = 60
MAX_BYTES = 1_500_000  # browsers give a site ~5 MB of localStorage; the encrypted value is larger than this
_TITLE_CHARS = 60


def empty() -> dict:
    return {"v": 1, "current": None, "items": []}


def valid(store) -> dict:
    """``store`` when it has the expected shape (it comes from the browser), else an empty store."""
    if isinstance(store, dict) and store.get("v") == 1 and isinstance(store.get("items"), list):
        return store
    return empty()


def current(store: dict) -> dict | None:
    store = valid(store)
    return next((c for c in store["items"] if c.get("id") == store["current"]), None)


def new_conversation(store: dict) -> dict:
    """Start a new, empty conversation: it becomes current (and is saved with its first answer)."""
    store = deepcopy(valid(store))
    store["current"] = None
    return store


def select(store: dict, conversation_id: str | None) -> dict:
    store = deepcopy(valid(store))
    if any(c["id"] == conversation_id for c in store["items"]):
        store["current"] = conversation_id
    return store


def add_turn(store: dict, turn: dict, now: float | None = None) -> dict:
    """Append an answered question to the current conversation (a new one when there is none)."""
    store = deepcopy(valid(store))
    now = time.time() if now is None else now
    conversation = next((c for c in store["items"] if c["id"] == store["current"]), None)
    if conversation is None:
        title = " ".join(turn["question"].split())
        title = title if len(title) <= _TITLE_CHARS else title[:_TITLE_CHARS - 1].rstrip() + "\u2026"
        conversation = {"id": uuid.uuid4().hex[:12], "title": title, "created": now, "turns": []}
        store["items"].insert(0, conversation)
        store["current"] = conversation["id"]
    conversation["turns"] = (conversation["turns"] + [turn])[-MAX_TURNS:]
    conversation["updated"] = now
    store["items"].sort(key=lambda c: -c.get("updated", 0))
    return _bounded(store)


def rename(store: dict, conversation_id: str | None, title: str) -> dict:
    store = deepcopy(valid(store))
    title = " ".join((title or "").split())[:_TITLE_CHARS * 2]
    for conversation in store["items"]:
        if conversation["id"] == conversation_id and title:
            conversation["title"] = title
    return store


def delete(store: dict, conversation_id: str | None) -> dict:
    store = deepcopy(valid(store))
    store["items"] = [c for c in store["items"] if c["id"] != conversation_id]
    if store["current"] == conversation_id:
        store["current"] = None
    return store


def choices(store: dict) -> list[tuple[str, str]]:
    """(label, id) per conversation, most recent first: 'title · 3 answers · 2026-12-01'."""
    out = []
    for c in valid(store)["items"]:
        n = len(c.get("turns", []))
        day = time.strftime("%Y-%m-%d", time.localtime(c.get("updated", 0)))
        out.append((f"{c['title']} \u00b7 {n} answer{'s' if n != 1 else ''} \u00b7 {day}", c["id"]))
    return out


def messages(conversation: dict | None, render_user) -> list[dict]:
    """The chat messages of a conversation, as they were shown."""
    out = []
    for turn in (conversation or {}).get("turns", []):
        out += [{"role": "user", "content": render_user(turn["question"])},
                {"role": "assistant", "content": turn.get("html", "")}]
    return out


def history(conversation: dict | None) -> list[tuple[str, str]]:
    """(question, answer text) pairs: what a follow-up question is rewritten against."""
    return [(t["question"], t["answer"]) for t in (conversation or {}).get("turns", [])]


def _bounded(store: dict) -> dict:
    store["items"] = store["items"][:MAX_CONVERSATIONS]
    while len(store["items"]) > 1 and len(json.dumps(store)) > MAX_BYTES:
        store["items"].pop()  # the least recently used conversation goes first
    return store
