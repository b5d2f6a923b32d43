"""webapp/conversations.py: what the browser keeps stays valid JSON, bounded, and survives bad input."""

from __future__ import annotations

import json

import pytest

from webapp import conversations as conv


def turn(i: int, size: int = 10) -> dict:
    return {"question": f"Question {i}?", "answer": f"Answer {i} [1].", "refs": [], "html": "x" * size}


@pytest.mark.parametrize("stored", [None, "", 3, [], {"v": 2}, {"v": 1, "items": "nope"}, {"items": []}])
def test_anything_else_from_the_browser_reads_as_an_empty_store(stored):
    assert conv.valid(stored) == conv.empty() and conv.current(stored) is None and conv.choices(stored) == []


def test_turns_go_to_the_open_conversation_and_the_newest_is_listed_first():
    store = conv.add_turn(conv.empty(), turn(1), now=100)
    first = store["current"]
    store = conv.add_turn(store, turn(2), now=200)
    store = conv.add_turn(conv.new_conversation(store), turn(3), now=300)
    assert [len(c["turns"]) for c in store["items"]] == [1, 2] and store["current"] != first
    assert [label.split(" \u00b7 ")[:2] for label, _ in conv.choices(store)] == [
        ["Question 3?", "1 answer"], ["Question 1?", "2 answers"]]
    reopened = conv.select(store, first)
    assert conv.history(conv.current(reopened)) == [("Question 1?", "Answer 1 [1]."), ("Question 2?", "Answer 2 [1].")]
    assert conv.select(store, "no-such-id")["current"] == store["current"]


def test_a_long_question_makes_a_short_title_and_renaming_keeps_it_sane():
    store = conv.add_turn(conv.empty(), {**turn(1), "question": "word " * 40}, now=1)
    title = conv.current(store)["title"]
    assert len(title) <= 60 and title.endswith("\u2026")
    assert conv.current(conv.rename(store, store["current"], "   "))["title"] == title  # a blank name is ignored


def test_the_store_stays_within_its_bounds():
    store = conv.empty()
    for i in range(conv.MAX_TURNS + 5):
        store = conv.add_turn(store, turn(i), now=i)
    assert len(conv.current(store)["turns"]) == conv.MAX_TURNS
    assert conv.current(store)["turns"][-1]["question"] == f"Question {conv.MAX_TURNS + 4}?"
    big = conv.empty()
    for i in range(12):  # 12 conversations of ~150 kB: the oldest are dropped to stay under MAX_BYTES
        big = conv.add_turn(conv.new_conversation(big), turn(i, 150_000), now=i)
    assert len(json.dumps(big)) <= conv.MAX_BYTES and big["items"][0]["turns"][0]["question"] == "Question 11?"
    assert len(big["items"]) < 12


def test_messages_replay_what_was_shown():
    store = conv.add_turn(conv.empty(), turn(1), now=1)
    messages = conv.messages(conv.current(store), lambda q: f"<q>{q}</q>")
    assert messages == [{"role": "user", "content": "<q>Question 1?</q>"}, {"role": "assistant", "content": "x" * 10}]
    assert conv.current(conv.delete(store, store["current"])) is None
