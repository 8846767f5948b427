"""Reading a question against a KB, before any program is built: the entity names it mentions,
the KB labels it writes out or paraphrases (similarity of MiniLM embeddings of its word spans to
the KB's labels, both cached per process), its delexicalized form for the sketch parser, its
numbers and comparison cues, and how well a finished program's labels explain its words."""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass, field

import numpy as np
from django.core.cache import cache

from apps.inference.embeddings import EMBEDDING_DIM, embed, minilm_path
from apps.kbqa import cues
from apps.kbqa.ontology import Ontology

logger = logging.getLogger(__name__)

MIN_SIMILARITY = 0.05
COVERAGE_WEIGHT = 1.0
MIN_COVER = 0.1

STOPWORDS = {
    "a",
    "an",
    "the",
    "of",
    "is",
    "are",
    "was",
    "were",
    "what",
    "which",
    "who",
    "whom",
    "whose",
    "how",
    "many",
    "much",
    "does",
    "do",
    "did",
    "have",
    "has",
    "with",
    "and",
    "or",
    "to",
    "in",
    "on",
    "for",
    "by",
    "as",
    "its",
    "their",
    "it",
    "that",
    "this",
    "than",
    "there",
    "me",
    "tell",
    "give",
    "name",
    "list",
    "count",
    "number",
    "among",
    "all",
    "between",
}
GREATER_CUES = ("greater", "more", "larger", "higher", "above", "over", "exceed", "bigger", "longer", "heavier")
LESS_CUES = ("less", "smaller", "lower", "below", "under", "fewer", "shorter", "lighter")
LARGEST_CUES = ("largest", "highest", "greatest", "biggest", "most", "maximum", "longest", "heaviest")
SMALLEST_CUES = ("smallest", "lowest", "least", "fewest", "minimum", "shortest", "lightest")
CUE_WORDS = set(GREATER_CUES + LESS_CUES + LARGEST_CUES + SMALLEST_CUES) | {"before", "after", "since", "when"}
NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\w])")
WORD = re.compile(r"[\w'\-/.]+", re.UNICODE)


# ---------------------------------------------------------------------------------------------
# What the question mentions


@dataclass
class Mention:
    entity_name: str
    start: int
    end: int
    score: float


@dataclass
class QuestionContext:
    question: str
    onto: Ontology
    mentions: list[Mention]
    masked: str  # the question with entity mentions blanked out
    spans: list[str]
    span_embeddings: np.ndarray
    span_index: dict[str, int]
    label_scores: dict[str, float] = field(default_factory=dict)
    exact: dict[str, float] | None = None
    sketch_embedding: np.ndarray | None = None  # the delexicalized question's, for the sketch parser
    string_values: dict[str, list[str]] = field(default_factory=dict)  # key -> values written out
    asked_members: set[str] | None = None  # the entities of the class "which <class>" asks for

    def similarity(self, label: str) -> float:
        """How well a KB label (concept, relation, key) matches some span of the question.
        A label written out in full scores 1; one found only inside a longer label that is
        also written out ("city" in "capital city") scores 0.9."""
        if label not in self.label_scores:
            if self.exact is None:  # once per question: it scans every label of the KB
                self.exact = exact_labels(self.masked, self.onto)
            exact = self.exact
            if label in exact:
                score = exact[label]
            elif not self.spans:
                score = 0.0
            else:
                vector = label_embedding(self.onto, label)
                score = float(np.max(self.span_embeddings @ vector))
            self.label_scores[label] = max(score, MIN_SIMILARITY)
        return self.label_scores[label]


def all_labels(onto: Ontology) -> dict[str, str]:
    """Every KB label with its kind; a label that is several kinds keeps the first."""
    labels: dict[str, str] = {}
    for kind, names in (
        ("attribute", onto.attribute_keys),
        ("relation", onto.relations),
        ("concept", onto.concepts.values()),
        ("qualifier", onto.qualifier_keys),
    ):
        for name in names:
            labels.setdefault(name, kind)
    return labels


