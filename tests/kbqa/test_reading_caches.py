"""What a parse reuses instead of encoding again: a KB's label embeddings (per process, and
across processes through Redis, keyed by the labels themselves) and the values a key takes that
the question writes out (per question, not per beam)."""

import numpy as np
import pytest

from apps.inference.embeddings import encoder_threads, get_encoder
from apps.kbqa import reading
from apps.kbqa.arguments import string_value_candidates
from apps.kbqa.reading import all_labels, label_embedding, question_context, warm_labels

pytestmark = pytest.mark.model


def test_label_embeddings_come_back_from_redis_in_a_fresh_process(geo_onto, monkeypatch):
    warm_labels(geo_onto)
    labels = sorted(all_labels(geo_onto))
    before = {label: reading._label_cache[label].copy() for label in labels}
    encoded: list[list[str]] = []
    real_embed = reading.embed

    def counting_embed(texts):
        encoded.append(list(texts))
        return real_embed(texts)

    # A fresh worker process: an empty in-process cache, the same Redis.
    monkeypatch.setattr(reading, "_label_cache", {})
    monkeypatch.setattr(reading, "embed", counting_embed)
    vector = label_embedding(geo_onto, labels[0])
    assert encoded == []
    assert set(reading._label_cache) == set(labels)
    for label in labels:
        np.testing.assert_allclose(reading._label_cache[label], before[label], rtol=0, atol=1e-6)
    assert np.isclose(float(np.linalg.norm(vector)), 1.0, atol=1e-4)


def test_another_kbs_labels_are_not_read_from_this_kbs_entry(geo_onto, elements_onto, monkeypatch):
    warm_labels(geo_onto)
    monkeypatch.setattr(reading, "_label_cache", {})
    warm_labels(elements_onto)
    elements_labels = set(all_labels(elements_onto))
    assert elements_labels <= set(reading._label_cache)
    # Labels only geo has stay out: the entry read was the elements label set's own.
    assert not (set(all_labels(geo_onto)) - elements_labels) & set(reading._label_cache)


def test_the_encoder_runs_on_one_thread_unless_configured(settings):
    import torch

    get_encoder()
    settings.MODEL_THREADS = 0
    assert encoder_threads() == 1
    assert torch.get_num_threads() == 1
    settings.MODEL_THREADS = 3
    assert encoder_threads() == 3


def test_string_values_are_matched_once_per_question(geo_onto):
    ctx = question_context("Which country has the top-level domain .de?", geo_onto)
    found = string_value_candidates(ctx, "top-level domain")
    assert [c.inputs for c in found] == [[".de"]]
    assert ctx.string_values == {"top-level domain": [".de"]}
    assert [c.inputs for c in string_value_candidates(ctx, "top-level domain")] == [[".de"]]
    assert string_value_candidates(ctx, "official name") == []
