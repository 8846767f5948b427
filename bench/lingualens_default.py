"""The default LinguaLens SAE set (apps/lingualens/default_set.py): its speed and what it finds.

    .venv/bin/python bench/lingualens_default.py --rates [--tokens 30000]
        activation collection (the set's layers, one forward pass) and SAE training (its width and k)
        in tokens/s with MODEL_THREADS threads (make up's batch worker: 1), and the first-start wait
        they give for the full set;
    .venv/bin/python bench/lingualens_default.py --run-small [--tokens 150000] [--explain 12]
            [--layers 3 6 9] [--no-scores]
        the set's chain in this process on a smaller corpus (same layers, width, k; the whole
        catalogue unless --no-scores; the assistant server for explanations), then the report below;
    .venv/bin/python bench/lingualens_default.py --reexplain --job ID [--explain 12] [--layers 6]
        explain a stored set's SAEs again with the current explain.py, then the report;
    .venv/bin/python bench/lingualens_default.py --compare-splits [--job ID] [--layers 3]
        held-out FRC of each feature's best latent and the random floor with the pairs split by pair
        and as scoring splits them (by span where it can), recomputed on the stored set's SAEs;
    .venv/bin/python bench/lingualens_default.py [--job ID]
        the report on a stored set (default: the latest default set): per SAE, the held-out FRC of
        each feature's best latent (median, share >= 0.8, share above the random floor, share whose
        interval clears it; apart for features held out by span and by pair), the FIC gap over
        random directions, explanation detection against the shuffled-explanation control, and the
        time of each stage.

Needs DATABASE_URL (a bench database, `make bench-db`). Prints figures; asserts nothing.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def share(flags: list[bool]) -> str:
    return f"{sum(flags) / len(flags):.0%} ({sum(flags)}/{len(flags)})" if flags else "–"


def median(values: list[float], fmt: str = ".3f") -> str:
    return format(statistics.median(values), fmt) if values else "–"


def rates(tokens: int) -> None:
    import numpy as np
    import torch

    from apps.inference.registry import get_model
    from apps.inference.services import load_backend
    from apps.lingualens import default_corpus, default_set, pipeline
    from apps.lingualens import sae as sae_lib

    torch.set_num_threads(int(os.environ.get("MODEL_THREADS", "1")))
    backend = load_backend(get_model("gemma3-270m"))
    texts, _ = default_corpus.build_texts(tokens, [])
    layers = list(default_set.LAYERS)
    print(f"torch threads {torch.get_num_threads()}; layers {layers}; {load()}")
    started = time.monotonic()
    chunks, n = [], 0
    for start in range(0, len(texts), pipeline.BATCH):
        batch = pipeline.encode_batch(backend, texts[start : start + pipeline.BATCH], default_set.MAX_TOKENS_PER_TEXT)
        captured = pipeline.capture_layers(backend, batch, layers)
        for row, length in enumerate(batch.lengths):
            chunks.append(captured[layers[1]][row, 1:length].numpy().astype(np.float16))
            n += length - 1
    collect = n / (time.monotonic() - started)
    print(f"collection, {len(layers)} layers in one forward pass: {n:,} tokens, {collect:,.0f} tokens/s ({load()})")
    acts = np.concatenate(chunks)
    cfg = sae_lib.TrainConfig(width=default_set.WIDTH, k=default_set.K, training_tokens=512 * 150, batch_size=512)
    state = sae_lib.new_state(acts, cfg)
    started = time.monotonic()
    sae_lib.train_steps(acts, cfg, state)
    train = cfg.steps * cfg.batch_size / (time.monotonic() - started)
    print(
        f"training width {cfg.width} k {cfg.k}: {cfg.steps * cfg.batch_size:,} tokens, {train:,.0f} tokens/s ({load()})"
    )
    n_saes = len(layers)
    collect_s = default_set.CORPUS_TOKENS / collect
    train_s = default_set.TRAINING_TOKENS / train
    stage = default_set.Stage
    plan = [stage("activations", collect_s, 0.0)]
    for _ in range(n_saes):
        plan += [stage("train", train_s, 0.0), stage("statistics", default_set.STATS_SECONDS, 0.0)]
        plan += [stage("score", default_set.SCORE_SECONDS, 0.0), stage("explain", default_set.EXPLAIN_SECONDS, 0.0)]
    total_s, ready_s = default_set.timeline(plan)  # each explanation beside the next SAE's training
    print(
        f"first-start wait for the full set ({default_set.CORPUS_TOKENS:,} tokens, {n_saes} SAEs of "
        f"{default_set.TRAINING_TOKENS:,} tokens): collection {collect_s / 60:.0f} min, then per SAE training "
        f"{train_s / 60:.0f} min + statistics and scoring {(plan[2].seconds + plan[3].seconds) / 60:.0f} min, "
        f"its explanations ({plan[4].seconds / 60:.0f} min) beside the next SAE's (default_set.py's estimates) = "
        f"{total_s / 60:.0f} min; the first SAE finished (trained, scored, explained) after {ready_s[0] / 60:.0f} min"
    )


def run_small(tokens: int, explain: int, layers: list[int] | None, no_scores: bool) -> int:
    """The chain's own code on a smaller corpus; its job row is not a default-set job, so a later
    `make up` against this database still queues the real set. `layers` narrows the set and
    `no_scores` skips the catalogue scoring (about 15 min per SAE here): explanations then go to
    live latents (explain.default_latents) instead of the features' best ones."""
    from apps.inference.registry import get_model
    from apps.inference.services import load_backend
    from apps.jobs.models import Job
    from apps.lingualens import default_set, services
    from apps.lingualens.models import SAE

    services.load_default_catalogue()
    default_set.CORPUS_TOKENS, default_set.TRAINING_TOKENS = tokens, tokens
    default_set.EXPLAIN_LATENTS = explain
    default_set.CORPUS_NAME = f"LinguaLens default set, bench ({tokens:,} tokens)"
    default_set.SLUG_PREFIX = f"bench{tokens // 1000}k"
    if layers:
        default_set.LAYERS = tuple(layers)
    owner = default_set.service_owner()
    params = default_set._create_set(owner)
    if no_scores:
        SAE.objects.filter(pk__in=params["sae_ids"]).update(scored=True)
    job = Job.objects.create(owner=owner, kind="bench.lingualens_default", queue="batch", params=params)
    backend = load_backend(get_model("gemma3-270m"))
    started = time.monotonic()
    print(f"running the chain on {tokens:,} tokens (job row {job.pk}; {load()})", flush=True)
    default_set.LINK_SECONDS = 10**9  # one link: a continuation would be a queued default-set job
    result = default_set.run_default_set(job, backend=backend)
    Job.objects.filter(pk=job.pk).update(status="succeeded", result=result)
    print(f"chain done in {(time.monotonic() - started) / 60:.1f} min ({load()})\n")
    return job.pk


