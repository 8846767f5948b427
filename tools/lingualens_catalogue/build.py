"""Builds the shipped linguistic feature catalogue from templates: word lists × frames.

Every pair is checked (span in sentence, counterfactual differs) and each feature gets
PAIRS_PER_FEATURE pairs drawn from its combinations with a seeded shuffle, so the lists
mix subjects and verbs instead of running through one name first. The features themselves are
in english.py and chinese.py.

    python -m tools.lingualens_catalogue.build     # rewrites apps/lingualens/data/catalogue.jsonl
"""

import itertools
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path

# The file the app loads (apps.lingualens.services.CATALOGUE_PATH; tests/lingualens/test_catalogue.py
# checks that it is what this writes).
CATALOGUE_PATH = Path(__file__).resolve().parents[2] / "apps" / "lingualens" / "data" / "catalogue.jsonl"
PAIRS_PER_FEATURE = 80

Pair = tuple[str, str, str]  # sentence, counterfactual, span


def combos(key: str, make: Callable[..., Pair], *lists: Sequence) -> list[Pair]:
    """All combinations of the lists through `make`, deduplicated, in a seeded order."""
    seen: dict[Pair, None] = {}
    for items in itertools.product(*lists):
        seen.setdefault(make(*items), None)
    pairs = list(seen)
    random.Random(key).shuffle(pairs)
    return pairs[:PAIRS_PER_FEATURE]


def feature(language: str, dimension: str, name: str, description: str, pairs: list[Pair]) -> dict:
    return {"language": language, "dimension": dimension, "name": name, "description": description, "pairs": pairs}


def build_catalogue() -> list[dict]:
    # Imported here: both modules use combos and feature from this one.
    from tools.lingualens_catalogue.chinese import chinese_features
    from tools.lingualens_catalogue.english import english_features

    features = english_features() + chinese_features()
    for item in features:
        for sentence, counterfactual, span in item["pairs"]:
            if span not in sentence or sentence == counterfactual:
                raise ValueError(f"bad pair in {item['name']}: {sentence!r} / {counterfactual!r} / {span!r}")
    return features


def catalogue_lines(features: list[dict]) -> list[str]:
    """JSONL: one feature per line with its pairs as objects (the import/export format)."""
    lines = []
    for item in features:
        record = {k: item[k] for k in ("language", "dimension", "name", "description")}
        record["pairs"] = [{"sentence": a, "counterfactual": b, "span": c} for a, b, c in item["pairs"]]
        lines.append(json.dumps(record, ensure_ascii=False))
    return lines


def write_catalogue(path: Path = CATALOGUE_PATH) -> int:
    features = build_catalogue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(catalogue_lines(features)) + "\n", encoding="utf-8")
    return len(features)


if __name__ == "__main__":
    print(f"wrote {write_catalogue()} features to {CATALOGUE_PATH}")