def label_matches(text: str, onto: Ontology) -> list[tuple[int, int, str]]:
    """(start, end, label) for labels written out in the text, plural concepts included."""
    lowered = text.casefold()
    concepts = set(onto.concepts.values())
    matches = []
    compact = re.sub(r"[\s-]", "", lowered)
    for label in all_labels(onto):
        folded = label.casefold()
        is_concept = label in concepts
        if re.sub(r"[\s-]", "", folded.rstrip("y")) not in compact:
            continue
        plural = r"(?:s|es)?" if is_concept else ""
        # "time zone" also matches "timezone" and "time-zone".
        body = r"[\s-]?".join(re.escape(word) for word in folded.split())
        pattern = rf"(?<!\w){body}{plural}(?!\w)"
        if is_concept and folded.endswith("y"):
            stem = r"[\s-]?".join(re.escape(word) for word in folded[:-1].split())
            pattern = rf"(?<!\w)(?:{body}|{stem}ies)(?!\w)"
        matches.extend((m.start(), m.end(), label) for m in re.finditer(pattern, lowered))
    return matches


def exact_labels(text: str, onto: Ontology) -> dict[str, float]:
    matches = label_matches(text, onto)
    scores = {}
    for start, end, label in matches:
        inside = any(s <= start and end <= e and (e - s) > (end - start) for s, e, _ in matches)
        scores[label] = max(scores.get(label, 0.0), 0.9 if inside else 1.0)
    return scores


CONCEPT_CONTEXT = re.compile(r"(?:\b(?:which|what|many|all|every|among|the number of))\s+(?:the\s+)?$", re.IGNORECASE)
PLACEHOLDERS = {"attribute": "property", "relation": "relation", "concept": "category", "qualifier": "detail"}


def read_as_concept(text: str, label: str) -> bool:
    """Whether every place a label is written reads as a class ("which countries", "how many
    cities", a plural), not as a relation or key ("the country of X")."""
    lowered = text.casefold()
    folded = label.casefold()
    places = list(re.finditer(rf"(?<!\w){re.escape(folded)}(s|es)?(?!\w)", lowered))
    if folded.endswith("y"):
        places += list(re.finditer(rf"(?<!\w){re.escape(folded[:-1])}(ies)(?!\w)", lowered))
    return bool(places) and all(m.group(1) or CONCEPT_CONTEXT.search(text[: m.start()]) for m in places)


def delexicalize(question: str, onto: Ontology, mentions: list[Mention] | None = None) -> str:
    """The question with KB-specific words replaced by their kind ("What is the property of
    something?"), so that the sketch parser learns question structure, not one KB's vocabulary;
    this is what lets a parser trained on one KB read questions about another."""
    mentions = find_mentions(question, onto) if mentions is None else mentions
    spans = [(m.start, m.end, "something") for m in mentions if m.start >= 0]
    kinds = all_labels(onto)
    concepts = set(onto.concepts.values())
    for start, end, label in sorted(label_matches(question, onto), key=lambda m: -(m[1] - m[0])):
        if not any(start < e and s < end for s, e, _ in spans):
            kind = kinds[label]
            if label in concepts and CONCEPT_CONTEXT.search(question[:start]):
                kind = "concept"  # "which country ..." names a class even where "country" is also a relation
            spans.append((start, end, PLACEHOLDERS[kind]))
    years = {str(year) for year in cues.years_in(question)}
    for match in NUMBER.finditer(question):
        if not any(match.start() < e and s < match.end() for s, e, _ in spans):
            # A year reads as a time ("in 1999"), not an amount: it keeps a year's shape.
            spans.append((match.start(), match.end(), "1990" if match.group() in years else "5"))
    text = question
    for start, end, word in sorted(spans, key=lambda span: -span[0]):
        text = text[:start] + word + text[end:]
    return text


_label_cache: dict[str, np.ndarray] = {}
LABEL_CACHE_SECONDS = 30 * 24 * 3600


def label_embedding(onto: Ontology, label: str) -> np.ndarray:
    """A label's embedding; the first call for a KB embeds all its labels in one batch."""
    if label not in _label_cache:
        warm_labels(onto)
        if label not in _label_cache:  # a value or key the KB's label list does not hold
            _label_cache[label] = embed([label])[0]
    return _label_cache[label]


