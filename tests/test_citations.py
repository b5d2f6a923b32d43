"""Citation markers: parsing every form, repairing invalid ones, checking support against the abstract."""

from __future__ import annotations

import pytest

from chat.attribute import check_citations
from chat.citations import UNSUPPORTED_FLAG, cited_sentences, parse_markers, renumber, strip_markers
from chat.refusal import is_refusal
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


def test_strip_markers_also_drops_the_unsupported_flag():
    assert strip_markers("QLoRA saves memory [1, 2]. It works [3].") == "QLoRA saves memory. It works."
    assert strip_markers(f"Cats fly {UNSUPPORTED_FLAG}.") == "Cats fly."


@pytest.mark.parametrize("sentence", [
    "The indexed papers do not answer this question.",
    "Sorry, the provided sources don't address that.",
    "Unfortunately, the given abstracts do not mention how much memory is saved.",
    "There is no information about the Adam optimizer in the sources.",
    "I'm sorry, but I cannot determine that from the context.",
    "The sources do not answer this.",
    "This is not mentioned in the provided papers.",
])
def test_refusals_are_recognised_in_any_wording(sentence):
    assert is_refusal(sentence)


@pytest.mark.parametrize("sentence", [
    "QLoRA reduces memory usage [1].",
    "QLoRA does not degrade 16-bit finetuning performance [1].",
    "Chain-of-thought prompting is not limited to arithmetic tasks.",
    "No, full finetuning is not needed: LoRA matches it [2].",
])
def test_findings_with_a_negation_are_not_refusals(sentence):
    assert not is_refusal(sentence)


@pytest.fixture(scope="module")
def vectors(embedder):
    return SentenceVectors(embedder)


def test_citations_are_kept_added_replaced_or_flagged_by_code(vectors):
    answer = ("QLoRA can finetune a 65B model on one 48GB GPU [1]. "  # right source: kept
              "Goat beats GPT-4 at arithmetic tasks. "  # no marker: the supporting source is attached
              "A draft model proposes continuations for the large model [1]. "  # wrong source: replaced
              "QLoRA was trained on images of cats [1].")  # nothing supports it: flagged, no citation
    checked = check_citations(answer, [QLORA, GOAT, SPEC], vectors)
    assert [s.action for s in checked.sentences] == ["kept", "added", "replaced", "flagged"]
    assert checked.text == ("QLoRA can finetune a 65B model on one 48GB GPU [1]. Goat beats GPT-4 at arithmetic tasks "
                            "[2]. A draft model proposes continuations for the large model [3]. QLoRA was trained on "
                            f"images of cats {UNSUPPORTED_FLAG}.")
    assert checked.order == (1, 2, 3) and checked.unsupported == 1 and checked.usable
    assert checked.supporting[1].startswith("We present QLoRA") and checked.supporting[2].startswith("We introduce Goat")


@pytest.mark.parametrize("claim, problem", [
    ("QLoRA cannot finetune a 65B parameter model on a single 48GB GPU [1].", "negation"),
    ("QLoRA finetunes a 65B parameter model on a single 24GB GPU [1].", "number 24"),
    ("QLoRA-X finetunes a 65B parameter model on a single 48GB GPU [1].", "name QLoRA-X"),
    ("Guanaco reaches 99.3% of ChatGPT on the MMLU benchmark [1].", "name MMLU"),
    ("Goat significantly underperforms GPT-4 on a range of arithmetic tasks [1].", "underperform"),
])
def test_contradictions_similarity_misses_are_flagged(vectors, claim, problem):
    checked = check_citations(claim, [QLORA, GOAT], vectors)
    assert [s.action for s in checked.sentences] == ["flagged"] and not checked.usable
    assert any(problem in p for p in checked.sentences[0].problems), checked.sentences[0].problems


E5 = ("This paper presents E5, a family of state-of-the-art text embeddings that transfer well to a wide range of "
      "tasks. For zero-shot settings, E5 is the first model that outperforms the strong BM25 baseline on the BEIR "
      "retrieval benchmark without using any labeled data.")
CODECOMPOSE = "Qualitative feedback indicates an overwhelming 91.5% positive reception for CodeCompose."


@pytest.mark.parametrize("claim, supported", [
    # the claim shares the source's "without labeled data" and adds "does not outperform": a shared
    # negation must not hide the added one
    ("No, E5 does not outperform BM25 on BEIR without labeled data [1].", False),
    ("E5 does not outperform the BM25 baseline on BEIR without using any labeled data [1].", False),
    ("E5 outperforms the BM25 baseline on BEIR without using any labeled data [1].", True),
    ("Yes, E5 outperforms BM25 on BEIR with no labeled data [1].", True),
])
def test_a_negation_the_claim_adds_is_not_hidden_by_one_it_shares(vectors, claim, supported):
    checked = check_citations(claim, [E5], vectors, question="Does E5 beat BM25 without labeled data?")
    assert checked.sentences[0].supported is supported, checked.sentences[0].problems


