"""Citation markers: parsing every form, repairing invalid ones, checking support against the abstract."""

from __future__ import annotations

import pytest

from chat.citations import (CheckConfig, check_citations, cited_sentences, is_abstention, parse_markers, renumber,
                            strip_markers)
from chat.sentences import SentenceVectors

QLORA = ("We present QLoRA, an efficient finetuning approach that reduces memory usage enough to finetune a 65B "
         "parameter model on a single 48GB GPU. QLoRA introduces 4-bit NormalFloat, double quantization and paged "
         "optimizers to save memory. Our best model family, Guanaco, reaches 99.3% of ChatGPT on the Vicuna benchmark.")
GOAT = ("We introduce Goat, a fine-tuned LLaMA model that significantly outperforms GPT-4 on a range of arithmetic "
        "tasks. Goat is fine-tuned on a synthetically generated dataset.")
SPEC = ("We present speculative sampling, an algorithm for accelerating transformer decoding by generating several "
        "tokens per call of the large model. A faster draft model proposes continuations.")


@pytest.mark.parametrize("text, numbers", [
    ("claim [1].", [(1,)]),
    ("claim [1, 3].", [(1, 3)]),
    ("claim [1,3].", [(1, 3)]),
    ("claim [1-3].", [(1, 2, 3)]),
    ("claim [1\u20133].", [(1, 2, 3)]),
    ("claim [1][2].", [(1, 2)]),
    ("claim [1] [2].", [(1, 2)]),
    ("claim [ 2 ].", [(2,)]),
    ("claim [1; 4].", [(1, 4)]),
    ("claim [1 and 2].", [(1, 2)]),
    ("claim [Source 2].", [(2,)]),
    ("claim [sources 1, 2].", [(1, 2)]),
    ("a [1]. b [2, 2].", [(1,), (2,)]),
    ("no markers (see Fig. 2) and [a] or [0.5].", []),
])
def test_every_marker_form_is_parsed(text, numbers):
    assert [m.numbers for m in parse_markers(text)] == numbers


def test_markers_outside_the_sources_are_removed_and_counted():
    text, order, total, removed = renumber("A [1]. B [7]. C [2, 9]. D [0].", n_sources=3)
    assert text == "A [1]. B. C [2]. D."
    assert (order, total, removed) == ((1, 2), 5, 3)


def test_numbers_follow_the_order_of_first_citation():
    text, order, _, removed = renumber("Goat wins [3]. QLoRA saves memory [1][3].", n_sources=3)
    assert text == "Goat wins [1]. QLoRA saves memory [1, 2]."
    assert order == (3, 1) and removed == 0


def test_a_huge_range_is_not_expanded():
    text, order, total, removed = renumber("x [1-300].", n_sources=5)
    assert (text, order, total, removed) == ("x [1].", (1,), 2, 1)


def test_markers_after_the_full_stop_belong_to_the_sentence_before():
    text, *_ = renumber("QLoRA saves memory. [1] Goat does arithmetic.", n_sources=2)
    assert text == "QLoRA saves memory [1]. Goat does arithmetic."
    assert cited_sentences("One claim. [2] Another claim [1].") == [("One claim. [2]", (2,)), ("Another claim [1].", (1,))]


def test_strip_markers_and_abstention_phrase():
    assert strip_markers("QLoRA saves memory [1, 2]. It works [3].") == "QLoRA saves memory. It works."
    assert is_abstention("The indexed papers do not answer this question.")
    assert is_abstention("Sorry, the provided sources don't address that.")
    assert not is_abstention("QLoRA reduces memory [1].")


@pytest.fixture(scope="module")
def vectors(embedder):
    return SentenceVectors(embedder)


def test_supported_and_unsupported_claims_are_told_apart(vectors):
    answer = ("QLoRA can finetune a 65B model on one 48GB GPU [1]. "
              "Goat beats GPT-4 at arithmetic [2]. "
              "QLoRA was trained on images of cats [1]. "
              "Speculative sampling uses a draft model [2].")
    checked = check_citations(answer, [QLORA, GOAT, SPEC], vectors)
    assert [s.supported for s in checked.sentences] == [True, True, False, False]
    assert checked.unsupported == 2 and checked.removed == 0
    assert checked.supporting[1].startswith("We present QLoRA")
    assert checked.supporting[2].startswith("We introduce Goat")
    assert checked.supported == {1: False, 2: False}  # each source is cited once without support


def test_uncited_claims_are_counted(vectors):
    checked = check_citations("QLoRA finetunes a 65B model on one GPU. Goat beats GPT-4 on arithmetic tasks [2].",
                              [QLORA, GOAT], vectors)
    assert checked.uncited == 1 and checked.order == (2,)
    assert checked.text.endswith("arithmetic tasks [1].")


def test_checker_without_vectors_uses_word_overlap():
    checked = check_citations("Goat outperforms GPT-4 on arithmetic tasks [1].", [GOAT], None, CheckConfig())
    assert checked.sentences[0].supported and checked.sentences[0].overlap >= 0.6


def test_checker_keeps_line_layout(vectors):
    checked = check_citations("Findings:\n- QLoRA saves memory [4].\n- Goat does arithmetic [2].", [QLORA, GOAT], vectors)
    assert checked.text == "Findings:\n- QLoRA saves memory.\n- Goat does arithmetic [1]."
    assert checked.removed == 1