def warm_labels(onto: Ontology) -> None:
    """Every label of the KB embedded once per process, and once per label set across processes:
    the matrix is kept in Django's cache (Redis) under a hash of the labels and the encoder, so a
    fresh worker, or one that indexed another KB, does not encode a large KB's labels again. The
    key changes with the labels themselves, so an edited KB cannot read stale vectors."""
    labels = sorted(all_labels(onto))
    missing = [name for name in labels if name not in _label_cache]
    if not missing:
        return
    key = "kbqa:labels:" + hashlib.sha256("\n".join([minilm_path(), *labels]).encode()).hexdigest()
    try:
        stored = cache.get(key)
    except Exception:  # noqa: BLE001  (a cache outage costs one encoder batch, never the question)
        logger.warning("KBQA label cache unreadable", exc_info=True)
        stored = None
    if isinstance(stored, bytes) and len(stored) == len(labels) * EMBEDDING_DIM * 4:
        matrix = np.frombuffer(stored, dtype=np.float32).reshape(len(labels), EMBEDDING_DIM)
        _label_cache.update(zip(labels, matrix, strict=True))
        return
    _label_cache.update(zip(missing, embed(missing), strict=True))
    matrix = np.stack([_label_cache[name] for name in labels]).astype(np.float32)
    try:
        cache.set(key, matrix.tobytes(), LABEL_CACHE_SECONDS)
    except Exception:  # noqa: BLE001
        logger.warning("KBQA label cache unwritable", exc_info=True)


def find_mentions(question: str, onto: Ontology) -> list[Mention]:
    """Entity names that occur in the question (case-insensitive, on word boundaries), longest
    first; a name inside a longer mention is dropped. When nothing matches, names sharing a
    rare word with the question are ranked by string similarity."""
    lowered = question.casefold()
    found: list[Mention] = []
    for name, lowered_name in onto.names_casefold():
        if len(lowered_name) < 2 or lowered_name not in lowered:
            continue
        for match in re.finditer(rf"(?<!\w){re.escape(lowered_name)}(?!\w)", lowered):
            exact = question[match.start() : match.end()] == name
            if (lowered_name in STOPWORDS or lowered_name in CUE_WORDS) and not exact:
                continue
            found.append(Mention(name, match.start(), match.end(), 1.0 if exact else 0.85))
    found.sort(key=lambda m: (-(m.end - m.start), m.start))
    kept: list[Mention] = []
    for mention in found:
        if not any(mention.start < k.end and k.start < mention.end for k in kept):
            kept.append(mention)
    if not kept:
        kept = fuzzy_mentions(question, onto)
    return sorted(kept, key=lambda m: m.start)


def fuzzy_mentions(question: str, onto: Ontology, limit: int = 5) -> list[Mention]:
    import difflib

    words = [w for w in WORD.findall(question) if w.casefold() not in STOPWORDS and len(w) >= 3]
    candidates: set[str] = set()
    for word in words:
        candidates.update(onto.names_with_word(word.casefold()))
    scored = []
    for name in candidates:
        ratio = difflib.SequenceMatcher(None, name.casefold(), question.casefold()).find_longest_match()
        scored.append((ratio.size / max(len(name), 1), name))
    scored.sort(reverse=True)
    mentions = []
    for score, name in scored[:limit]:
        if score >= 0.6:
            mentions.append(Mention(name, -1, -1, 0.6 * score))
    return mentions


