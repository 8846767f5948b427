"""Scores that discriminate (LinguaLens paper, with an honest split), run in workers.

For each linguistic feature the pairs are split in two (by marked word where the feature has
several, pair_split.py): on the *selection* half each latent gets the activation threshold that
maximises its FRC and the latents are ranked; on the *held-out* half the chosen latents are
scored with that threshold. Choosing among thousands of latents and reporting on the same two
dozen pairs gave FRC 1.000 for every feature; held-out scores do not have that bias.

- activation: a latent's largest value over the annotated span's tokens (sentence) and over the
  aligned region of the counterfactual (the characters the minimal edit changed there);
- PS = P(span activation > threshold), PN = P(counterfactual activation <= threshold),
  FRC = 2·PS·PN/(PS+PN), with a bootstrap interval over the held-out pairs;
- floor: the best latent for a random feature. In half the pairs (chosen at random) sentence and
  counterfactual change places, so no latent can track a real feature; the same selection then
  picks its best latent and threshold and the held-out FRC is measured (mean of SHUFFLES draws).
  A latent must beat this to mean more than what choosing among thousands gives by chance.
  (Random residual directions were tried first: with a tuned threshold the best of 2048 dense
  directions reached held-out FRC 0.82-0.85 on morphology, a linear probe rather than a chance
  level, so they stay the control of FIC only.)
- FIC: ablating / enhancing the latent against random directions of the same norm, on held-out
  pairs (pipeline.fic_score)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from apps.lingualens.pair_split import split_pairs

QUANTILES = np.linspace(0.1, 0.9, 9)
BOOTSTRAP = 1000
SHUFFLES = 8


@dataclass(frozen=True)
class PairText:
    """A counterfactual pair as text (the bench reads them from the catalogue file)."""

    sentence: str
    counterfactual: str
    span: str


def counterfactual_region(sentence: str, counterfactual: str, span: str) -> tuple[int, int]:
    """Characters of the counterfactual aligned with the span: the span's start moved back to
    where the two texts stop agreeing, its end to where they agree again from the right. An
    empty region (the edit deleted the span) is the point of deletion."""
    start = sentence.find(span)
    end = start + len(span)
    limit = min(len(sentence), len(counterfactual))
    prefix = 0
    while prefix < limit and sentence[prefix] == counterfactual[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and sentence[-1 - suffix] == counterfactual[-1 - suffix]:
        suffix += 1
    # Agreement inside a word ("The ..." / "Tom ...") is chance: back off to the word's edge
    # (letters and digits outside CJK, where each character is a word of its own).
    while prefix and _in_word(counterfactual, prefix - 1) and _in_word(counterfactual, prefix):
        prefix -= 1
    cut = len(counterfactual) - suffix
    while suffix and _in_word(counterfactual, cut - 1) and _in_word(counterfactual, cut):
        suffix -= 1
        cut += 1
    region_start = min(start, prefix)
    region_end = len(counterfactual) - min(len(sentence) - end, suffix)
    return region_start, max(region_start, region_end)


def _in_word(text: str, index: int) -> bool:
    if not 0 <= index < len(text):
        return False
    char = text[index]
    return char.isalnum() and not "\u2e80" <= char <= "\u9fff" and not "\uac00" <= char <= "\ud7af"


def token_positions(offsets: list[tuple[int, int]], start: int, end: int) -> list[int]:
    """Token positions overlapping [start, end); for an empty range, the token at (or right
    after) `start`; never BOS (its span is (0, 0))."""
    real = [(i, a, b) for i, (a, b) in enumerate(offsets) if b > a]
    if end > start:
        found = [i for i, a, b in real if a < end and b > start]
    else:
        found = [i for i, a, b in real if b > start][:1]
    return found or [real[-1][0]]


def max_activations(hiddens: list[torch.Tensor], encode: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
    """[pairs, latents]: each latent's largest value over each pair's tokens."""
    return np.stack([encode(h).max(0).values.cpu().numpy() for h in hiddens]).astype(np.float32)


def thresholds(s: np.ndarray, c: np.ndarray, with_zero: bool) -> np.ndarray:
    """[candidates, latents]: quantiles of each latent's pooled activations (and 0, "fires at all",
    for SAE latents, which are 0 when silent)."""
    grid = np.quantile(np.concatenate([s, c]), QUANTILES, axis=0)
    return np.concatenate([np.zeros((1, s.shape[1]), s.dtype), grid]) if with_zero else grid


def ps_pn_frc(s: np.ndarray, c: np.ndarray, threshold: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PS, PN and FRC per latent (threshold broadcast against [pairs, latents])."""
    ps = (s > threshold).mean(0)
    pn = (c <= threshold).mean(0)
    total = ps + pn
    frc = np.divide(2 * ps * pn, total, out=np.zeros_like(total, dtype=np.float64), where=total > 0)
    return ps, pn, frc


