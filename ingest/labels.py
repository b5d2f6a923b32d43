"""Names for papers that have no title: a short label derived from the abstract.

A paper known only by its abstract still needs a name a researcher can recognise in a
citation. The label is, in order of preference: the name the abstract *introduces*
("We present QLoRA, ...", "... we develop Orca, a 13B model", "Holistic Evaluation of
Language Models (HELM)"), else the object of its contribution sentence as a compact
phrase ("We present speculative sampling, an algorithm ..." -> "Speculative sampling"),
else its most repeated content phrase, else its opening words. Pure, cheap and
deterministic: regular expressions over one abstract, no model, no corpus statistics.

>>> derive_label("We present QLoRA, an efficient finetuning approach. QLoRA saves memory.")
'QLoRA'
>>> derive_label("Language models are not well understood. We present Holistic Evaluation of "
...              "Language Models (HELM) to improve the transparency of language models.")
'HELM'
>>> derive_label("We present speculative sampling, an algorithm for accelerating transformer decoding.")
'Speculative sampling'
>>> derive_label("We propose a method for editing images from human instructions: given an image ...")
'Editing images from human instructions'
>>> p = Paper(paper_id="doc-1", title="", abstract="To address this, we develop Orca, a 13B model.")
>>> paper_label(p), is_derived(p)
('Orca', True)
"""

from __future__ import annotations

import re
from collections import Counter

from ingest.records import Paper

MAX_WORDS = 6
_NAME_VERBS = (r"present|introduce|propose|develop|release|build|create|design|construct|curate|collect|train|"
               r"open-source|contribute|offer|describe")
_TOPIC_VERBS = _NAME_VERBS + r"|study|investigate|explore|examine|analy[sz]e|survey|formulate|conduct|apply|test"


def _intro(verbs: str) -> re.Pattern:
    # "we introduce", "this paper presents", "here, we also propose"; the verb may be glued to the
    # next word in scraped pages ("weintroducePythia"), so a capital may follow it directly.
    return re.compile(rf"(?i:\b(?:we|paper|work|study|report|article|here))\s*,?\s*(?i:(?:also|further|first|then)\s+)?"
                      rf"(?i:{verbs})(?:es|s|ed|d)?(?=[\s:\u2014\u2013]|[A-Z])\s*[:\u2014\u2013]?\s*")


_INTRO_NAME, _INTRO_TOPIC = _intro(_NAME_VERBS), _intro(_TOPIC_VERBS)
_NAMED = re.compile(r"\b(?:called|named|dubbed|termed|coined|"
                    r"(?:[Ww]e|which we)\s+(?:call|name|term|dub|refer to as))\s+"
                    r"(?:it\s+|them\s+|as\s+)?")
_OURS = re.compile(r"\b[Oo]ur (?:proposed |new |novel )?(?:model|method|approach|framework|system|dataset|benchmark|"
                   r"algorithm|technique|architecture|agent|tool)s?,?\s+")
_TOKEN = re.compile(r"[A-Za-z0-9][\w\-'/+.]*[\w+]|[A-Za-z0-9]|[,;:()\u2014\u2013\"\u201c\u201d]| - |\.(?=\s|$)")
_ACRONYM = re.compile(r"(?P<long>(?:[A-Za-z][\w\-]*\s+){0,8}[A-Za-z][\w\-]*)"
                      r"\s*\(\s*(?P<name>[A-Za-z][\w\-.+]*[A-Za-z0-9+])\s*\)")
_CLOSERS = (",", ":", "(", ")", ";", "\u2014", "\u2013", " - ", "\"", "\u201d", ".")
_DETERMINERS = {"a", "an", "the", "our", "two", "three", "new", "novel", "simple", "first", "this", "these", "several",
                "some", "its", "their", "here", "thorough", "comprehensive", "systematic", "detailed", "extensive",
                "careful", "empirical", "preliminary", "practical", "principled", "general", "unified", "large-scale",
                "early",
                "initial", "ongoing", "viable", "promising", "effective", "efficient", "novel"}
_GENERIC = {"method", "methods", "approach", "approaches", "framework", "technique", "techniques", "algorithm", "model",
            "models", "system", "systems", "study", "studies", "analysis", "investigation", "way", "ways", "family",
            "suite", "set", "series", "collection", "procedure", "paradigm", "strategy", "pipeline", "tool", "solution",
            "finding", "findings", "work", "paper", "benchmark", "dataset", "evaluation", "survey", "avenue", "guide",
            "look", "number", "range", "variety", "kind", "type", "form", "means", "idea", "notion", "hypothesis",
            "question", "problem", "issue", "effort", "efforts", "contribution", "contributions", "insights",
            "discussion", "report", "overview", "review", "perspective", "account", "case", "lens", "exploration",
            "examination", "check", "debate", "current", "heated", "data-driven", "list", "class", "variant",
            "variants",
            "version", "extension", "generalization", "combination", "mechanism", "recipe", "protocol"}