@pytest.mark.parametrize("claim, supported", [
    ("Qualitative feedback on CodeCompose from developers was mostly negative [1].", False),
    ("Developers' qualitative feedback on CodeCompose was overwhelmingly positive [1].", True),
])
def test_positive_and_negative_are_opposites(vectors, claim, supported):
    assert check_citations(claim, [CODECOMPOSE], vectors).sentences[0].supported is supported


RADAR = ("While existing works show that current AI-text detectors are not robust to LLM-based paraphrasing, this "
         "paper aims to bridge this gap by proposing a new framework called RADAR, which jointly trains a robust "
         "AI-text detector via adversarial learning.")
POLYCODER = ("Although Codex itself is not open-source, we find that existing open-source models do achieve close "
             "results in some programming languages, although targeted mainly for natural language modeling.")


@pytest.mark.parametrize("claim, source, supported", [
    # about the main clause: what the concession grants about others does not negate it
    ("RADAR jointly trains an AI-text detector that is robust to LLM-based paraphrasing [1].", RADAR, True),
    ("Existing open-source models achieve results close to Codex in some programming languages [1].", POLYCODER, True),
    # about what the concession negates: still a contradiction
    ("Current AI-text detectors are robust to LLM-based paraphrasing [1].", RADAR, False),
    ("Codex is open-source [1].", POLYCODER, False),
])
def test_a_conceded_negation_does_not_negate_the_main_clause(vectors, claim, source, supported):
    checked = check_citations(claim, [source], vectors)
    assert checked.sentences[0].supported is supported, checked.sentences[0].problems


MISTAKES = "Crucially, we find that ChatGPT and GPT-4 can identify 67% and 87% of their own mistakes, respectively."


@pytest.mark.parametrize("claim, supported", [
    ("GPT-4 identifies 87% of its own mistakes [1].", True),
    ("ChatGPT identifies 67% of its own mistakes and GPT-4 87% [1].", True),
    ("GPT-4 identifies 67% of its own mistakes [1].", False),  # ChatGPT's figure
    ("ChatGPT and GPT-4 identify 67% of their own mistakes [1].", False),  # ChatGPT's alone
    ("GPT-4 identifies 87% of its own mistakes, while ChatGPT identifies 67% [1].", True),
    ("GPT-4 identifies 67% of its own mistakes, while ChatGPT identifies 87% [1].", False),  # each on the other
])
def test_a_number_given_respectively_belongs_to_its_own_thing(vectors, claim, supported):
    checked = check_citations(claim, [MISTAKES], vectors)
    assert checked.sentences[0].supported is supported, checked.sentences[0].problems


FLAN = ("We take a 137B parameter pretrained language model and instruction tune it on over 60 NLP datasets. "
        "FLAN surpasses zero-shot 175B GPT-3 on 20 of 25 datasets that we evaluate.")


@pytest.mark.parametrize("claim, supported", [
    ("FLAN instruction tunes a 137B parameter pretrained language model [1].", True),
    ("FLAN surpasses zero-shot 175B GPT-3 on 20 of 25 datasets [1].", True),
    ("FLAN beats a 175B model on 20 of 25 datasets [1].", True),  # a comparison may leave the other model unnamed
    ("The base model of FLAN has 175B parameters [1].", False),  # GPT-3's size
    ("FLAN is a 175 billion parameter model tuned on over 60 NLP datasets [1].", False),
])
def test_a_model_size_written_before_a_name_is_that_models(vectors, claim, supported):
    checked = check_citations(claim, [FLAN], vectors)
    assert checked.sentences[0].supported is supported, checked.sentences[0].problems


@pytest.mark.parametrize("name, found", [("GANs", False), ("RADAR", True), ("GPT-J", True), ("LLaMA", True),
                                         ("Pythia", True), ("GPT-3", False)])
def test_a_short_name_is_found_only_as_a_word_of_its_own(vectors, name, found):
    """"GANs" squashed into "proposing a new" is no mention of GANs."""
    claim = f"RADAR is evaluated with {name} models [1]."
    checked = check_citations(claim, [RADAR + " Evaluated with Pythia, GPT-J and LLaMA."], vectors)
    assert (f"name {name} not in source" not in checked.sentences[0].problems) is found


