"""LinguaLens model work, run in gpu workers: activation runs, SAE training with metrics and
latent statistics, feature scoring (PS/PN/FRC, FIC), search and steering.

Every step takes the loaded backend of apps.inference (its `.model`, `.tokenizer`, decoder
`.layers`) and reads or writes the residual stream with forward hooks on the decoder layers,
the same place `backend.activations` and `generate_with_hooks` use."""

import logging
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from django.db import transaction
from django.utils import timezone

from apps.inference.registry import get_model
from apps.jobs.events import send_to_group
from apps.jobs.models import Job
from apps.jobs.progress_text import message
from apps.jobs.services import JobCancelled, report_progress
from apps.lingualens import sae as sae_lib
from apps.lingualens.activations import collect_activations, load_run_arrays
from apps.lingualens.latent_stats import compute_latent_stats, token_label
from apps.lingualens.models import (
    SAE,
    FeatureScore,
    LinguisticFeature,
    RunStatus,
    SteeringRun,
)
from apps.lingualens.pair_split import MAX_PAIRS
from apps.lingualens.progress import (
    METRICS,
    READING,
    SCORED,
    STATISTICS,
    TRAINING_STEP,
    WITH_INTERVENTION,
    WITHOUT_INTERVENTION,
)
from apps.lingualens.services import sae_dir

logger = logging.getLogger(__name__)
BATCH = 16


def lens_backend(model_name: str):
    from apps.inference.services import load_backend

    return load_backend(get_model(model_name))


# ---- forward passes with hooks --------------------------------------------------------------


class _StopForward(Exception):  # noqa: N818  (control flow: the layers after the last one needed are skipped)
    pass


@dataclass
class Batch:
    ids: torch.Tensor  # [batch, tokens], right-padded
    mask: torch.Tensor  # [batch, tokens]
    offsets: list[list[tuple[int, int]]]  # character spans per real token (BOS: (0, 0))
    lengths: list[int]


def encode_batch(backend, texts: list[str], max_tokens: int | None = None) -> Batch:
    tokenizer = backend.tokenizer
    rows, offsets = [], []
    for text in texts:
        encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
        ids, spans = encoded["input_ids"], [tuple(span) for span in encoded["offset_mapping"]]
        if max_tokens:
            ids, spans = ids[:max_tokens], spans[:max_tokens]
        rows.append(ids)
        offsets.append(spans)
    lengths = [len(row) for row in rows]
    width = max(lengths)
    pad = tokenizer.pad_token_id or 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return Batch(ids.to(backend.device), mask.to(backend.device), offsets, lengths)


def _layer_output(output):
    return output[0] if isinstance(output, tuple) else output


@contextmanager
def _model_lock(backend):
    with getattr(backend, "_lock", nullcontext()), torch.inference_mode():
        yield


def capture_layers(backend, batch: Batch, layers: list[int]) -> dict[int, torch.Tensor]:
    """Residual stream after each decoder layer in `layers` ([batch, tokens, d_model], fp32);
    the forward pass stops after the deepest one."""
    captured: dict[int, torch.Tensor] = {}
    last = max(layers)

    def keep(layer: int):
        def hook(_module, _inputs, output):
            captured[layer] = _layer_output(output).float()
            if layer == last:
                raise _StopForward

        return hook

    with _model_lock(backend):
        handles = [backend.layers[layer].register_forward_hook(keep(layer)) for layer in layers]
        try:
            backend.model(input_ids=batch.ids, attention_mask=batch.mask)
        except _StopForward:
            pass
        finally:
            for handle in handles:
                handle.remove()
    return captured


def sequence_logprobs(
    backend, batch: Batch, layer: int | None = None, edit: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> torch.Tensor:
    """Sum of log-probabilities of each row's tokens (after the first), optionally with `edit`
    rewriting the residual stream after `layer`. Returns [batch]."""
    handles = []
    with _model_lock(backend):
        if edit is not None:

            def hook(_module, _inputs, output):
                if isinstance(output, tuple):
                    return (edit(output[0]), *output[1:])
                return edit(output)

            handles.append(backend.layers[layer].register_forward_hook(hook))
        try:
            logits = backend.model(input_ids=batch.ids, attention_mask=batch.mask).logits.float()
        finally:
            for handle in handles:
                handle.remove()
    logprobs = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, batch.ids[:, 1:, None])[..., 0]
    return (logprobs * batch.mask[:, 1:]).sum(-1)