_FUNCTION = {"of", "for", "and", "in", "with", "to", "the", "on"}
_LEAD_IN = {"of", "for", "on", "into", "about", "to"}  # "a method for X", "a study of X": the topic is X
_BREAK = {"that", "which", "who", "by", "with", "using", "where", "when", "while", "and", "as", "at", "than", "is",
          "are", "was", "were", "can", "could", "will", "would", "has", "have", "it", "we", "they", "whether", "how",
          "what", "based", "via", "without", "through", "because", "so", "but", "or", "in", "from", "on", "to",
          "into", "such", "across", "between", "under", "over", "related", "aimed", "designed", "tailored", "inspired",
          "consisting", "including", "leading", "resulting", "ranging", "allowing", "enabling", "if", "since", "given"}
_KEEP_INSIDE = {"from", "in", "on", "with"}  # prepositions a short phrase may continue through
_STOP = _BREAK | _DETERMINERS | _LEAD_IN | {
    "we", "our", "us", "of", "for", "this", "be", "been", "not", "also", "more", "most", "other", "these", "those",
    "however", "moreover", "furthermore", "thus", "then", "there", "their", "its", "show", "shows", "results", "result",
    "performance", "approach", "method", "paper", "work", "task", "tasks", "use", "used", "new", "well", "many",
    "large", "different", "various", "recent", "existing", "both", "only", "all", "any", "may", "each", "one", "two",
    "up", "propose", "proposed", "present", "introduce", "model", "models", "language", "data", "training"}
_COMMON = {"the", "this", "these", "our", "we", "in", "to", "a", "an", "it", "however", "moreover", "finally", "first",
           "second", "third", "here", "then", "thus", "recent", "large", "specifically", "further", "additionally",
           "instead", "overall", "together", "experiments", "results", "existing", "current", "human", "humans"}
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-']*")


def paper_label(paper: Paper) -> str:
    """The paper's title, or for an untitled paper its derived label (the id when nothing is left)."""
    return paper.title.strip() or derive_label(paper.abstract) or paper.paper_id


def is_derived(paper: Paper) -> bool:
    """True when :func:`paper_label` is derived from the abstract, not a title the source gave."""
    return not paper.title.strip()


def derive_label(abstract: str) -> str:
    """A short name for an untitled paper from its ``abstract`` (see the module docstring); '' for no text."""
    text = _clean(abstract)
    if not text:
        return ""
    return introduced_name(text) or _contribution_phrase(text) or _frequent_phrase(text) or _opening(text)


def _clean(text: str) -> str:
    text = re.sub(r"\S*https?://\S*", " ", text or "")  # links, glued or not, name nothing
    text = re.sub(r"\\['\"`^~=.]\{?([A-Za-z])\}?", r"\1", text)  # LaTeX accents: Pok\'emon -> Pokemon
    # Scraped pages glue words to names ("the resulting modelWizardLM"): split before a coined name.
    text = re.sub(r"\b([a-z]{4,})(?=[A-Z][A-Za-z]*[A-Z0-9])", r"\1 ", text)
    text = re.sub(r"\b(called|named|dubbed|termed)(?=[A-Z])", r"\1 ", text)
    return " ".join(text.split())


def introduced_name(text: str) -> str:
    """The method, model or dataset name the abstract introduces, or ''.

    >>> introduced_name("We introduce Goat, a fine-tuned LLaMA model. Goat beats GPT-4.")
    'Goat'
    >>> introduced_name("Large language models (LLMs) are used widely. They hallucinate.")
    ''
    >>> introduced_name("We proposeFlashAttention, an IO-aware exact attention algorithm.")
    'FlashAttention'
    """
    scores: Counter[str] = Counter()
    for pattern, weight in ((_INTRO_NAME, 3), (_NAMED, 3), (_OURS, 3)):
        for match in pattern.finditer(text):
            name = _name_at(text[match.end():], loose=pattern is _NAMED)
            if name:
                scores[name] += weight
    for name in _defined_acronyms(text):
        scores[name] += 1
    for name in _recurring_names(text):
        scores[name] += 1
    for name in scores:
        scores[name] += min(3, text.count(name) - 1)  # a name the abstract keeps using is the one it introduced
    best = max(scores.items(), key=lambda item: (item[1], -text.find(item[0])), default=("", 0))
    return best[0] if best[1] >= 3 else ""  # weaker evidence loses to the contribution phrase