def reexplain(job_id: int | None, limit: int, layers: list[int] | None) -> None:
    """Explain the stored set's SAEs again with the current explain.py (earlier explanations and
    scores are cleared), on the assistant server of OPENAI_BASE_URL / LLAMA_SERVER_URL."""
    from apps.jobs.models import Job
    from apps.lingualens import default_set, pipeline

    job = Job.objects.get(pk=job_id) if job_id else default_set.latest_job()
    _run, saes = default_set.set_objects(job)
    for sae in saes:
        if layers and sae.layer not in layers:
            continue
        sae.latents.exclude(explanation="").update(explanation="", explanation_score=None, explanation_detail={})
        started = time.monotonic()

        def progress(fraction: float, message: str, layer: int = sae.layer) -> None:
            print(f"  L{layer} {fraction:4.0%} {message}", flush=True)

        result = pipeline.explain_sae(sae, limit, None, progress)
        seconds = time.monotonic() - started
        sae.metrics = {**sae.metrics, "explained": result["explained"], "explain_seconds": seconds}
        sae.save(update_fields=["metrics"])
        print(f"L{sae.layer}: {result} in {seconds:.0f} s ({load()})", flush=True)


def compare_splits(job_id: int | None, layers: list[int] | None) -> None:
    """Held-out FRC of each feature's best latent and the random floor, with the pairs split by
    pair and as scoring splits them (by span where a feature has several: pair_split.py), on the
    stored set's trained SAEs. Recomputed here from the SAE weights (no FIC), so the two splits
    are compared on the same latents; nothing is stored."""
    import numpy as np
    import torch

    from apps.jobs.models import Job
    from apps.lingualens import default_set, scoring
    from apps.lingualens import sae as sae_lib
    from apps.lingualens.models import LinguisticFeature
    from apps.lingualens.pair_split import MAX_PAIRS, split_by_pair, split_pairs, splits_by_span
    from apps.lingualens.pipeline import lens_backend
    from apps.lingualens.services import sae_dir

    job = Job.objects.get(pk=job_id) if job_id else default_set.latest_job()
    run, saes = default_set.set_objects(job)
    backend = lens_backend(run.model_name)
    features = list(LinguisticFeature.objects.prefetch_related("pairs"))
    for sae in saes:
        if (layers and sae.layer not in layers) or not sae_dir(sae).joinpath("cfg.json").exists():
            continue
        model = sae_lib.TopKSAE.load(sae_dir(sae))

        def encode(hidden, model=model):
            with torch.no_grad():
                return model.encode(hidden.float())

        started = time.monotonic()
        found = {"by pair": [], "as scored": []}
        for feature in features:
            pairs = list(feature.pairs.all()[:MAX_PAIRS])
            spans, regions = scoring.pair_hidden(backend, sae.layer, pairs)
            s, c = scoring.max_activations(spans, encode), scoring.max_activations(regions, encode)
            row = {id(pair): i for i, pair in enumerate(pairs)}
            by_span = splits_by_span(pairs)
            for name, split in (("by pair", split_by_pair), ("as scored", split_pairs)):
                selection, held_out = split(pairs)
                sel = np.array([row[id(p)] for p in selection])
                held = np.array([row[id(p)] for p in held_out])
                acts = (s[sel], c[sel], s[held], c[held])
                best = scoring.evaluate(*acts, top=1, seed=sae.seed)
                floor = scoring.floor_frc(*acts, seed=sae.seed)
                frc, low = (best[0]["frc"], best[0]["frc_low"]) if best else (0.0, 0.0)
                found[name].append((feature.name, frc, low > floor, floor, by_span))
        seconds = time.monotonic() - started
        print(f"\n{sae.model_name}@{sae.slug} (layer {sae.layer}): {len(features)} features, {seconds:.0f} s")
        for name, rows in found.items():
            frc = [r[1] for r in rows]
            q = statistics.quantiles(frc, n=4)
            print(
                f"  {name:9}: held-out FRC median {median(frc)}, quartiles {q[0]:.2f}-{q[2]:.2f}, min {min(frc):.2f}, "
                f"share >= 0.8 {share([x >= 0.8 for x in frc])}, interval clear of the floor "
                f"{share([r[2] for r in rows])}, floor median {median([r[3] for r in rows])}"
            )
        lowest = sorted((r for r in found["as scored"] if r[4]), key=lambda r: r[1])[:6]
        print("  lowest held out by span: " + ", ".join(f"{r[0]} {r[1]:.2f} (floor {r[3]:.2f})" for r in lowest))


