"""Explanations for latents (auto-interpretation), run as a batch job in workers.

The assistant model (the `assistant` role, an OpenAI-compatible server) reads a latent's top
activating contexts, with the strongest token marked, and writes a one-line explanation. The
explanation is scored by detection: shown held-out snippets (contexts where the latent fires
that the explainer did not see, and corpus windows where it is silent), does it pick the ones
where the latent fires? The score is balanced accuracy (0.5 is chance). As a control, the same
snippets are judged with another latent's explanation: a good explanation beats it."""

import re
import unicodedata
from collections.abc import Callable

import numpy as np

from apps.lingualens.models import SAE, FeatureScore, Latent

SHOWN = 6  # top contexts the explainer reads; the rest of the top contexts are held out
HELD_OUT = 4  # firing snippets judged (held-out top contexts, then quantile examples)
SILENT = 4  # snippets where the latent is silent
MAX_EXPLANATION = 200


def snippet(context: dict, mark: bool) -> str:
    """A context as text; with `mark`, the strongest token is wrapped in [[ ]]."""
    tokens = list(context["tokens"])
    if mark:
        focus = context.get("focus", int(np.argmax(context["acts"])))
        tokens[focus] = f"[[{tokens[focus]}]]"
    return "".join(tokens).replace("\n", " ").strip()


def explanation_messages(latent: Latent) -> list[dict]:
    examples = "\n".join(f"{i}. {snippet(c, True)}" for i, c in enumerate(latent.top_contexts[:SHOWN], 1))
    return [
        {
            "role": "system",
            # A bare "Answer what it responds to" got the 1.5B assistant to answer "Tokens" for 30 of 36
            # latents (detection then picked every snippet: 0.5). Asking what the marked tokens share,
            # with examples of the form wanted, gets 'The word "可能会" ...' instead.
            "content": "You explain features of a language model's sparse autoencoder. Each feature fires on "
            "some tokens. Name what the marked tokens have in common: the word or characters, the grammatical "
            "construction, or the topic. Answer with one short line of at most 15 words, quoting the word when "
            "it is one word, for example: 'the word \"because\" introducing a reason', '把 before the object of "
            "a verb', 'numbers in dates'. Never answer with a bare category such as 'Tokens' or 'Topic'.",
        },
        {
            "role": "user",
            "content": "Texts where the feature fires most strongly; the token where it fires most is in [[ ]]. "
            "Texts may be English or Chinese.\n\n"
            + examples
            + "\n\nWhat do the marked tokens have in common? One line:",
        },
    ]