def mean_ce(backend, batch: Batch, layer: int, edit=None) -> float:
    """Mean next-token cross-entropy over all real tokens of the batch."""
    total = -float(sequence_logprobs(backend, batch, layer, edit).sum())
    return total / max(1, int(batch.mask[:, 1:].sum()))


def keep_first(edit: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Interventions leave position 0 (BOS, the attention sink with a huge norm) alone."""

    def wrapped(hidden: torch.Tensor) -> torch.Tensor:
        changed = edit(hidden)
        if hidden.shape[1] > 1:
            changed = torch.cat([hidden[:, :1], changed[:, 1:]], dim=1)
        return changed

    return wrapped


# ---- SAE training ---------------------------------------------------------------------------


def eval_split(tokens: dict) -> tuple[np.ndarray, np.ndarray]:
    """Token rows for training and for held-out metrics: every tenth document is held out."""
    doc = np.asarray(tokens["doc"])
    held = doc % 10 == 9
    if not held.any() or held.all():
        return np.arange(len(doc)), np.arange(len(doc))
    return np.flatnonzero(~held), np.flatnonzero(held)


def ce_recovered(backend, sae_model: sae_lib.TopKSAE, layer: int, texts: list[str], max_tokens: int) -> dict:
    """(CE with the layer zero-ablated - CE with the SAE spliced in) / (CE ablated - CE clean)."""
    batch = encode_batch(backend, texts, max_tokens)
    clean = mean_ce(backend, batch, layer)
    ablated = mean_ce(backend, batch, layer, keep_first(torch.zeros_like))
    spliced = mean_ce(backend, batch, layer, keep_first(lambda h: sae_model(h.float()).to(h.dtype)))
    recovered = (ablated - spliced) / (ablated - clean) if ablated != clean else 0.0
    return {"ce_clean": clean, "ce_ablated": ablated, "ce_sae": spliced, "ce_recovered": recovered}


def train_sae(sae: SAE, backend, progress: Callable[[float, str], None]) -> SAE:
    """Train (or resume) the SAE on its run's stored activations, then metrics and latent statistics."""
    run = sae.run
    acts, tokens = load_run_arrays(run, sae.layer)
    train_rows, eval_rows = eval_split(tokens)
    train_acts = np.asarray(acts[train_rows])
    cfg = sae_lib.TrainConfig(
        width=sae.width,
        k=sae.k,
        training_tokens=sae.training_tokens,
        batch_size=sae.batch_size,
        lr=sae.lr,
        seed=sae.seed,
    )
    folder = sae_dir(sae)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / "checkpoint.pt"
    state = (
        sae_lib.load_checkpoint(checkpoint, train_acts, cfg)
        if checkpoint.exists()
        else sae_lib.new_state(train_acts, cfg)
    )
    sae.status, sae.steps_total = RunStatus.RUNNING, cfg.steps
    sae.save(update_fields=["status", "steps_total"])
    started = time.monotonic()
    spent_before = sae.train_seconds or 0.0

    def on_progress(current: sae_lib.TrainState) -> None:
        sae_lib.save_checkpoint(current, checkpoint)
        # The loss curve goes with each checkpoint, so the SAE page draws it while training runs.
        SAE.objects.filter(pk=sae.pk).update(
            steps_done=current.step,
            train_seconds=spent_before + time.monotonic() - started,
            loss_curve=_curve(current.losses),
        )
        recent = np.mean(current.losses[-25:])
        progress(
            current.step / cfg.steps, message(TRAINING_STEP, step=current.step, steps=cfg.steps, mse=f"{recent:.3f}")
        )

    try:
        state = sae_lib.train_steps(train_acts, cfg, state, on_progress)
    except BaseException:
        # Stopped: the weights so far are saved and marked partial; "resume" continues from the checkpoint.
        if state.step:
            sae_lib.save_checkpoint(state, checkpoint)
            finish_partial(sae, state)
        raise
    sae.train_seconds = spent_before + time.monotonic() - started
    finish_sae(sae, state, backend, acts, tokens, eval_rows, progress)
    return sae


def _curve(losses: list[float], points: int = 200) -> list[list[float]]:
    if not losses:
        return []
    step = max(1, len(losses) // points)
    return [[i + 1, float(np.mean(losses[i : i + step]))] for i in range(0, len(losses), step)]


def finish_partial(sae: SAE, state: sae_lib.TrainState) -> None:
    model = sae_lib.folded(state)
    model.save(
        sae_dir(sae),
        {"hook_name": f"model.layers.{sae.layer}", "model_name": sae.model_name, "partial": True, "steps": state.step},
    )
    SAE.objects.filter(pk=sae.pk).update(
        status=RunStatus.PARTIAL, steps_done=state.step, loss_curve=_curve(state.losses)
    )


def finish_sae(sae, state, backend, acts, tokens, eval_rows, progress) -> None:
    model = sae_lib.folded(state)
    model.save(
        sae_dir(sae),
        {
            "hook_name": f"model.layers.{sae.layer}",
            "model_name": sae.model_name,
            "training_tokens": sae.training_tokens,
            "steps": state.step,
            "normalize_activations": "none",
            "dtype": "float32",
        },
    )
    progress(0.9, message(METRICS))
    metrics = sae_lib.reconstruction_metrics(model, np.asarray(acts[eval_rows]))
    metrics["dead_share_train"] = sae_lib.reconstruction_metrics(model, np.asarray(acts))["dead_share"]
    held_docs = sorted(set(np.asarray(tokens["doc"])[eval_rows].tolist()))[:16]
    texts = [tokens["texts"][d] for d in held_docs]
    metrics.update(ce_recovered(backend, model, sae.layer, texts, sae.run.max_tokens_per_text))
    metrics["eval_tokens"] = len(eval_rows)
    sae.metrics = metrics
    sae.loss_curve = _curve(state.losses)
    sae.steps_done = state.step
    progress(0.95, message(STATISTICS))
    compute_latent_stats(
        sae, model, backend, acts, tokens, lambda fraction: progress(0.95 + 0.05 * fraction, message(STATISTICS))
    )
    sae.status = RunStatus.COMPLETE
    sae.save()


# ---- feature scoring (the method is in scoring.py) -----------------------------------------


def score_sae(
    sae: SAE,
    backend,
    progress: Callable[[float, str], None],
    feature_ids=None,
    max_pairs: int = MAX_PAIRS,
    fic_latents: int = 1,
    fic_pairs: int = 8,
    top: int = 5,
    already: int = 0,
) -> dict:
    """Score the SAE against each linguistic feature: latents chosen on one half of its pairs,
    PS/PN/FRC with an interval and the random floor on the other, FIC on held-out pairs.
    `already`: features an earlier run scored (a resumed chain), counted in the progress."""
    from apps.lingualens import scoring
    from apps.lingualens.steering import latent_scale

    model = sae_lib.TopKSAE.load(sae_dir(sae))
    features = LinguisticFeature.objects.all()
    if feature_ids:
        features = features.filter(pk__in=feature_ids)
    features = list(features.prefetch_related("pairs"))
    latents = {latent.index: latent for latent in sae.latents.all()}
    summary = {}
    for number, feature in enumerate(features, 1):
        pairs = list(feature.pairs.all()[:max_pairs])
        found = scoring.score_feature(backend, model, sae.layer, pairs, top=top, seed=sae.seed)
        scores = []
        for rank, row in enumerate(found["rows"]):
            score = FeatureScore(
                sae=sae,
                feature=feature,
                latent_index=row["latent"],
                layer=sae.layer,
                rank=rank,
                ps=row["ps"],
                pn=row["pn"],
                frc=row["frc"],
                sensitivity=row["sensitivity"],
                threshold=row["threshold"],
                frc_select=row["frc_select"],
                frc_low=row["frc_low"],
                frc_high=row["frc_high"],
                n_select=len(found["selection"]),
                n_heldout=len(found["held_out"]),
                floor_frc=found["floor"],
            )
            if rank < fic_latents:
                # Enhance to twice the latent's typical top activation (the steering unit).
                value = 2 * (latent_scale(latents.get(row["latent"])) or 1.0)
                score.fic_detail = scoring.fic_score(
                    backend, model, sae.layer, row["latent"], found["held_out"][:fic_pairs], value, seed=sae.seed
                )
                score.fic = score.fic_detail["fic"]
            scores.append(score)
        with transaction.atomic():
            FeatureScore.objects.filter(sae=sae, feature=feature).delete()
            FeatureScore.objects.bulk_create(scores)
        summary[feature.name] = [[r["latent"], round(r["frc"], 3)] for r in found["rows"][:3]]
        done, total = already + number, already + len(features)
        progress(done / total, message(SCORED, done=done, total=total, feature=feature.name))
    SAE.objects.filter(pk=sae.pk).update(scored=True)
    return summary


# ---- search and steering --------------------------------------------------------------------


@torch.no_grad()
def search_sentence(backend, sae: SAE, sentence: str, top: int = 5) -> dict:
    model = sae_lib.TopKSAE.load(sae_dir(sae))
    batch = encode_batch(backend, [sentence], 256)
    hidden = capture_layers(backend, batch, [sae.layer])[sae.layer][0, 1 : batch.lengths[0]]
    values, indices = model.encode_topk(hidden)
    rows = []
    for position in range(len(hidden)):
        token = token_label(backend.tokenizer, int(batch.ids[0, position + 1]))
        latents = [
            [int(i), round(float(v), 3)] for v, i in zip(values[position], indices[position], strict=True) if v > 0
        ][:top]
        rows.append({"token": token, "latents": latents})
    return {"sae": sae.slug, "model": sae.model_name, "layer": sae.layer, "sentence": sentence, "tokens": rows}


def steering_hook(model: sae_lib.TopKSAE, interventions: list[dict], normalize: bool):
    """Edit the residual stream after the SAE's layer. Strengths are multiples of each latent's
    scale (its typical top activation, recorded on the run by steering.with_scales): "add" adds
    strength x scale of the decoder direction at every position, "set" moves the latent to
    strength x scale (0 ablates). With `normalize`, "add" uses a unit-length direction and the
    strength as it is (the raw control)."""

    def edit(hidden: torch.Tensor) -> torch.Tensor:
        out = hidden
        for item in interventions:
            direction = model.W_dec[item["index"]].to(hidden.dtype)
            # Runs queued before strengths had a scale meant raw activation units (scale 1).
            scale = item.get("scale", 1.0) or 0.0
            if item["mode"] == "set":  # set the latent to a value: change its contribution exactly
                current = model.encode(hidden.float())[..., item["index"] : item["index"] + 1].to(hidden.dtype)
                out = out + (item["strength"] * scale - current) * direction
            elif normalize:  # raw strength along the unit-length decoder direction
                out = out + item["strength"] * direction / direction.norm().clamp(1e-8)
            else:  # the latent firing at strength x its typical top activation, everywhere
                out = out + item["strength"] * scale * direction
        return out

    return keep_first(edit)


def run_steering(job: Job, backend=None) -> dict:
    """Generate without and with the intervention (same prompt, params and seed), streaming
    each side's text to the job's group as it is produced."""
    from apps.inference.services import build_params

    run = SteeringRun.objects.select_related("sae__run").get(job=job)
    sae = run.sae
    backend = backend or lens_backend(sae.model_name)
    model = sae_lib.TopKSAE.load(sae_dir(sae))
    params = build_params(
        get_model(sae.model_name), {"temperature": run.temperature, "max_tokens": run.max_tokens, "seed": run.seed}
    )
    outputs = {"plain": "", "steered": ""}
    total = 2 * run.max_tokens
    produced = 0
    last_check = time.monotonic()

    def should_stop() -> bool:
        return Job.objects.filter(pk=job.pk, cancel_requested=True).exists()

    for side in ("plain", "steered"):
        side_message = WITH_INTERVENTION if side == "steered" else WITHOUT_INTERVENTION
        send_to_group(job.group_name, {"type": "steer.delta", "side": side, "text": "", "reset": True})
        if side == "plain":
            stream = backend.complete(run.prompt, params, should_stop=should_stop)
        else:
            hooks = {sae.layer: steering_hook(model, run.interventions, run.normalize)}
            stream = backend.generate_with_hooks(run.prompt, params, hooks, should_stop=should_stop)
        for piece in stream:
            produced += 1
            if piece:
                outputs[side] += piece
                send_to_group(job.group_name, {"type": "steer.delta", "side": side, "text": piece}, wait=False)
            if time.monotonic() - last_check > 1.0:
                last_check = time.monotonic()
                SteeringRun.objects.filter(pk=run.pk).update(
                    output_plain=outputs["plain"], output_steered=outputs["steered"]
                )
                report_progress(job, produced / total, message(side_message, count=len(outputs[side])))
        SteeringRun.objects.filter(pk=run.pk).update(output_plain=outputs["plain"], output_steered=outputs["steered"])
        # The side's final count: the one above is sent at most once a second, so the finished
        # page said "93 characters" beside a text of 119.
        report_progress(job, produced / total, message(side_message, count=len(outputs[side])))
        if should_stop():
            raise JobCancelled
    # The texts are on the SteeringRun, its page shows them side by side: the job has no
    # result of its own to show (a count of characters there only puzzled readers).
    return {}


# ---- job bodies (called by apps/lingualens/tasks.py through run_job) ---------------------------


def _progress(job: Job, low: float, high: float) -> Callable[[float, str], None]:
    def report(fraction: float, text: str) -> None:
        report_progress(job, low + (high - low) * fraction, text)

    return report


def train_job(job: Job, backend=None) -> dict:
    sae = SAE.objects.select_related("run__corpus").get(pk=job.params["sae_id"])
    backend = backend or lens_backend(sae.model_name)
    run = sae.run
    if run.status != RunStatus.COMPLETE:
        collect_activations(run, backend, _progress(job, 0.0, 0.3))
    try:
        train_sae(sae, backend, _progress(job, 0.3, 1.0))
    except JobCancelled:
        raise
    except Exception:
        SAE.objects.filter(pk=sae.pk).exclude(status=RunStatus.PARTIAL).update(status=RunStatus.FAILED)
        raise
    sae.refresh_from_db()
    return {
        "sae": sae.slug,
        **{
            key: round(value, 4)
            for key, value in sae.metrics.items()
            if key in ("l0", "explained_variance", "dead_share", "ce_recovered")
        },
    }


def score_job(job: Job, backend=None) -> dict:
    sae = SAE.objects.select_related("run").get(pk=job.params["sae_id"])
    backend = backend or lens_backend(sae.model_name)
    p = job.params
    summary = score_sae(
        sae,
        backend,
        _progress(job, 0.0, 1.0),
        p.get("feature_ids"),
        p.get("max_pairs", MAX_PAIRS),
        p.get("fic_latents", 1),
        p.get("fic_pairs", 8),
    )
    return {"features": len(summary), "finished_at": timezone.now().isoformat()}


def search_job(job: Job, backend=None) -> dict:
    sae = SAE.objects.select_related("run").get(pk=job.params["sae_id"])
    backend = backend or lens_backend(sae.model_name)
    report_progress(job, 0.1, message(READING))
    return search_sentence(backend, sae, job.params["sentence"])


def explain_sae(sae: SAE, limit: int, latents, progress: Callable[[float, str], None], assistant=None) -> dict:
    """Explanations by the assistant model for `latents` (or the `limit` default ones), scored by
    detection (explain.py). The latents' activations come from the stored run, so the lens model
    is not loaded."""
    from apps.inference.registry import model_for_role
    from apps.inference.services import load_backend
    from apps.lingualens import explain

    model = sae_lib.TopKSAE.load(sae_dir(sae))
    acts, tokens = load_run_arrays(sae.run, sae.layer)

    def codes(rows) -> np.ndarray:
        with torch.no_grad():
            return model.encode(torch.from_numpy(np.asarray(acts[rows], np.float32))).numpy()

    assistant = assistant or load_backend(model_for_role("assistant"))
    indices = latents or explain.default_latents(sae, limit)
    return explain.explain_latents(sae, assistant, codes, tokens, indices, progress, seed=sae.seed)


def explain_job(job: Job, assistant=None) -> dict:
    sae = SAE.objects.select_related("run").get(pk=job.params["sae_id"])
    p = job.params
    return explain_sae(sae, p.get("limit", 24), p.get("latents"), _progress(job, 0.0, 1.0), assistant)