def question_context(question: str, onto: Ontology) -> QuestionContext:
    mentions = find_mentions(question, onto)
    masked = question
    for mention in sorted((m for m in mentions if m.start >= 0), key=lambda m: -m.start):
        masked = masked[: mention.start] + " | " + masked[mention.end :]
    spans = []
    for chunk in masked.split("|"):
        words = WORD.findall(chunk)
        for n in range(1, 5):
            for i in range(len(words) - n + 1):
                gram = words[i : i + n]
                if gram[0].casefold() in STOPWORDS or gram[-1].casefold() in STOPWORDS:
                    continue
                spans.append(" ".join(gram))
    spans = list(dict.fromkeys(spans))
    # The question's spans and its delexicalized form go to the encoder in one batch.
    vectors = embed_cached(spans + [delexicalize(question, onto, mentions)])
    ctx = QuestionContext(question, onto, mentions, masked, spans, vectors[:-1], {s: i for i, s in enumerate(spans)})
    ctx.sketch_embedding = vectors[-1]
    return ctx


_text_cache: dict[str, np.ndarray] = {}
TEXT_CACHE_SIZE = 50_000


def embed_cached(texts: list[str]) -> np.ndarray:
    """Embeddings through a per-process cache: questions share most of their short spans
    ("born", "director of", "how many films"), and the encoder is most of a parse's time."""
    missing = [t for t in dict.fromkeys(texts) if t not in _text_cache]
    if missing:
        if len(_text_cache) + len(missing) > TEXT_CACHE_SIZE:
            _text_cache.clear()
        _text_cache.update(zip(missing, embed(missing), strict=True))
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return np.stack([_text_cache[t] for t in texts])


def numbers_in(ctx: QuestionContext) -> list[float]:
    text = ctx.masked
    for key in ctx.onto.attribute_keys:  # "ISO 3166-1 code" holds digits that are not values
        text = re.sub(re.escape(key), " ", text, flags=re.IGNORECASE)
    scaled = cues.scaled_numbers(text)  # "2 million" is 2000000, not 2
    for phrase, _value in scaled:
        text = text.replace(phrase, " ")
    return [value for _phrase, value in scaled] + [float(m.group().replace(",", "")) for m in NUMBER.finditer(text)]


def has_cue(text: str, cues: tuple[str, ...]) -> bool:
    lowered = text.casefold()
    return any(re.search(rf"\b{cue}", lowered) for cue in cues)


QUESTION_WORDS = {"when", "where", "why", "whose", "much", "long", "far", "old", "big"}


def coverage(ctx: QuestionContext, steps: list[dict]) -> float:
    """How well the program's KB labels explain the question's content words: the sum, over
    words outside entity names, of the log of each word's best similarity to a label the program
    uses. A program that leaves "born" unexplained ("the director of X", asked "where was the
    director of X born") scores lower than one that follows "place of birth" too."""
    labels = all_labels(ctx.onto)
    used = sorted({str(value) for step in steps for value in step["inputs"] if value in labels})
    words = [
        w
        for w in dict.fromkeys(WORD.findall(ctx.masked))
        if w.casefold() not in STOPWORDS | CUE_WORDS | QUESTION_WORDS
        and not NUMBER.fullmatch(w)
        and w in ctx.span_index
    ]
    if not words:
        return 0.0
    if not used:
        return COVERAGE_WEIGHT * len(words) * math.log(MIN_COVER)
    vectors = np.stack([label_embedding(ctx.onto, label) for label in used])
    best = (ctx.span_embeddings[[ctx.span_index[w] for w in words]] @ vectors.T).max(axis=1)
    if ctx.exact is None:
        ctx.exact = exact_labels(ctx.masked, ctx.onto)
    # Relations and keys only: a class written out ("the city where X was born") is often implied
    # by a relation's range, not a step of its own.
    concepts = set(ctx.onto.concepts.values())
    written = {
        w
        for label, score in ctx.exact.items()
        if score == 1.0 and label not in concepts
        for w in label.casefold().split()
    }
    for i, word in enumerate(words):  # a label written out in the question explains its words
        if any(word.casefold() in label.casefold().split() for label in used):
            best[i] = 1.0
        elif word.casefold() in written:
            # A relation or key written out in full ("the capital of Argentina") that the program
            # does not use is left unexplained, however close its word is to some other label.
            best[i] = MIN_COVER
    return COVERAGE_WEIGHT * float(np.log(np.clip(best, MIN_COVER, 1.0)).sum())


# ---------------------------------------------------------------------------------------------
# What the KB does not hold

