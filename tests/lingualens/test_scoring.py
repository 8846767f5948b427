"""The scoring method (scoring.py) without a model: the split, the counterfactual's aligned
region, thresholds, and why held-out scores discriminate where same-pair scores did not."""

import numpy as np
import pytest

from apps.lingualens import scoring
from apps.lingualens.pair_split import split_by_pair, split_pairs, splits_by_span
from apps.lingualens.scoring import PairText
from tests.lingualens.test_views_api import stored_sae  # noqa: F401  (a fixture)


def test_split_is_stable_balanced_and_disjoint():
    pairs = [PairText(f"s{i} x", f"c{i}", "x") for i in range(11)]
    selection, held_out = split_pairs(pairs)
    assert len(selection) == 6
    assert len(held_out) == 5
    assert not set(selection) & set(held_out)
    # Adding pairs or shuffling them does not move the old ones to the other side.
    again = split_pairs(list(reversed(pairs)))
    assert again == (selection, held_out)


def test_a_feature_with_several_marked_words_is_split_by_word():
    """Held-out pairs mark the feature with words the latent was not chosen on; a feature with one
    marker (吗) or one word holding most pairs is split by pair."""
    verbs = ["cooked", "moved", "painted", "washed", "opened", "closed"]
    pairs = [PairText(f"Ann {verb} it {i}.", f"Ann {verb[:-1]}s it {i}.", verb) for verb in verbs for i in range(5)]
    selection, held_out = split_pairs(pairs)
    assert {p.span for p in selection}.isdisjoint({p.span for p in held_out})
    assert len(selection) == len(held_out) == 15  # three verbs a side
    assert split_pairs(list(reversed(pairs))) == (selection, held_out)
    assert splits_by_span(pairs)
    by_pair = split_by_pair(pairs)  # the bench's comparison: the same pairs alternately, words on both sides
    assert [len(half) for half in by_pair] == [15, 15]
    assert {p.span for p in by_pair[0]} & {p.span for p in by_pair[1]}
    marker = [PairText(f"他来了{i}吗？", f"他来了{i}。", "吗") for i in range(10)]
    assert [len(half) for half in split_pairs(marker)] == [5, 5]
    assert not splits_by_span(marker)
    assert split_pairs(marker) == split_by_pair(marker)
    mostly_very = [PairText(f"a{i} very b", f"a{i} b", "very") for i in range(24)] + pairs[::5]
    first, second = split_pairs(mostly_very)
    assert not splits_by_span(mostly_very)
    assert len(first) == len(second) == 15
    assert "very" in {p.span for p in first} & {p.span for p in second}


@pytest.mark.parametrize(
    ("sentence", "counterfactual", "span", "region"),
    [
        ("The door was painted by Tom.", "Tom painted the door.", "was painted", "Tom painted the door"),
        ("我把书放在桌子上。", "我放书在桌子上。", "把", "放书"),  # 把书放 -> 放书
        ("I really like it.", "I like it.", "really ", ""),  # deletion: the point where it was
        ("She can't come.", "She can come.", "can't", "can"),
        ("Could you please pass the salt?", "Pass the salt.", "please", "Pass the salt."),
    ],
)
def test_counterfactual_region_is_what_the_edit_changed(sentence, counterfactual, span, region):
    start, end = scoring.counterfactual_region(sentence, counterfactual, span)
    assert counterfactual[start:end].strip() == region
    if not region:
        assert start == end == sentence.find(span)


def test_token_positions_never_bos_and_the_token_after_a_deletion():
    offsets = [(0, 0), (0, 1), (1, 2), (2, 5)]
    assert scoring.token_positions(offsets, 1, 3) == [2, 3]
    assert scoring.token_positions(offsets, 2, 2) == [3]  # empty: the token starting there
    assert scoring.token_positions(offsets, 9, 9) == [3]  # past the end: the last token


def test_frc_at_a_threshold():
    s = np.array([[1.0, 0.0], [1.0, 0.5], [0.0, 0.0], [1.0, 0.0]])
    c = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    ps, pn, frc = scoring.ps_pn_frc(s, c, np.zeros(2))
    assert ps.tolist() == [0.75, 0.25]
    assert pn.tolist() == [0.75, 0.75]
    assert frc[0] == pytest.approx(0.75)
    assert frc[1] == pytest.approx(2 * 0.25 * 0.75 / 1.0)


def test_held_out_scores_expose_latents_that_only_fit_the_selection_pairs():
    """One real latent (fires on spans 95% of the time, on counterfactuals 5%) among 2000 noise
    latents that fire at random. On 12 pairs the best noise latents look excellent; held out they
    fall back, and the floor (the same selection for a random feature) sits below the real latent."""
    rng = np.random.default_rng(0)
    n, width = 24, 2000
    s = (rng.random((n, width)) < 0.5) * rng.random((n, width))
    c = (rng.random((n, width)) < 0.5) * rng.random((n, width))
    s[:, 7] = (rng.random(n) < 0.95) * (1 + rng.random(n))
    c[:, 7] = (rng.random(n) < 0.05) * rng.random(n)
    sel, held = slice(0, 12), slice(12, 24)
    same_pairs = scoring.select(s[sel], c[sel])
    assert np.delete(same_pairs["frc"], 7).max() >= 0.9  # on the selection pairs, noise looks excellent
    rows = scoring.evaluate(s[sel], c[sel], s[held], c[held], top=20)
    assert 7 in [row["latent"] for row in rows]
    noise = [row for row in rows if row["latent"] != 7]
    assert np.median([row["frc"] for row in noise]) < np.median([row["frc_select"] for row in noise]) - 0.2
    for row in rows:
        assert row["frc_low"] <= row["frc"] <= row["frc_high"]
        assert row["frc"] == pytest.approx(2 * row["ps"] * row["pn"] / (row["ps"] + row["pn"]) if row["ps"] else 0)
    real = next(row for row in rows if row["latent"] == 7)
    # The floor: the same selection for a random feature (sides swapped in half the pairs).
    floor = scoring.floor_frc(s[sel], c[sel], s[held], c[held])
    assert real["frc"] > floor + 0.2
    assert np.median([row["frc"] for row in noise]) < floor + 0.15  # noise latents are about at the floor


