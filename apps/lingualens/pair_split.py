"""How a feature's counterfactual pairs are split into selection and held-out halves (scoring.py
chooses latents on one and reports them on the other). Apart from scoring.py so that pages can
say which pairs were held out without importing torch."""

import zlib
from collections.abc import Sequence

MAX_PAIRS = 200  # pairs scored per feature, the first by id
MIN_SPANS = 4  # fewer different spans (吗, "very", "Thank you"): the feature is its marker, split by pair


def split_pairs(pairs: Sequence) -> tuple[list, list]:
    """(selection, held-out). Where a feature is marked by at least MIN_SPANS different spans
    ("cooked", "moved", ...), whole spans go to one side, so the held-out pairs ask whether the
    latent marks the feature on words it was not chosen on. Split by pair, a latent that only
    recognises "cooked" scored 1.0 on held-out pairs that said "cooked" again, and almost every
    feature looked alike. Spans (or, for features with fewer spans, pairs) are ordered by a hash
    of their text and alternately assigned: the same catalogue always splits the same way."""
    return _split_by_span(_ranked(pairs)) or split_by_pair(pairs)


def split_by_pair(pairs: Sequence) -> tuple[list, list]:
    """(selection, held-out) alternately by pair, whatever the spans: the split before by-span
    splitting (the bench compares the two)."""
    ranked = _ranked(pairs)
    return ranked[0::2], ranked[1::2]


def splits_by_span(pairs: Sequence) -> bool:
    """Whether split_pairs holds out whole spans of these pairs (else single pairs)."""
    return _split_by_span(list(pairs)) is not None


def _split_by_span(ranked: list) -> tuple[list, list] | None:
    spans = sorted({p.span for p in ranked}, key=lambda span: zlib.crc32(span.encode()))
    if len(spans) < MIN_SPANS:
        return None
    held_spans = set(spans[1::2])
    selection = [p for p in ranked if p.span not in held_spans]
    held_out = [p for p in ranked if p.span in held_spans]
    if min(len(selection), len(held_out)) < len(ranked) // 4:  # one span holding most pairs: by pair
        return None
    return selection, held_out


def _ranked(pairs: Sequence) -> list:
    return sorted(pairs, key=lambda p: zlib.crc32(f"{p.sentence}\t{p.counterfactual}".encode()))