# A phrase naming the thing asked about: the class after "which/what/how many" ("which river"),
# the thing a superlative ranges over ("the longest river", "the most populous city") and the
# relation or attribute before "of" ("the GDP of").
ASKED_THING = [  # each read on its own: "what is the longest river" holds two
    re.compile(r"\b(?:which|what|how many)\s+([\w'-]+(?:\s+[\w'-]+){0,2})", re.IGNORECASE),
    re.compile(
        r"\bthe\s+(?:most\s+\w+|\w+est|largest|biggest|highest|greatest|smallest|lowest|least)\s+"
        r"([\w'-]+(?:\s+[\w'-]+){0,2})",
        re.IGNORECASE,
    ),
    re.compile(r"\bthe\s+([\w'-]+(?:\s+[\w'-]+){0,2})\s+of\b", re.IGNORECASE),
]
# Words that end such a phrase or name nothing in any KB: function words, generic nouns a
# question uses for any kind of answer ("which year", "what kind", "how many people") and words
# about the KB's own structure ("what relation does A have to B").
FUNCTION_WORDS = {
    "at", "from", "into", "onto", "through", "about", "over", "under", "near", "within", "without",
    "across", "per", "since", "until", "after", "before", "during", "against", "like", "also",
    "only", "most", "least", "more", "less", "very", "ever", "both", "either", "neither", "each",
    "any", "some", "such", "same", "other", "own", "be", "been", "being", "not", "no", "can", "will",
    "would", "should", "could", "where", "when", "why", "whose", "if", "then", "so", "one", "ones",
    "year", "years", "date", "day", "month", "time", "place", "kind", "type", "sort", "thing",
    "things", "people", "person", "persons", "entity", "entities", "item", "items", "value", "others",
    "relation", "relationship", "connection", "link", "property", "attribute", "category", "class",
    "concept", "detail", "amount", "values",
}  # fmt: skip
NO_MATCH = 0.5  # below this similarity to every KB label a phrase names nothing the KB holds
MAX_PHRASE_WORDS = 3


def asked_phrases(ctx: QuestionContext) -> list[list[str]]:
    """The content words of each phrase that names what the question asks about, read on the
    question with entity names blanked out."""
    phrases = []
    for match in (m for pattern in ASKED_THING for m in pattern.finditer(ctx.masked)):
        text = match.group(1)
        words = []
        for word in WORD.findall(text):
            folded = word.casefold().strip(".'")
            if folded in STOPWORDS or folded in FUNCTION_WORDS or folded in CUE_WORDS or NUMBER.fullmatch(word):
                break
            words.append(word)
            if len(words) == MAX_PHRASE_WORDS:
                break
        if words:
            phrases.append(words)
    return phrases


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("es") and word[:-2].endswith(("s", "x", "ch", "sh")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def unmatched_phrase(ctx: QuestionContext) -> str | None:
    """A phrase naming what the question asks about that nothing in the KB matches: no concept,
    relation, attribute or qualifier label within NO_MATCH similarity of any of its word spans and
    no label containing one of its words. "Which river of China is the longest?" on a KB without
    rivers gets "river": any program the parser builds drops that word and answers about something
    else ("China"). Entity names do not count: the names the question writes out are already
    masked, and a KB of regions may name one "Tana River" without holding any river. None when
    every such phrase matches something."""
    labels = list(all_labels(ctx.onto))
    if not labels:
        return None
    label_words = {_singular(w) for label in labels for w in WORD.findall(label.casefold())}
    matrix = None
    for words in asked_phrases(ctx):
        folded = [_singular(w.casefold()) for w in words]
        if any(word in label_words for word in folded):
            continue
        grams = [" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)]
        if matrix is None:
            matrix = np.stack([label_embedding(ctx.onto, label) for label in labels])
        vectors = np.stack(
            [ctx.span_embeddings[ctx.span_index[g]] if g in ctx.span_index else embed_cached([g])[0] for g in grams]
        )
        if float((vectors @ matrix.T).max()) < NO_MATCH:
            return " ".join(words)
    return None