def clean_explanation(text: str) -> str:
    """Model output is untrusted: one line, no control characters, no leading label, bounded."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = "".join(ch for ch in line if unicodedata.category(ch)[0] != "C")
    line = re.sub(r"^(the feature responds to|explanation)\s*:\s*", "", line, flags=re.I).strip(" \"'`*")
    return line[:MAX_EXPLANATION]


def detection_messages(explanation: str, snippets: list[str]) -> list[dict]:
    listed = "\n".join(f"{i}. {text}" for i, text in enumerate(snippets, 1))
    return [
        {
            "role": "system",
            "content": "You check an explanation of a language-model feature against texts. Answer with the "
            "numbers of the texts where the feature, as explained, would fire.",
        },
        {"role": "user", "content": f"Explanation: {explanation}\n\nTexts:\n{listed}\n\nNumbers of matching texts:"},
    ]


def detection_schema(n: int) -> dict:
    return {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": n}, "maxItems": n}


def balanced_accuracy(picked: set[int], labels: list[bool]) -> float:
    """Mean of the hit rate on firing snippets and the correct-rejection rate on silent ones."""
    positives = [i for i, fires in enumerate(labels, 1) if fires]
    negatives = [i for i, fires in enumerate(labels, 1) if not fires]
    hit = sum(i in picked for i in positives) / len(positives) if positives else 0.0
    reject = sum(i not in picked for i in negatives) / len(negatives) if negatives else 0.0
    return (hit + reject) / 2


def held_out_firing(latent: Latent) -> list[dict]:
    """Firing contexts the explainer did not read: the rest of the top contexts, then quantile
    examples (from lower activations, so the test is not only the easiest cases)."""
    shown = {(tuple(c["tokens"]), c["focus"]) for c in latent.top_contexts[:SHOWN]}
    found = list(latent.top_contexts[SHOWN:])
    for group in latent.quantile_examples:
        found += [c for c in group["examples"] if (tuple(c["tokens"]), c["focus"]) not in shown]
    return found[:HELD_OUT]


def silent_windows(tokens: dict, codes, latent: int, count: int, rng) -> list[str]:
    """Corpus windows (one document's first tokens) where the latent never fires. `codes(rows)`
    returns the SAE's activations [rows, d_sae] for token rows of the run."""
    doc = np.asarray(tokens["doc"])
    starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
    found = []
    for start in rng.permutation(starts)[: count * 8]:
        rows = np.arange(start, min(start + 16, len(doc)))
        rows = rows[doc[rows] == doc[start]]
        if codes(rows)[:, latent].max() <= 0:
            found.append("".join(tokens["tokens"][r] for r in rows).replace("\n", " ").strip())
        if len(found) == count:
            break
    return found


def default_latents(sae: SAE, limit: int) -> list[int]:
    """The best latents of linguistic features first, then the densest live latents."""
    chosen = list(
        dict.fromkeys(
            FeatureScore.objects.filter(sae=sae, rank=0).order_by("-frc").values_list("latent_index", flat=True)
        )
    )
    for index in sae.latents.filter(density__gt=0).order_by("-density").values_list("index", flat=True):
        if len(chosen) >= limit:
            break
        if index not in chosen:
            chosen.append(index)
    return chosen[:limit]


def explain_latents(
    sae: SAE, assistant, codes, tokens: dict, indices: list[int], progress: Callable[[float, str], None], seed: int = 0
) -> dict:
    """Explain, then score by detection with the latent's own explanation and with the previous
    latent's (the control). Saves each latent as it goes, so a stopped job keeps what it did."""
    from apps.inference.backends.base import GenerationParams

    rng = np.random.default_rng(seed)
    latents = {latent.index: latent for latent in sae.latents.filter(index__in=indices)}
    todo = [latents[i] for i in indices if i in latents and latents[i].top_contexts]
    explanations: list[str] = []
    scores, controls = [], []
    for number, latent in enumerate(todo, 1):
        reply = assistant.chat_result(explanation_messages(latent), GenerationParams(temperature=0, max_tokens=48))
        explanation = clean_explanation(reply.text) or "(no explanation)"
        firing = [snippet(c, False) for c in held_out_firing(latent)]
        silent = silent_windows(tokens, codes, latent.index, SILENT, rng)
        texts = firing + silent
        labels = [True] * len(firing) + [False] * len(silent)
        order = rng.permutation(len(texts))
        texts, labels = [texts[i] for i in order], [labels[i] for i in order]
        detail = {"firing": len(firing), "silent": len(silent)}
        if firing and silent:
            picked = assistant.generate_json(
                detection_messages(explanation, texts), schema=detection_schema(len(texts))
            )
            latent.explanation_score = balanced_accuracy(set(picked), labels)
            detail["picked"] = sorted(set(picked))
            other = explanations[-1] if explanations else None
            if other:
                control = assistant.generate_json(detection_messages(other, texts), schema=detection_schema(len(texts)))
                detail["control"] = balanced_accuracy(set(control), labels)
                controls.append(detail["control"])
            scores.append(latent.explanation_score)
        else:
            latent.explanation_score = None  # too few held-out snippets to judge
        explanations.append(explanation)
        latent.explanation = explanation
        latent.explanation_detail = detail
        latent.save(update_fields=["explanation", "explanation_score", "explanation_detail"])
        progress(number / len(todo), f"Explained {number}/{len(todo)}: #{latent.index} {explanation[:60]}")
    return {
        "explained": len(todo),
        "median detection": round(float(np.median(scores)), 3) if scores else None,
        "median control": round(float(np.median(controls)), 3) if controls else None,
    }
