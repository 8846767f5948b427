"""Latent statistics after an SAE is trained (run in workers): density, activation histogram,
top contexts (one per document), examples by activation quartile, promoted and suppressed
tokens through the unembedding, and nearest latents by decoder cosine."""

import unicodedata
from collections.abc import Callable

import numpy as np
import torch
from django.db import transaction

from apps.lingualens import sae as sae_lib
from apps.lingualens.models import SAE, Latent

HISTOGRAM_BINS = 24
TOP_CONTEXTS = 10
CONTEXT_BEFORE, CONTEXT_AFTER = 12, 4


VISIBLE_WHITESPACE = {" ": "␣", "\n": "↵", "\t": "⇥"}


def _invisible(char: str) -> bool:
    # Whitespace, and format and control characters (zero-width joiners, bidi marks): nothing to see.
    return char.isspace() or unicodedata.category(char) in ("Cf", "Cc")


def token_label(tokenizer, token_id: int) -> str:
    """A vocabulary entry as a page shows it alone (promoted tokens, a searched sentence's): its text,
    except that a byte of a character split across tokens reads as its piece ("<0xE7>") rather
    than "�", and a token with nothing visible shows what it is ("␣␣", "↵", "U+200C") rather than
    an empty chip."""
    text = tokenizer.decode([token_id])
    if "\ufffd" in text:
        return str(tokenizer.convert_ids_to_tokens(token_id))
    if not text or all(_invisible(char) for char in text):
        shown = "".join(VISIBLE_WHITESPACE.get(char) or f"U+{ord(char):04X}" for char in text)
        return shown or str(tokenizer.convert_ids_to_tokens(token_id))
    return text


def _context(tokens: dict, row: int, values: np.ndarray, indices: np.ndarray, latent: int) -> dict:
    """Tokens around `row` in the same document, each with this latent's activation."""
    doc = tokens["doc"][row]
    lo, hi = row, row
    while lo > 0 and tokens["doc"][lo - 1] == doc and row - lo < CONTEXT_BEFORE:
        lo -= 1
    while hi + 1 < len(tokens["doc"]) and tokens["doc"][hi + 1] == doc and hi - row < CONTEXT_AFTER:
        hi += 1
    window = slice(lo, hi + 1)
    acts = ((indices[window] == latent) * values[window]).sum(1)
    return {
        "tokens": tokens["tokens"][window],
        "acts": [round(float(a), 3) for a in acts],
        "focus": row - lo,
        "max": round(float(acts[row - lo]), 3),
    }


def _quantile_examples(vals, where, tokens, values, indices, latent, rng, shown: list[dict]) -> list[dict]:
    """Up to three random contexts per activation quartile, strongest quartile first. A context
    already on the page (a top context, or the same text in another bin or from a repeated
    corpus line) is skipped, so every example shows something new."""
    seen = {(tuple(c["tokens"]), c["focus"]) for c in shown}
    quantiles = np.quantile(vals, [0, 0.25, 0.5, 0.75, 1.0])
    bins = []
    for q in range(4):
        inside = np.flatnonzero((vals >= quantiles[q]) & (vals <= quantiles[q + 1]))
        examples = []
        for i in rng.permutation(inside)[:50]:  # bounded: a latent may fire on one repeated line
            context = _context(tokens, int(where[i]), values, indices, latent)
            key = (tuple(context["tokens"]), context["focus"])
            if key not in seen:
                seen.add(key)
                examples.append(context)
            if len(examples) == 3:
                break
        bins.append({"range": [round(float(quantiles[q]), 3), round(float(quantiles[q + 1]), 3)], "examples": examples})
    return bins[::-1]


