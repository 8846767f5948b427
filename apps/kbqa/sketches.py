"""The sketch parser's model: which KoPL function sequence a question asks for.

A classifier over whole sketches can only return a sequence it saw whole in training. Here a
sketch is also read as two parts: a *body* that builds the set the question is about (Find,
Relate, FilterConcept, FilterYear, And, Or, ...) and a *head* that asks something of that set
(QueryName, Count, QueryAttr + VerifyYear, SelectAmong, ...). One classifier per part is trained
on the same pairs, and a body is joined to any head, so "the set of films Ridley Scott directed"
(seen under Count) composes with "which one has the largest <key>" (seen under other bodies)
into a sketch never seen whole. Weights are plain lists (no pickles).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from apps.kbqa.kopl import FUNCTIONS
from apps.kbqa.ontology import parse_sketch

TOP_SKETCHES = 5
TOP_BODIES = 6
TOP_HEADS = 4
BODY = "b"  # in a head, a dependency on the body's last step


def _fmt(steps: list[tuple[str, list]]) -> str:
    return " ".join(f"{function}({','.join(str(d) for d in deps)})" for function, deps in steps)


def split_sketch(sketch: str) -> tuple[str, str] | None:
    """(body, head) of a sketch, or None when the head reads more than the body's final set
    (Find Find SelectBetween(0,1) stays whole)."""
    steps = parse_sketch(sketch)
    last_set = max((i for i, (f, _d) in enumerate(steps) if FUNCTIONS[f].gives == "entities"), default=-1)
    if last_set < 0 or last_set == len(steps) - 1:
        return None
    head = []
    for function, deps in steps[last_set + 1 :]:
        if any(d < last_set for d in deps):
            return None
        head.append((function, [BODY if d == last_set else d - last_set - 1 for d in deps]))
    return _fmt(steps[: last_set + 1]), _fmt(head)


def join_sketch(body: str, head: str) -> str:
    base = len(parse_sketch(body))
    steps = []
    for token in head.split():
        function, _, deps = token.partition("(")
        deps = [d for d in deps.rstrip(")").split(",") if d]
        steps.append((function, [base - 1 if d == BODY else base + int(d) for d in deps]))
    return body + " " + _fmt(steps)


@dataclass
class SketchClassifier:
    classes: list[str]
    coef: np.ndarray  # (classes, 384)
    intercept: np.ndarray  # (classes,)
    parts: dict[str, SketchClassifier] = field(default_factory=dict)  # "body" and "head"

    @classmethod
    def from_json(cls, data: dict) -> SketchClassifier:
        parts = {name: cls.from_json(part) for name, part in data.get("parts", {}).items()}
        return cls(data["classes"], np.asarray(data["coef"], dtype=np.float32), np.asarray(data["intercept"]), parts)

    def as_json(self) -> dict:
        out = {"classes": self.classes, "coef": self.coef.round(5).tolist(), "intercept": self.intercept.tolist()}
        if self.parts:
            out["parts"] = {name: part.as_json() for name, part in self.parts.items()}
        return out

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Class probabilities, one row per embedding."""
        logits = embeddings @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def _ranked(self, embedding: np.ndarray, k: int) -> list[tuple[str, float]]:
        probs = self.predict(embedding[None, :])[0]
        return [(self.classes[i], float(probs[i])) for i in np.argsort(-probs)[:k]]

    def top(
        self, embedding: np.ndarray, k: int = TOP_SKETCHES, prior: Callable[[str], float] | None = None
    ) -> list[tuple[str, float]]:
        """The k likeliest sketches, whole ones and bodies joined to heads; `prior` (sketch ->
        weight) reweighs them before ranking."""
        scores = dict(self._ranked(embedding, len(self.classes)))
        if "body" in self.parts and "head" in self.parts:
            # The two readings are averaged: a whole-sketch softmax is sure of what it has seen,
            # and only the parts can name a sequence it has not.
            scores = {s: p / 2 if split_sketch(s) else p for s, p in scores.items()}
            for body, p_body in self.parts["body"]._ranked(embedding, TOP_BODIES):
                for head, p_head in self.parts["head"]._ranked(embedding, TOP_HEADS):
                    sketch = join_sketch(body, head)
                    scores[sketch] = scores.get(sketch, 0.0) + p_body * p_head / 2
        if prior is not None:
            scores = {sketch: p * prior(sketch) for sketch, p in scores.items()}
        total = max(sum(scores.values()), 1e-12)
        ranked = sorted(scores.items(), key=lambda item: -item[1])[:k]
        return [(sketch, p / total) for sketch, p in ranked]


def fit_logistic(embeddings: np.ndarray, labels: list[str]) -> SketchClassifier:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=2000, C=10.0)
    model.fit(embeddings, labels)
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # sklearn keeps one row for a binary problem
        coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    return SketchClassifier(list(model.classes_), coef.astype(np.float32), intercept)


def fit_sketch_model(embeddings: np.ndarray, sketches: list[str]) -> SketchClassifier:
    """The whole-sketch classifier with body and head classifiers beside it."""
    whole = fit_logistic(embeddings, sketches)
    splits = [split_sketch(s) for s in sketches]
    rows = [i for i, part in enumerate(splits) if part is not None]
    if len({splits[i][0] for i in rows}) >= 2 and len({splits[i][1] for i in rows}) >= 2:
        whole.parts = {
            "body": fit_logistic(embeddings[rows], [splits[i][0] for i in rows]),
            "head": fit_logistic(embeddings[rows], [splits[i][1] for i in rows]),
        }
    return whole
