"""ingest/labels.py over the real sample abstracts: every untitled paper gets a short name taken from its
own text; where a titled paper's title starts with a name ("QLoRA: ..."), the label finds that name."""

from __future__ import annotations

import re

import pytest

from ingest.labels import derive_label, is_derived, paper_label
from ingest.records import Paper
from ingest.sources import read_source
from tests.conftest import SEEDS

PAPERS = list({p.fingerprint: p for p in read_source(str(SEEDS)) if isinstance(p, Paper)}.values())
UNTITLED = [p for p in PAPERS if not p.title]
NAMED_TITLES = [p for p in PAPERS if re.match(r"[^\s:]+(?: [^\s:]+)?:", p.title)]  # "QLoRA: Efficient ..."


def squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@pytest.mark.parametrize("paper", UNTITLED, ids=[p.paper_id for p in UNTITLED])
def test_every_untitled_sample_gets_a_short_label_from_its_own_text(paper):
    label = derive_label(paper.abstract)
    assert label and label == derive_label(paper.abstract)  # deterministic
    words = label.rstrip("\u2026").split()
    assert 1 <= len(words) <= 6 and len(label) <= 70, label
    for word in words:  # nothing invented: every word occurs in the abstract
        assert squash(word) in squash(paper.abstract), (word, label)
    assert paper_label(paper) == label and is_derived(paper)


def test_most_untitled_samples_are_named_not_just_quoted():
    opening = [p.paper_id for p in UNTITLED if derive_label(p.abstract).endswith("\u2026")]
    assert len(UNTITLED) >= 120 and len(opening) <= len(UNTITLED) // 10, opening


def test_labels_find_the_name_a_titled_sample_is_known_by():
    found = [p for p in NAMED_TITLES
             if squash(p.title.split(":")[0]) in squash(derive_label(p.abstract))
             or squash(derive_label(p.abstract)) in squash(p.title)]
    assert len(NAMED_TITLES) >= 20 and len(found) >= 0.55 * len(NAMED_TITLES), (len(found), len(NAMED_TITLES))


@pytest.mark.parametrize("abstract, label", [
    ("We present QLoRA, an efficient finetuning approach. QLoRA backpropagates through a 4-bit model.", "QLoRA"),
    ("Existing work is costly. To address this, we develop Orca, a 13-billion parameter model. Orca learns.", "Orca"),
    ("We present Holistic Evaluation of Language Models (HELM) to improve transparency. HELM covers 42 "
     "scenarios.", "HELM"),
    ("Large language models (LLMs) are popular. We present speculative sampling, an algorithm for faster "
     "decoding.", "Speculative sampling"),
    ("Transformers are slow. We proposeFlashAttention, an IO-aware exact attention algorithm.", "FlashAttention"),
    ("Data is scarce. We call the resulting modelWizardLM. It follows instructions. WizardLM is strong.", "WizardLM"),
    ("", ""),
])
def test_worked_examples(abstract, label):
    assert derive_label(abstract) == label


def test_a_title_is_never_replaced():
    paper = Paper(paper_id="2305.14314", title="QLoRA: Efficient Finetuning", abstract="We present Guanaco, a model.")
    assert paper_label(paper) == "QLoRA: Efficient Finetuning" and not is_derived(paper)