def _name_at(rest: str, loose: bool = False) -> str:
    """The name opening ``rest``: "Orca, a 13B model", "Visual Decathlon Challenge, a benchmark", "Bidirectional
    Gated SSM (BiGS)" -> "BiGS". ``loose``: after "called"/"we dub", where a plain capitalised phrase is a name."""
    tokens = _TOKEN.findall(rest[:200])
    while tokens and tokens[0].lower() in _DETERMINERS | {"\"", "\u201c"}:
        tokens.pop(0)
    if loose:  # "we call the resulting model WizardLM"
        lead = next((i for i, t in enumerate(tokens[:5]) if t[:1].isupper() or _coined(t)), 0)
        tokens = tokens[lead:]
    run: list[str] = []
    for i, token in enumerate(tokens):
        inner = token in _FUNCTION and run and i + 1 < len(tokens) and tokens[i + 1][:1].isupper()
        if inner:
            run.append(token)  # "Holistic Evaluation of Language Models"
            continue
        dash_join = token in ("\u2013", "\u2014") and run and i + 1 < len(tokens) and tokens[i + 1][:1].isupper()
        if dash_join or (run and run[-1] in ("\u2013", "\u2014")):
            run.append(token)  # "Demonstrate\u2013Search\u2013Predict"
            continue
        if not token[0].isalnum() or not (token[0].isupper() or token[0].isdigit() or _coined(token)) or len(run) > 6:
            break
        run.append(token)
    if not run:
        return ""
    after = tokens[len(run):]
    if len(after) >= 3 and after[0] == "(" and after[2] == ")" and _acronym_of(after[1], " ".join(run)):
        return after[1]  # the run is spelled out; its acronym is the name
    while run and run[-1] in _FUNCTION:
        run.pop()
    if any(t in _FUNCTION for t in run):
        run = run[:run.index(next(t for t in run if t in _FUNCTION))]  # no acronym spelled out: names stop there
    words = " ".join(run).replace(" \u2013 ", "\u2013").replace(" \u2014 ", "\u2014").split()
    closed = not after or after[0].startswith(_CLOSERS)
    if (closed or loose) and len(words) <= 4 and (_coined(words[0]) or _plain_name(" ".join(words))):
        return _unfootnote(" ".join(words)) if len(words) > 1 else _unfootnote(words[0])
    name = _unfootnote(words[0])
    return name if _coined(name) else ""


def _acronym_of(candidate: str, long: str) -> bool:
    capitals = sum(c.isupper() for c in candidate)
    return sum(map(str.isalnum, candidate)) >= 3 and (_coined(candidate) or capitals >= 3) and _expansion(candidate, long)


def _recurring_names(text: str) -> Counter[str]:
    """Coined names used at least three times and never as someone else's example ("such as ChatGPT")."""
    counts = Counter(t for t in re.findall(r"[A-Za-z][\w\-.+]*[\w+]", text)
                     if _coined(t) and len(t) >= 5 and any(c.islower() for c in t))
    examples = set(re.findall(r"(?i:such as|like|e\.g\.,?|including|than|over|and|or)\s+([A-Za-z][\w\-.+]*[\w+])",
                              text))
    return Counter({t: c for t, c in counts.items() if c >= 3 and t not in examples})


def _coined(token: str) -> bool:
    """Looks coined: inner capitals or digits (QLoRA, E5, RecurrentGPT, mT5), not a plural field acronym (LLMs)."""
    first = token.split()[0]
    if len(first) < 2 or not first[0].isalnum() or re.fullmatch(r"[A-Z]+s|[A-Z]{2}|\d+(?:\.\d+)?[A-Za-z]{1,2}", first):
        return False  # "LLMs", "AI", "175B": a field's plural, a two-letter acronym, a quantity
    lower_lead = re.match(r"[a-z]*", first).group(0)
    if len(lower_lead) > 2:  # "thatCoAuthorcan": words glued together, not a name
        return False
    return any(c.isupper() for c in first[1:]) or (any(c.isdigit() for c in first) and any(c.isalpha() for c in first))


def _plain_name(name: str) -> bool:
    """A capitalised word or two that is not a common English word (Orca, Goat, Unnatural Instructions)."""
    words = name.split()
    return all(w[0].isupper() for w in words) and words[0].lower() not in _COMMON and len(words[0]) >= 3