def report(job_id: int | None) -> None:
    from apps.jobs.models import Job
    from apps.lingualens import default_set
    from apps.lingualens.models import FeatureScore, Latent, LinguisticFeature
    from apps.lingualens.pair_split import MAX_PAIRS, splits_by_span

    job = Job.objects.get(pk=job_id) if job_id else default_set.latest_job()
    if job is None:
        print("no default set in this database: run make up, or --run-small")
        return
    run, saes = default_set.set_objects(job)
    # How scoring split each feature's pairs (pair_split.py): by span, held-out FRC asks about new words.
    split_kinds = {
        feature.pk: splits_by_span(list(feature.pairs.all()[:MAX_PAIRS]))
        for feature in LinguisticFeature.objects.prefetch_related("pairs")
    }
    print(
        f"set of job {job.pk}: {run.model_name}, {run.n_tokens:,} tokens ({len(run.corpus.texts):,} texts), "
        f"layers {run.layers}; collection {run.seconds or 0:.0f} s = {run.n_tokens / max(run.seconds or 1, 1):,.0f} "
        "tokens/s for all layers"
    )
    for sae in saes:
        best = list(FeatureScore.objects.filter(sae=sae, rank=0).select_related("feature"))
        held = [s.frc for s in best]
        above = [s.floor_frc is not None and s.frc > s.floor_frc for s in best]
        clear = [bool(s.beats_floor) for s in best]
        floors = [s.floor_frc for s in best if s.floor_frc is not None]
        with_fic = [s for s in best if s.fic_detail.get("controls")]
        gaps = [(s.fic_detail["enhance_gap"] + s.fic_detail["ablate_gap"]) / 2 for s in with_fic]
        gaps_clear = [(s.fic_detail["enhance_gap"] + s.fic_detail["ablate_gap"]) / 2 for s in with_fic if s.beats_floor]
        # Each half apart: enhancement moves the preference by nats, ablating one latent among k
        # active ones barely does (its span is predicted before it fires), so its gap is noise.
        enhance_clear = [s.fic_detail["enhance_gap"] for s in with_fic if s.beats_floor]
        ablate_clear = [s.fic_detail["ablate_gap"] for s in with_fic if s.beats_floor]
        explained = list(Latent.objects.filter(sae=sae).exclude(explanation=""))
        detection = [lat.explanation_score for lat in explained if lat.explanation_score is not None]
        control = [lat.explanation_detail["control"] for lat in explained if "control" in lat.explanation_detail]
        accuracy = [
            lat.explanation_detail["balanced_accuracy"]
            for lat in explained
            if "balanced_accuracy" in lat.explanation_detail
        ]
        accuracy_control = [
            lat.explanation_detail["control_balanced_accuracy"]
            for lat in explained
            if "control_balanced_accuracy" in lat.explanation_detail
        ]
        paired = [
            lat.explanation_score - lat.explanation_detail["control"]
            for lat in explained
            if lat.explanation_score is not None and "control" in lat.explanation_detail
        ]
        m = sae.metrics
        print(f"\n{sae.model_name}@{sae.slug} (layer {sae.layer}, width {sae.width}, k {sae.k}):")
        print(
            f"  reconstruction: explained variance {m.get('explained_variance', 0):.3f}, L0 {m.get('l0', 0):.1f}, "
            f"dead {m.get('dead_share', 0):.1%}, CE loss recovered {m.get('ce_recovered', 0):.3f}"
        )
        if held:
            print(
                f"  held-out FRC of each feature's best latent ({len(held)} features): median {median(held)}, "
                f"quartiles {statistics.quantiles(held, n=4)[0]:.2f}-{statistics.quantiles(held, n=4)[2]:.2f}, "
                f"min {min(held):.2f}, max {max(held):.2f}, share >= 0.8 {share([x >= 0.8 for x in held])}"
            )
            print(
                f"  random floor median {median(floors)}; above it {share(above)}; interval clear of it {share(clear)}"
            )
            for by_span, label in ((True, "held out by span"), (False, "held out by pair (under 4 marked spans)")):
                kind = [s for s in best if split_kinds[s.feature_id] == by_span]
                frc, kind_clear = [s.frc for s in kind], [bool(s.beats_floor) for s in kind]
                if len(frc) > 1:
                    quartiles = statistics.quantiles(frc, n=4)
                    print(
                        f"    {label}, {len(frc)} features: median {median(frc)}, quartiles "
                        f"{quartiles[0]:.2f}-{quartiles[2]:.2f}, min {min(frc):.2f}, share >= 0.8 "
                        f"{share([x >= 0.8 for x in frc])}, clear of the floor {share(kind_clear)}"
                    )
            print(
                f"  FIC gap over random directions (nats, mean of enhance and ablate): median {median(gaps, '+.3f')}; "
                f"where the latent clears the floor: median {median(gaps_clear, '+.3f')} "
                f"(positive {share([g > 0 for g in gaps_clear])})"
            )
            print(
                f"    enhancement gap there: median {median(enhance_clear, '+.3f')} "
                f"(positive {share([g > 0 for g in enhance_clear])}); ablation gap: median "
                f"{median(ablate_clear, '+.3f')} (positive {share([g > 0 for g in ablate_clear])})"
            )
        print(
            f"  explanations: {len(explained)}; detection AUC median {median(detection)} vs shuffled-explanation "
            f"control {median(control)}; own minus control median {median(paired, '+.3f')}, own above control "
            f"{share([d > 0 for d in paired])}; balanced accuracy median {median(accuracy)} vs control "
            f"{median(accuracy_control)}"
        )
        train_rate = sae.steps_done * sae.batch_size / max(sae.train_seconds or 1, 1)
        print(
            f"  time: training {sae.train_seconds or 0:.0f} s ({train_rate:,.0f} tokens/s), metrics + statistics "
            f"{m.get('stats_seconds', 0):.0f} s, scoring {m.get('score_seconds', 0):.0f} s, "
            f"explanations {m.get('explain_seconds', 0):.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", action="store_true")
    parser.add_argument("--run-small", action="store_true")
    parser.add_argument("--tokens", type=int, default=None)
    parser.add_argument("--explain", type=int, default=12, help="latents explained per SAE with --run-small")
    parser.add_argument("--job", type=int, default=None)
    parser.add_argument("--layers", type=int, nargs="+", default=None, help="layers of the --run-small set")
    parser.add_argument("--no-scores", action="store_true", help="--run-small without catalogue scoring")
    parser.add_argument("--reexplain", action="store_true", help="explain a stored set again (--explain latents)")
    parser.add_argument("--compare-splits", action="store_true", help="held-out FRC split by pair and by span")
    args = parser.parse_args()

    import django

    django.setup()
    if args.rates:
        rates(args.tokens or 30_000)
        return
    job_id = args.job
    if args.run_small:
        job_id = run_small(args.tokens or 150_000, args.explain, args.layers, args.no_scores)
    elif args.reexplain:
        reexplain(job_id, args.explain, args.layers)
    elif args.compare_splits:
        compare_splits(job_id, args.layers)
        return
    report(job_id)


if __name__ == "__main__":
    main()
