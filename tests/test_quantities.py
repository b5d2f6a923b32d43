"""A number the source states, said of the wrong quantity: real small-model sentences against the sample abstracts.

The flagged claims are sentences Qwen2.5-Coder-0.5B/1.5B and SmolLM2 wrote about the sample papers
(benchmarks/answer_questions_holdout2.jsonl); the support check passed each before chat/quantities.py.
"""

from pathlib import Path

import pytest

from chat.quantities import misplaced
from chat.sentences import split_sentences
from chat.support import judge

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def abstract(start: str) -> str:
    """The sample abstract (one line of a sample file) that begins with ``start``."""
    for path in sorted(SAMPLES.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith(start):
                return line
    raise AssertionError(f"no sample abstract starts with {start!r}")


CODEX = "We introduce Codex, a GPT language model fine-tuned"
CODECOMPOSE = "The rise of large language models (LLMs) has unlocked various applications"
DATASEG = "Observing the close relationship among panoptic"
PERCEPTION = "We propose a novel multimodal video benchmark - the Perception Test"


@pytest.mark.parametrize("claim, source, said_of", [
    ("Codex solves 70.2% of HumanEval problems with one sample.", CODEX, "sample"),
    ("The acceptance rate for Meta's in-house AI code authoring tool was 4.5 million suggestions made by "
     "CodeCompose.", CODECOMPOSE, "rate"),
    ("The mIoU of DaTaSeg on ADE semantic segmentation is 53.5%.", DATASEG, "mIoU"),
])
def test_a_number_said_of_the_wrong_quantity_is_flagged(claim, source, said_of):
    text = abstract(source)
    problems = misplaced(claim, text)
    assert len(problems) == 1 and said_of in problems[0].split("'")[1]
    verdict = judge(claim, split_sentences(text), vectors=None)
    assert not verdict.supported and verdict.problems == problems


@pytest.mark.parametrize("claim, source", [
    ("Codex solves 28.8% of the HumanEval problems, and 70.2% with 100 samples per problem.", CODEX),
    ("With 100 samples per problem, 70.2% of the problems are solved.", CODEX),
    ("CodeCompose made 4.5 million suggestions in 15 days, and 22% of them were accepted.", CODECOMPOSE),
    ("DaTaSeg reaches 54.0 mIoU on ADE semantic segmentation and 53.5 PQ on COCO panoptic.", DATASEG),
    ("Humans reach 91.4% on the Perception Test versus 43.6% for the best video QA model.", PERCEPTION),
    ("The gap between humans and the best model on the Perception Test is large (91.4% vs 43.6%).", PERCEPTION),
])
def test_numbers_said_of_their_own_quantities_pass(claim, source):
    assert misplaced(claim, abstract(source)) == ()


@pytest.mark.parametrize("claim, source, expected", [
    ("We release 2.7B, 13B and 52B models.", "Models of 2.7B, 13B, and 52B parameters were red-teamed.", ()),
    ("Among 10 patients, 8 relapsed.", "Two patients were cured. Among the 10 cases, 8 relapsed.", ()),  # 'two' rules out nothing
    ("The odds ratio was 3.9 in the Dutch sample.", "The odds ratio was 3.9 in 133 Dutch patients.", ()),
    ("It uses one GPU.", "It needs 100 GPUs for pretraining and one GPU for finetuning.", ()),
    ("It uses one GPU for pretraining.", "It needs 100 GPUs for pretraining.",
     ("1 said of 'GPU', which the source gives as 100",)),
])
def test_lists_spelled_numbers_and_kinds(claim, source, expected):
    assert misplaced(claim, source) == expected


def test_no_sentence_of_a_sample_abstract_is_misplaced_against_its_own_abstract():
    """Extractive answers quote abstracts verbatim: the source is read as the claim is, and more, so a
    quoted sentence can never contradict its paper ("… up to 137B parameters and are pre-trained on 1.56T
    words" once flagged 1.56T as said of 'parameters')."""
    abstracts = [line for path in sorted(SAMPLES.glob("*.txt"))
                 for line in path.read_text(encoding="utf-8").splitlines() if len(line) > 200]
    flagged = [(s, p) for a in abstracts for s in split_sentences(a) if (p := misplaced(s, a))]
    assert len(abstracts) > 150 and flagged == []