def test_floor_is_chance_level_for_a_feature_no_latent_tracks():
    rng = np.random.default_rng(3)
    s = (rng.random((30, 500)) < 0.3) * rng.random((30, 500))
    c = (rng.random((30, 500)) < 0.3) * rng.random((30, 500))
    floor = scoring.floor_frc(s[:15], c[:15], s[15:], c[15:])
    assert 0.2 < floor < 0.75
    s[:, 0], c[:, 0] = 1.0, 0.0  # a perfect latent does not raise the floor: its sign flips in half the pairs
    assert scoring.floor_frc(s[:15], c[:15], s[15:], c[15:]) < 0.8


def test_bootstrap_interval_narrows_with_more_pairs():
    rng = np.random.default_rng(1)
    widths = []
    for n in (8, 64):
        s = (rng.random(n) < 0.8).astype(float)
        c = (rng.random(n) < 0.2).astype(float)
        low, high = scoring.bootstrap_frc(s, c, 0.0)
        widths.append(high - low)
    assert widths[1] < widths[0]


@pytest.mark.django_db
def test_pages_show_held_out_scores_with_interval_and_floor(client_for, researcher, stored_sae):  # noqa: F811
    from apps.lingualens.models import FeatureScore, LinguisticFeature

    FeatureScore.objects.filter(sae=stored_sae).update(
        ps=0.75,
        pn=0.875,
        frc=2 * 0.75 * 0.875 / 1.625,
        frc_low=0.6,
        frc_high=0.95,
        frc_select=1.0,
        n_select=12,
        n_heldout=12,
        floor_frc=0.55,
        threshold=0.4,
    )
    hedging = LinguisticFeature.objects.get(name="Hedging")
    FeatureScore.objects.create(
        sae=stored_sae,
        feature=hedging,
        latent_index=3,
        layer=6,
        rank=0,
        ps=0.5,
        pn=0.5,
        frc=0.5,
        frc_low=0.3,
        frc_high=0.7,
        frc_select=1.0,
        n_select=12,
        n_heldout=12,
        floor_frc=0.55,
    )
    client = client_for(researcher)
    page = client.get(f"/lingualens/saes/{stored_sae.slug}/").content.decode()
    assert "<strong>1 of 2</strong> features" in page  # passive clears the floor, hedging does not
    assert ">0.81</span>" in page  # held-out FRC of passive voice, then its interval
    assert "[0.60, 0.95]" in page
    assert "above floor" in page
    assert "1.000" not in page
    feature = client.get(f"/lingualens/catalogue/{hedging.pk}/").content.decode()
    assert "[0.30, 0.70]" in feature
    assert "0.55" in feature  # the floor beside it
    scores = client.get(f"/api/lingualens/saes/{stored_sae.slug}/scores").json()
    passive = next(s for s in scores if s["feature"] == "Passive voice")
    assert passive["frc_interval"] == [0.6, 0.95]
    assert passive["beats_floor"] is True
    assert passive["pairs"] == {"selection": 12, "held_out": 12}


@pytest.mark.django_db
def test_cross_lingual_view_counts_features_sharing_top_latents(client_for, researcher, stored_sae):  # noqa: F811
    from apps.lingualens import summaries
    from apps.lingualens.models import FeatureScore, LinguisticFeature

    ba = LinguisticFeature.objects.get(name="把 construction")  # syntax, like the stored passive voice (latent 3)
    FeatureScore.objects.create(sae=stored_sae, feature=ba, latent_index=3, layer=6, rank=1, ps=1, pn=1, frc=1)
    FeatureScore.objects.create(sae=stored_sae, feature=ba, latent_index=9, layer=6, rank=0, ps=1, pn=1, frc=1)
    thanks = LinguisticFeature.objects.get(name="Honorific 您")
    FeatureScore.objects.create(sae=stored_sae, feature=thanks, latent_index=3, layer=6, rank=0, ps=1, pn=1, frc=1)
    rows = {row["dimension"]: row for row in summaries.cross_lingual_table()}
    assert rows["syntax"] == {
        "layer": 6,
        "dimension": "syntax",
        "en": 1,
        "en_total": 1,
        "zh": 1,
        "zh_total": 1,
        "shared_latents": [3],
    }
    assert rows["pragmatics"]["en"] == 0  # latent 3 is shared across dimensions, not within pragmatics
    page = client_for(researcher).get("/lingualens/").content.decode()
    assert 'id="cross-lingual"' in page
    assert "1 / 1" in page
    svg = client_for(researcher).get("/lingualens/cross-lingual.svg")
    assert svg["Content-Type"] == "image/svg+xml"
    assert b"Syntax (en)" in svg.content