def _unfootnote(name: str) -> str:
    """A footnote marker glued between two copies of a name in scraped pages: "E5111E5" -> "E5"."""
    match = re.fullmatch(r"(.{2,}?)\d{3}\1.*", name)
    return match.group(1) if match else name


def _defined_acronyms(text: str) -> list[str]:
    """Acronyms defined as "Capitalised Long Name (LN)" in a sentence that introduces something."""
    found = []
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if not _INTRO_NAME.search(sentence) and not _NAMED.search(sentence):
            continue
        for match in _ACRONYM.finditer(sentence):
            name = match.group("name")
            letters = sum(c.isupper() for c in name)
            if letters >= 3 and not re.fullmatch(r"[A-Z]+s", name) and _expansion(name, match.group("long")):
                found.append(name)
    return found


def _expansion(acronym: str, long: str) -> bool:
    """Whether capitalised words right before the acronym spell its capitals (HELM <- Holistic Evaluation of
    Language Models; ULMFiT <- Universal Language Model Fine-tuning). Lower-case expansions ("large language
    models (LLM)") name a field's concept, not something the paper introduces."""
    letters = [c.lower() for c in acronym if c.isupper()]
    words = [w for w in re.split(r"[\s\-]+", long) if w and w.lower() not in ("of", "for", "and", "the", "a", "an",
                                                                              "in", "on", "with", "to")]
    words = words[-len(letters) - 1:]
    initials = [w[0].lower() for w in words]
    position = 0
    for letter in letters:
        while position < len(initials) and initials[position] != letter:
            position += 1
        if position == len(initials):
            return False
        position += 1
    used = words[-len(letters):]
    return sum(w[0].isupper() for w in used) * 3 >= len(used) * 2


def _contribution_phrase(text: str) -> str:
    """The object of the first "we present/propose/study ..." as a short phrase, or ''."""
    for match in _INTRO_TOPIC.finditer(text):
        phrase = _object_phrase(text[match.end():])
        if phrase:
            return phrase
    return ""


def _object_phrase(rest: str) -> str:
    words: list[str] = []
    cut = None  # where to cut back to when a phrase continued through a preposition runs too long
    for token in _TOKEN.findall(rest[:300]):
        lower = token.lower().rstrip(".")
        if not words and lower in _DETERMINERS:
            continue
        if lower in _LEAD_IN and words and all(w.lower() in _GENERIC | _DETERMINERS for w in words):
            words = []  # "a method for editing images": the topic starts after "for"
            continue
        inside = lower in _KEEP_INSIDE | {"of"} and 2 <= len(words) <= MAX_WORDS - 2
        glued = re.match(r"(?:that|which|where|while)[a-z]{4,}$", lower)  # "thatsignificantly" in scraped pages
        if not token[0].isalnum() or glued or (lower in _BREAK | _LEAD_IN and not inside):
            break
        if inside and cut is None:
            cut = len(words)
        words.append(token.rstrip("."))
        if len(words) >= MAX_WORDS:
            words = words[:cut] if cut else words
            break
    while words and words[-1].lower() in _DETERMINERS | _LEAD_IN | _KEEP_INSIDE | {"and"}:
        words.pop()
    if not words or all(w.lower() in _GENERIC | _DETERMINERS for w in words):
        return ""
    if len(words) == 1 and not (_coined(words[0]) or words[0][0].isupper()):
        return ""  # one plain word ("current") is no topic
    phrase = " ".join(words)
    return phrase[0].upper() + phrase[1:]


def _frequent_phrase(text: str) -> str:
    """The most repeated two- or three-word content phrase (ties: the earliest), or ''."""
    words = _WORD.findall(text)
    counts: Counter[tuple[str, ...]] = Counter()
    first: dict[tuple[str, ...], int] = {}
    for n in (3, 2):
        for i in range(len(words) - n + 1):
            gram = tuple(w.lower() for w in words[i:i + n])
            if gram[0] in _STOP or gram[-1] in _STOP or any(g in _BREAK for g in gram) or any(
                    len(w) < 3 and not _coined(w) for w in words[i:i + n]):
                continue
            counts[gram] += 1
            first.setdefault(gram, i)
    repeated = [(count * len(gram), -first[gram], gram) for gram, count in counts.items() if count >= 2]
    if not repeated:
        return ""
    gram = max(repeated)[2]
    phrase = " ".join(words[first[gram]:first[gram] + len(gram)])
    return phrase[0].upper() + phrase[1:]


def _opening(text: str) -> str:
    words = text.split()
    return " ".join(words[:MAX_WORDS]).rstrip(",;:") + ("\u2026" if len(words) > MAX_WORDS else "")
