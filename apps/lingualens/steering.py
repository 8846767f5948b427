"""Steering requests (web side): which latents, how strongly, in what unit. The generation with
hooks runs in the worker (pipeline.run_steering).

Strength is in units of the latent's own scale: its typical top activation on the corpus (the
median of its top contexts' peaks, recorded when the SAE's latent statistics were computed).
"+2" adds twice that activation's worth of the decoder direction at every position, whatever
the latent's raw size, so one default suits dense and rare latents alike (a raw "+10" turned
text into "and or & AND &" for a dense latent and did nothing for a weak one)."""

import statistics

from django.db import transaction

from apps.jobs.services import create_job
from apps.lingualens.models import SAE, Latent, SteeringRun
from apps.lingualens.services import STEER_KIND, LensInputError, int_in_range

# The latent at twice its typical peak, at every position: a clear push that stays within the
# range the latent itself reaches (the old raw "+10" was many times that for dense latents).
# bench/lingualens.py sweeps x0.5..x8 and prints the steered text's log-probability per token
# under the clean model against the plain text's; rerun it to confirm or move this default.
DEFAULT_STRENGTH = 2.0
MAX_STRENGTH = 100.0  # in multiples of the latent's scale (or raw units with a unit direction)
MAX_INTERVENTIONS = 8


def latent_scale(latent: Latent | None) -> float | None:
    """The latent's typical top activation, or None when it never fired on the corpus."""
    if latent is None or latent.density == 0:
        return None
    peaks = [c["max"] for c in latent.top_contexts if c.get("max", 0) > 0]
    if peaks:
        return float(statistics.median(peaks))
    return latent.max_activation or None


def parse_interventions(raw) -> list[dict]:
    """[{"index": i, "strength": s, "mode": "add"|"set"}] from a list or "12:2, 40:set=0" text.
    A missing strength is DEFAULT_STRENGTH."""
    if isinstance(raw, str):
        items = []
        for part in filter(None, (p.strip() for p in raw.split(","))):
            index, _colon, value = part.partition(":")
            mode = "set" if value.strip().startswith("set=") else "add"
            value = value.strip().removeprefix("set=") or str(DEFAULT_STRENGTH)
            items.append({"index": index.strip(), "strength": value, "mode": mode})
        raw = items
    if not isinstance(raw, list) or not raw:
        raise LensInputError("pick at least one latent to steer with (e.g. 12:2 or 12:set=0)")
    cleaned = []
    for item in raw[:MAX_INTERVENTIONS]:
        if not isinstance(item, dict):
            raise LensInputError("each intervention is {index, strength, mode}")
        mode = item.get("mode", "add")
        if mode not in ("add", "set"):
            raise LensInputError('mode must be "add" or "set"')
        try:
            index = int(item.get("index"))
            strength = float(item.get("strength", DEFAULT_STRENGTH))
        except (TypeError, ValueError):
            raise LensInputError("latent index must be a whole number and strength a number") from None
        if not -MAX_STRENGTH <= strength <= MAX_STRENGTH:
            raise LensInputError(f"strength must be between {-MAX_STRENGTH:g} and {MAX_STRENGTH:g}")
        cleaned.append({"index": index, "strength": strength, "mode": mode})
    return cleaned


def with_scales(sae: SAE, interventions: list[dict], normalize: bool) -> list[dict]:
    """Each intervention gets the latent's scale, so the run records exactly what was added."""
    latents = {latent.index: latent for latent in sae.latents.filter(index__in=[i["index"] for i in interventions])}
    for item in interventions:
        if not 0 <= item["index"] < sae.width:
            raise LensInputError(f"latent {item['index']} is out of range (the SAE has {sae.width} latents)")
        item["scale"] = latent_scale(latents.get(item["index"]))
        needs_scale = item["strength"] != 0 and not (normalize and item["mode"] == "add")
        if needs_scale and item["scale"] is None:
            raise LensInputError(
                f"latent {item['index']} never fired on the corpus, so it has no scale to steer in: "
                "ablate it (set=0) or tick “unit-length direction” to give a raw strength"
            )
    return interventions


def start_steering(
    user, sae: SAE, prompt: str, interventions, seed=0, max_tokens=40, temperature=0.7, normalize: bool = False
) -> SteeringRun:
    prompt = (prompt or "").strip()
    if not prompt or len(prompt) > 2000:
        raise LensInputError("the prompt must have 1 to 2000 characters")
    cleaned = with_scales(sae, parse_interventions(interventions), normalize)
    seed = int_in_range(seed, "seed", 0, 2**31 - 1)
    max_tokens = int_in_range(max_tokens, "max tokens", 1, 200)
    try:
        temperature = float(temperature)
    except (TypeError, ValueError):
        raise LensInputError("temperature must be a number") from None
    if not 0 <= temperature <= 2:
        raise LensInputError("temperature must be between 0 and 2")
    with transaction.atomic():
        job = create_job(user, STEER_KIND, {"sae_id": sae.pk})
        return SteeringRun.objects.create(
            owner=user,
            job=job,
            sae=sae,
            prompt=prompt,
            interventions=cleaned,
            normalize=normalize,
            seed=seed,
            max_tokens=max_tokens,
            temperature=temperature,
        )