def test_moreover_is_not_more(vectors):
    source = ("Moreover, InstructGPT models show improvements in truthfulness and reductions in toxic output "
              "generation while having minimal performance regressions on public NLP datasets.")
    checked = check_citations("InstructGPT models generate more toxic output than GPT-3 [1].", [source], vectors)
    assert any("'more' where the source says" in p for p in checked.sentences[0].problems), checked.sentences[0]


def test_a_reversed_finding_is_flagged_when_the_source_says_both_directions(vectors):
    knn = ("Digging deeper, we find that interpolating with a retrieval distribution actually increases perplexity "
           "compared to a baseline Transformer LM for the majority of tokens in the WikiText-103 test set, even though "
           "the overall perplexity is lower due to a smaller number of tokens for which perplexity dramatically "
           "decreases after interpolation.")  # a sample abstract's sentence: both directions, on different things
    reversed_ = check_citations("Interpolating with a retrieval distribution lowers perplexity for the majority of "
                                "tokens in WikiText-103 [1].", [knn], vectors)
    assert any("'lowers perplexity' where the source says 'increases perplexity'" in p
               for p in reversed_.sentences[0].problems), reversed_.sentences[0].problems
    right = check_citations("Interpolating with a retrieval distribution increases perplexity for the majority of "
                            "tokens in WikiText-103 [1].", [knn], vectors)
    assert right.sentences[0].action == "kept" and right.usable


def test_a_refusal_inside_a_supported_answer_is_dropped_not_promoted(vectors):
    checked = check_citations("QLoRA finetunes a 65B model on a single 48GB GPU [1]. However, the sources do not "
                              "mention how long training takes.", [QLORA], vectors)
    assert checked.text == "QLoRA finetunes a 65B model on a single 48GB GPU [1]." and checked.refusals == 1
    assert checked.usable


@pytest.mark.parametrize("reply", ["[1, 2]", "[1]. [2].", "The sources do not answer this.", "",
                                   "Once upon a time there was a little dog who liked to play in the park."])
def test_replies_with_nothing_the_sources_support_are_not_answers(vectors, reply):
    assert not check_citations(reply, [QLORA, GOAT], vectors).usable


def test_checker_without_vectors_uses_word_overlap():
    checked = check_citations("Goat outperforms GPT-4 on arithmetic tasks [1].", [GOAT], None)
    assert checked.sentences[0].supported and checked.sentences[0].overlap >= 0.75


def test_checker_keeps_line_layout(vectors):
    checked = check_citations("Findings:\n- QLoRA saves memory with 4-bit NormalFloat and paged optimizers [4].\n"
                              "- Goat is fine-tuned on a synthetically generated dataset [2].", [QLORA, GOAT], vectors)
    assert checked.text == ("Findings:\n- QLoRA saves memory with 4-bit NormalFloat and paged optimizers [1].\n"
                            "- Goat is fine-tuned on a synthetically generated dataset [2].")
    assert checked.removed == 1 and [s.action for s in checked.sentences] == ["added", "kept"]


@pytest.mark.parametrize("claim, question, supported", [
    # the claim repeats the question's own negation: the question's premise, not the claim's
    ("TWIST trains spoken language models that see no text by warm-starting from a textual language model.",
     "How does TWIST train spoken language models that see no text?", True),
    # the source negates what the question negates; the claim quotes it: supported
    ("Perceiver IO reaches state-of-the-art optical flow with no explicit mechanisms for multiscale correspondence.",
     "What does Perceiver IO reach without explicit multiscale mechanisms?", True),
    # the question's negation does not excuse a claim that drops the source's negation
    ("Perceiver IO needs explicit mechanisms for multiscale correspondence to reach state-of-the-art optical flow.",
     "What does Perceiver IO reach without explicit multiscale mechanisms?", False),
])
def test_a_negation_from_the_question_is_neutral(vectors, claim, question, supported):
    sources = ["We propose TWIST, a method for training SpeechLMs using a warm-start from a pretrained textual "
               "language model.",
               "Perceiver IO achieves state-of-the-art performance on Sintel optical flow estimation with no explicit "
               "mechanisms for multiscale correspondence."]
    checked = check_citations(claim, sources, vectors, question=question)
    assert checked.sentences[0].supported is supported, checked.sentences[0].problems


EVAPORATE = ("To improve quality while maintaining low cost, we propose an extended code synthesis implementation,"
             "Evaporate-Code+, which achieves better quality than direct extraction. Our key insight is to generate "
             "many candidate functions and ensemble their extractions using weak supervision.Evaporate-Code+not only "
             "outperforms the state-of-the art systems, but does so using asublinearpass over the documents with the "
             "LLM.")  # as scraped in data/samples (glued words included)