def select(s: np.ndarray, c: np.ndarray, with_zero: bool = True) -> dict:
    """On the selection pairs: each latent's best threshold and FRC there, and a tie-break margin
    (how much higher its activation is on spans than on counterfactuals, in its own scale)."""
    grid = thresholds(s, c, with_zero)  # [q, L]
    ps = (s[None] > grid[:, None]).mean(1)
    pn = (c[None] <= grid[:, None]).mean(1)
    total = ps + pn
    frc = np.divide(2 * ps * pn, total, out=np.zeros_like(total, dtype=np.float64), where=total > 0)
    best = frc.argmax(0)
    columns = np.arange(s.shape[1])
    scale = np.maximum(np.abs(np.concatenate([s, c])).max(0), 1e-6)
    return {
        "threshold": grid[best, columns],
        "frc": frc[best, columns],
        "margin": (s.mean(0) - c.mean(0)) / scale,
    }


def ranked(selection: dict, top: int) -> list[int]:
    """The `top` latents by selection FRC, ties broken by margin; only latents that rise."""
    order = np.lexsort((-selection["margin"], -selection["frc"]))
    return [int(i) for i in order if selection["margin"][i] > 0][:top]


def bootstrap_frc(s: np.ndarray, c: np.ndarray, threshold: float, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of FRC over held-out pairs resampled with replacement."""
    n = len(s)
    if n == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(BOOTSTRAP, n))
    ps = (s[picks] > threshold).mean(1)
    pn = (c[picks] <= threshold).mean(1)
    total = ps + pn
    frc = np.divide(2 * ps * pn, total, out=np.zeros_like(total), where=total > 0)
    low, high = np.quantile(frc, [0.025, 0.975])
    return float(low), float(high)


def evaluate(s_sel, c_sel, s_held, c_held, top: int = 5, with_zero: bool = True, seed: int = 0) -> list[dict]:
    """Choose latents on the selection pairs, report them on the held-out pairs."""
    selection = select(s_sel, c_sel, with_zero)
    rows = []
    for latent in ranked(selection, top):
        threshold = float(selection["threshold"][latent])
        ps, pn, frc = ps_pn_frc(s_held[:, latent], c_held[:, latent], np.float32(threshold))
        low, high = bootstrap_frc(s_held[:, latent], c_held[:, latent], threshold, seed + latent)
        rows.append(
            {
                "latent": latent,
                "threshold": threshold,
                "frc_select": float(selection["frc"][latent]),
                "sensitivity": float(selection["margin"][latent]),
                "ps": float(ps),
                "pn": float(pn),
                "frc": float(frc),
                "frc_low": low,
                "frc_high": high,
            }
        )
    return rows


def swap_half(s: np.ndarray, c: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Sentence and counterfactual sides exchanged in a random half of the pairs."""
    swap = rng.permutation(len(s)) < len(s) // 2
    return np.where(swap[:, None], c, s), np.where(swap[:, None], s, c)


def floor_frc(s_sel, c_sel, s_held, c_held, seed: int = 0) -> float:
    """Held-out FRC of the latent the selection picks for a random feature (mean of SHUFFLES)."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(SHUFFLES):
        rows = evaluate(*swap_half(s_sel, c_sel, rng), *swap_half(s_held, c_held, rng), top=1, seed=seed)
        values.append(rows[0]["frc"] if rows else 0.0)
    return float(np.mean(values))


# ---- with the model (workers) ---------------------------------------------------------------


@torch.no_grad()
def pair_hidden(backend, layer: int, pairs: Sequence) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Residual stream after `layer` on each pair's span tokens and on the aligned tokens of its
    counterfactual: two lists of [tokens, d_model]."""
    from apps.lingualens.pipeline import capture_layers, encode_batch

    s_batch = encode_batch(backend, [p.sentence for p in pairs])
    c_batch = encode_batch(backend, [p.counterfactual for p in pairs])
    s_hidden = capture_layers(backend, s_batch, [layer])[layer].cpu()
    c_hidden = capture_layers(backend, c_batch, [layer])[layer].cpu()
    spans, regions = [], []
    for i, pair in enumerate(pairs):
        start = pair.sentence.find(pair.span)
        spans.append(s_hidden[i, token_positions(s_batch.offsets[i], start, start + len(pair.span))])
        region = counterfactual_region(pair.sentence, pair.counterfactual, pair.span)
        regions.append(c_hidden[i, token_positions(c_batch.offsets[i], *region)])
    return spans, regions


@torch.no_grad()
def score_feature(backend, model, layer: int, pairs: Sequence, top: int = 5, seed: int = 0) -> dict:
    """Selection and held-out scores of the SAE's latents for one feature, and the random floor."""
    selection, held_out = split_pairs(pairs)
    if not selection or not held_out:
        return {"rows": [], "floor": None, "selection": selection, "held_out": held_out}
    sel_spans, sel_regions = pair_hidden(backend, layer, selection)
    held_spans, held_regions = pair_hidden(backend, layer, held_out)

    def encode(hidden: torch.Tensor) -> torch.Tensor:
        return model.encode(hidden.float())

    acts = [max_activations(h, encode) for h in (sel_spans, sel_regions, held_spans, held_regions)]
    rows = evaluate(*acts, top=top, seed=seed)
    return {"rows": rows, "floor": floor_frc(*acts, seed=seed), "selection": selection, "held_out": held_out}


@torch.no_grad()
def fic_score(backend, model, layer: int, latent: int, pairs, enhance_value: float, controls: int = 4, seed=0):
    """Feature intervention confidence on (held-out) pairs: ablating the latent (set to 0) should
    lower log P(sentence) - log P(counterfactual) and enhancing it (set to `enhance_value`) raise
    it, each more than the same edit along `controls` random directions of the decoder row's
    norm. FIC = mean of P(enhance beats a control) and P(ablation beats a control); the gaps are
    the mean differences in nats against the controls' mean."""
    from apps.lingualens.pipeline import encode_batch, keep_first, sequence_logprobs

    batch = encode_batch(backend, [p.sentence for p in pairs] + [p.counterfactual for p in pairs])
    n = len(pairs)
    direction = model.W_dec[latent]
    generator = torch.Generator().manual_seed(seed + latent)
    randoms = torch.randn(controls, direction.shape[0], generator=generator)
    randoms = randoms / randoms.norm(dim=1, keepdim=True) * direction.norm()

    def preference(edit=None) -> torch.Tensor:
        scores = sequence_logprobs(backend, batch, layer, keep_first(edit) if edit else None)
        return scores[:n] - scores[n:]

    def value(hidden):
        return model.encode(hidden.float())[..., latent : latent + 1]

    def enhance(d):
        return lambda h: h + ((enhance_value - value(h)) * d).to(h.dtype)

    def ablate(d):
        return lambda h: h - (value(h) * d).to(h.dtype)

    base = preference()
    enhanced = preference(enhance(direction)) - base
    ablated = base - preference(ablate(direction))
    random_enhanced = torch.stack([preference(enhance(d)) - base for d in randoms])  # [controls, n]
    random_ablated = torch.stack([base - preference(ablate(d)) for d in randoms])
    enhance_wins = float((enhanced[None] > random_enhanced).float().mean())
    ablate_wins = float((ablated[None] > random_ablated).float().mean())
    return {
        "fic": 0.5 * enhance_wins + 0.5 * ablate_wins,
        "enhance_wins": enhance_wins,
        "ablate_wins": ablate_wins,
        "enhance_gap": float((enhanced - random_enhanced.mean(0)).mean()),
        "ablate_gap": float((ablated - random_ablated.mean(0)).mean()),
        "pref_clean": float(base.mean()),
        "enhance_value": enhance_value,
        "controls": controls,
        "pairs": n,
    }
