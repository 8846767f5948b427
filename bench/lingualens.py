"""LinguaLens scores and steering on the packaged Gemma-3-270m, CPU, no database:

1. activations of one layer over the default corpus (its passages and the catalogue's sentences);
2. a TopK SAE trained on them (cached under var/bench/lingualens/ for --reuse);
3. scoring against every catalogue feature with scoring.py: latents chosen on half the pairs,
   held-out FRC (median, share >= 0.8, share above the random floor, share whose interval clears
   it), the selection-half FRC beside it (the old, biased figure), FIC and its gap over the
   random-direction controls;
4. a steering sweep: strength in multiples of each latent's typical top activation; fluency is
   the mean log-probability per token of the steered continuation under the clean model, against
   the plain continuation (same prompt, greedy), and how often the text changed at all.

    .venv/bin/python bench/lingualens.py [--layer 6] [--width 2048] [--k 32] [--tokens 300000]
        [--reuse] [--features N] [--skip-steering]

Prints figures; asserts nothing.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPTS = ["The weather today is", "My favourite book is about", "今天我们去"]
MULTIPLIERS = [0.5, 1, 2, 4, 8]


def catalogue() -> list[dict]:
    path = ROOT / "apps" / "lingualens" / "data" / "catalogue.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def corpus_texts(features: list[dict]) -> list[str]:
    data = ROOT / "apps" / "lingualens" / "data" / "default_corpus.jsonl"
    texts = [json.loads(line)["text"] for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]
    for feature in features:
        for pair in feature["pairs"]:
            texts += [pair["sentence"], pair["counterfactual"]]
    return texts


def pct(values, share) -> str:
    return f"{100 * share:.0f}% ({round(share * len(values))}/{len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=300_000)
    parser.add_argument("--reuse", action="store_true", help="load the cached SAE if there is one")
    parser.add_argument("--features", type=int, default=0, help="score only the first N features")
    parser.add_argument("--skip-steering", action="store_true")
    parser.add_argument("--skip-scoring", action="store_true", help="steering sweep on the densest latents only")
    args = parser.parse_args()

    import django

    django.setup()
    import numpy as np
    import torch

    from apps.inference.registry import get_model
    from apps.inference.services import build_params, load_backend
    from apps.lingualens import pipeline, scoring
    from apps.lingualens import sae as sae_lib

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    features = catalogue()
    if args.features:
        features = features[: args.features]
    timings = {}
    backend = load_backend(get_model("gemma3-270m"))
    folder = ROOT / "var" / "bench" / "lingualens" / f"L{args.layer}-w{args.width}-k{args.k}-t{args.tokens}"

    started = time.monotonic()
    texts = corpus_texts(catalogue())
    chunks = []
    for start in range(0, len(texts), pipeline.BATCH):
        batch = pipeline.encode_batch(backend, texts[start : start + pipeline.BATCH], 64)
        hidden = pipeline.capture_layers(backend, batch, [args.layer])[args.layer]
        for row, length in enumerate(batch.lengths):
            chunks.append(hidden[row, 1:length].cpu().numpy())
    acts = np.concatenate(chunks).astype(np.float32)
    timings["activations"] = time.monotonic() - started
    print(f"activations: {len(texts)} texts, {len(acts)} tokens, layer {args.layer}: {timings['activations']:.0f} s")

    started = time.monotonic()
    if args.reuse and (folder / "cfg.json").exists():
        model = sae_lib.TopKSAE.load(folder)
        print(f"SAE: reused {folder.relative_to(ROOT)}")
    else:
        cfg = sae_lib.TrainConfig(width=args.width, k=args.k, training_tokens=args.tokens)
        state = sae_lib.train_steps(acts, cfg, sae_lib.new_state(acts, cfg))
        model = sae_lib.folded(state)
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder, {"hook_name": f"model.layers.{args.layer}", "model_name": "gemma3-270m"})
    timings["training"] = time.monotonic() - started
    metrics = sae_lib.reconstruction_metrics(model, acts[-4000:])
    print(
        f"SAE: width {args.width}, k {args.k}, {args.tokens} tokens: {timings['training']:.0f} s, "
        f"explained variance {metrics['explained_variance']:.3f}, dead {metrics['dead_share']:.1%}"
    )

    # Each latent's scale: the median of its 10 highest activations on the corpus (steering unit).
    with torch.no_grad():
        peaks = torch.zeros(10, model.d_sae)
        for start in range(0, len(acts), 4096):
            encoded = model.encode(torch.from_numpy(acts[start : start + 4096]))
            peaks = torch.cat([peaks, encoded]).topk(10, dim=0).values
        scale = peaks.median(0).values.numpy()
        density = np.zeros(model.d_sae)
        for start in range(0, len(acts), 4096):
            density += (model.encode(torch.from_numpy(acts[start : start + 4096])) > 0).sum(0).numpy()
        density /= len(acts)

    started = time.monotonic()
    held, chosen, floors, beats, clear, fics, gaps, best_latents = [], [], [], [], [], [], [], []
    for feature in [] if args.skip_scoring else features:
        pairs = [scoring.PairText(p["sentence"], p["counterfactual"], p["span"]) for p in feature["pairs"]]
        found = scoring.score_feature(backend, model, args.layer, pairs)
        if not found["rows"]:
            print(f"  {feature['name']}: no latent rises on the selection pairs")
            continue
        best = found["rows"][0]
        held.append(best["frc"])
        chosen.append(best["frc_select"])
        floors.append(found["floor"])
        beats.append(best["frc"] > found["floor"])
        clear.append(best["frc_low"] > found["floor"])
        best_latents.append(best["latent"])
        fic = scoring.fic_score(
            backend, model, args.layer, best["latent"], found["held_out"][:8], 2 * float(scale[best["latent"]] or 1)
        )
        fics.append(fic["fic"])
        gaps.append((fic["enhance_gap"] + fic["ablate_gap"]) / 2)
        print(
            f"  {feature['language']}/{feature['name'][:28]:28} latent {best['latent']:5} "
            f"FRC held-out {best['frc']:.2f} [{best['frc_low']:.2f}, {best['frc_high']:.2f}] "
            f"chosen-on {best['frc_select']:.2f} floor {found['floor']:.2f} FIC {fic['fic']:.2f} "
            f"gap {gaps[-1]:+.2f} ({len(found['selection'])}+{len(found['held_out'])} pairs)"
        )
    timings["scoring"] = time.monotonic() - started
    if held:
        print(f"\nscoring: {len(held)} features in {timings['scoring']:.0f} s")
        print(
            f"  held-out FRC of the best latent: median {statistics.median(held):.3f}, "
            f"min {min(held):.2f}, max {max(held):.2f}, share >= 0.8: {pct(held, np.mean(np.array(held) >= 0.8))}"
        )
        print(f"  FRC on the pairs it was chosen on (the old figure): median {statistics.median(chosen):.3f}")
        print(f"  random floor (held-out FRC of the best random direction): median {statistics.median(floors):.3f}")
        print(f"  above the floor: {pct(held, np.mean(beats))}; interval clear of it: {pct(held, np.mean(clear))}")
        print(
            f"  FIC median {statistics.median(fics):.2f}; "
            f"gap over random controls (nats) median {statistics.median(gaps):+.3f}"
        )
        beating = [g for g, c in zip(gaps, clear, strict=True) if c]
        if beating:
            print(f"  FIC gap where the latent clears the floor: median {statistics.median(beating):+.3f}")

    if args.skip_steering:
        return
    started = time.monotonic()
    dense = [int(i) for i in np.argsort(-density)[:3]]
    # Then the best latents of features, or (without scoring) three live latents at random.
    others = list(dict.fromkeys(best_latents)) or [
        int(i) for i in np.random.default_rng(0).permutation(np.flatnonzero(density > 0))
    ]
    latents = dense + [i for i in others if i not in dense][:3]
    spec = get_model("gemma3-270m")
    params = build_params(spec, {"temperature": 0, "max_tokens": 24, "seed": 0})

    def fluency(prompt: str, text: str) -> float:
        full = pipeline.encode_batch(backend, [prompt + text])
        head = pipeline.encode_batch(backend, [prompt])
        total = float(pipeline.sequence_logprobs(backend, full)[0] - pipeline.sequence_logprobs(backend, head)[0])
        return total / max(1, full.lengths[0] - head.lengths[0])

    plain = {prompt: "".join(backend.complete(prompt, params)) for prompt in PROMPTS}
    base = statistics.mean(fluency(p, t) for p, t in plain.items())
    print(f"\nsteering: latents {latents} (3 densest, then best of features or random live), prompts {PROMPTS}")
    print(f"  plain: mean log-prob per token {base:.2f}")
    for multiplier in MULTIPLIERS:
        scores, changed, samples = [], 0, []
        for latent in latents:
            hook = pipeline.steering_hook(
                model, [{"index": latent, "strength": multiplier, "mode": "add", "scale": float(scale[latent])}], False
            )
            for prompt in PROMPTS:
                text = "".join(backend.generate_with_hooks(prompt, params, {args.layer: hook}))
                scores.append(fluency(prompt, text))
                changed += text != plain[prompt]
                samples.append(text)
        print(
            f"  x{multiplier:<4} log-prob/token {statistics.mean(scores):6.2f} (plain {base:.2f}), "
            f"changed {changed}/{len(scores)}; e.g. {samples[0][:60]!r}"
        )
    timings["steering"] = time.monotonic() - started
    print("\ntimes (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()