@torch.no_grad()
def compute_latent_stats(
    sae: SAE, model: sae_lib.TopKSAE, backend, acts: np.ndarray, tokens: dict, progress: Callable | None = None
) -> None:
    """`progress(fraction)`, when given, is called every few seconds: over a million tokens this
    takes minutes, and the job's heartbeat must go on."""
    progress = progress or (lambda fraction: None)
    n = len(acts)
    values = np.zeros((n, model.k), np.float32)
    indices = np.zeros((n, model.k), np.int32)  # int32: half the memory of a 1M-token run's index
    for number, start in enumerate(range(0, n, 4096)):
        v, i = model.encode_topk(torch.from_numpy(np.asarray(acts[start : start + 4096], dtype=np.float32)))
        values[start : start + len(v)], indices[start : start + len(v)] = v.numpy(), i.numpy()
        if number % 32 == 31:
            progress(0.5 * start / n)
    live = values > 0
    flat_latent, flat_value, flat_row = indices[live], values[live], np.nonzero(live)[0]
    order = np.argsort(flat_latent, kind="stable")
    flat_latent, flat_value, flat_row = flat_latent[order], flat_value[order], flat_row[order]
    bounds = np.searchsorted(flat_latent, np.arange(model.d_sae + 1))
    # Logit effects: each decoder direction through the unembedding.
    unembed = backend.model.get_output_embeddings().weight.float()
    w_dec = model.W_dec.float()
    directions = w_dec / w_dec.norm(dim=1, keepdim=True).clamp(1e-8)
    cosine = directions @ directions.T
    cosine.fill_diagonal_(-2)
    neighbour_values, neighbour_indices = cosine.topk(min(5, model.d_sae - 1), dim=1)
    rng = np.random.default_rng(sae.seed)
    rows = []
    for chunk_start in range(0, model.d_sae, 256):
        progress(0.5 + 0.5 * chunk_start / model.d_sae)
        logits = directions[chunk_start : chunk_start + 256] @ unembed.T
        top_v, top_i = logits.topk(8, dim=1)
        bottom_v, bottom_i = (-logits).topk(8, dim=1)
        for offset in range(len(logits)):
            latent = chunk_start + offset
            lo, hi = bounds[latent], bounds[latent + 1]
            vals, where = flat_value[lo:hi], flat_row[lo:hi]
            stats = Latent(sae=sae, index=latent)
            stats.promoted = [
                [token_label(backend.tokenizer, int(t)), round(float(v), 3)]
                for v, t in zip(top_v[offset], top_i[offset], strict=True)
            ]
            stats.suppressed = [
                [token_label(backend.tokenizer, int(t)), round(-float(v), 3)]
                for v, t in zip(bottom_v[offset], bottom_i[offset], strict=True)
            ]
            stats.neighbours = [
                [int(i), round(float(c), 3)]
                for c, i in zip(neighbour_values[latent], neighbour_indices[latent], strict=True)
            ]
            if len(vals):
                stats.density = len(vals) / n
                stats.max_activation = float(vals.max())
                stats.mean_activation = float(vals.mean())
                counts, edges = np.histogram(vals, bins=HISTOGRAM_BINS, range=(0, float(vals.max())))
                stats.histogram = {"edges": [round(float(e), 4) for e in edges], "counts": counts.tolist()}
                top_rows, seen_docs = [], set()
                for idx in np.argsort(-vals):  # the strongest, one context per document
                    doc = tokens["doc"][where[idx]]
                    if doc not in seen_docs:
                        seen_docs.add(doc)
                        top_rows.append(int(where[idx]))
                    if len(top_rows) == TOP_CONTEXTS:
                        break
                stats.top_contexts = [_context(tokens, r, values, indices, latent) for r in top_rows]
                stats.quantile_examples = _quantile_examples(
                    vals, where, tokens, values, indices, latent, rng, stats.top_contexts
                )
            rows.append(stats)
    notes = dict(Latent.objects.filter(sae=sae).exclude(note="").values_list("index", "note"))
    with transaction.atomic():
        Latent.objects.filter(sae=sae).delete()
        for stats in rows:
            stats.note = notes.get(stats.index, "")
        Latent.objects.bulk_create(rows, batch_size=500)