@pytest.mark.parametrize("second, supported", [
    ("This outperforms the state-of-the-art systems [1].", True),  # "This" is Evaporate-Code+, which the source says
    ("It uses weak supervision to ensemble candidate functions [1].", True),
    ("This outperforms GPT-4 by 40 points [1].", False),  # the subject resolved does not let a new claim through
])
def test_a_sentence_opening_with_a_pronoun_is_judged_with_its_subject(vectors, second, supported):
    text = "Evaporate-Code+ synthesizes code that extracts values from documents [1]. " + second
    checked = check_citations(text, [EVAPORATE], vectors)
    assert checked.sentences[1].supported is supported
    assert checked.text.split(". ", 1)[1].startswith(second.split()[0])  # the answer keeps the model's words


@pytest.mark.parametrize("claim, question, echo", [
    ("The weaknesses showed up when ChatGPT's reasoning was audited.", "What weaknesses showed up when ChatGPT's "
     "reasoning was audited?", True),
    ("ChatGPT failed at type matchups when its reasoning was audited.", "What weaknesses showed up when ChatGPT's "
     "reasoning was audited?", False),
    ("QLoRA does not finetune a 65B model.", "How does QLoRA finetune a 65B model?", False),  # a negation says something
    ("QLoRA finetunes a 65B model on one GPU.", "Can QLoRA finetune a 65B model on one GPU?", False),  # yes/no: the answer
])
def test_a_claim_that_only_restates_the_question_does_not_make_an_answer(vectors, claim, question, echo):
    checked = check_citations(claim + " [1]", [QLORA + " ChatGPT's reasoning was audited."], vectors,
                              question=question)
    assert checked.sentences[0].echo is echo
    assert checked.echoes_only is echo and (not checked.usable if echo else True)


def test_an_unsupported_restatement_of_the_question_is_dropped_not_flagged(vectors):
    """"QLoRA is trained differently from ordinary finetuning" for "How is QLoRA trained differently from ordinary
    finetuning?" claims nothing: no source supports it, and flagging it would make a right answer look wrong."""
    question = "How is QLoRA trained differently from ordinary finetuning?"
    text = ("QLoRA is trained differently from ordinary finetuning. It introduces 4-bit NormalFloat, double "
            "quantization and paged optimizers to save memory [1].")
    checked = check_citations(text, [QLORA], vectors, question=question)
    assert checked.restated == 1 and checked.usable and UNSUPPORTED_FLAG not in checked.text
    # "It" loses the sentence that named its subject, so it takes that name
    assert checked.text.startswith("QLoRA introduces 4-bit NormalFloat")
    assert [s.action for s in checked.sentences] == ["kept"]
    alone = check_citations("QLoRA is trained differently from ordinary finetuning.", [QLORA], vectors,
                            question=question)
    assert alone.restated == 1 and not alone.sentences and not alone.usable


def test_a_restating_clause_its_sentence_goes_on_from_stays_as_its_subject(vectors):
    """A marker inside the sentence cuts it into clauses: "Finetuning a 65B model with QLoRA [1]" restates the
    question, but dropping it would leave "uses 4-bit NormalFloat …" without a subject."""
    question = "How is a 65B model finetuned with QLoRA?"
    text = "Finetuning a 65B model with QLoRA [1] uses 4-bit NormalFloat, double quantization and paged optimizers [1]."
    checked = check_citations(text, [QLORA], vectors, question=question)
    assert checked.restated == 0 and checked.text.startswith("Finetuning a 65B model with QLoRA uses 4-bit")
    assert UNSUPPORTED_FLAG not in checked.text and checked.usable


OPT_FINDING = ("Our findings reveal that having explanations in the fewshot exemplar has no significant impact on the "
               "model's performance when the model is finetuned, while positively affecting the non-finetuned "
               "counterpart. Moreover, we observe a slight yet consistent increase in classification accuracy as we "
               "incorporate explanations during prompting and finetuning, respectively.")


@pytest.mark.parametrize("claim, supported", [
    ("Yes, explanations in few-shot exemplars help models that have been finetuned [1].", False),
    ("Yes, incorporating explanations during prompting and finetuning slightly increases accuracy [1].", True),
])
def test_a_yes_the_source_negates_further_along_its_clause_is_flagged(vectors, claim, supported):
    """"No significant impact … when the model is finetuned" answers no, though its first words are not the claim's."""
    checked = check_citations(claim, [OPT_FINDING], vectors)
    assert checked.sentences[0].supported is supported, checked.sentences[0].problems
