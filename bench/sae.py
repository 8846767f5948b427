"""LinguaLens throughput on the packaged Gemma-3-270m, one layer, CPU:

1. activation collection (tokens/s): residual stream after one decoder layer, batched, the
   forward pass stopped after that layer (LinguaLens' activation run);
2. TopK SAE training (tokens/s) with LinguaLens' own trainer on the stored activations;
3. the same SAE configuration trained by sae-lens directly (it runs the model for its activations
   as it trains), side by side, with the ratio.

    DJANGO_SETTINGS_MODULE=config.settings .venv/bin/python bench/sae.py [--layer 6] [--width 4096] [--k 32]
        [--tokens 50000] [--skip-sae-lens]

Prints figures; asserts nothing (speed targets are not tests).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def corpus_texts() -> list[str]:
    data = ROOT / "apps" / "lingualens" / "data"
    texts = [json.loads(line)["text"] for line in (data / "default_corpus.jsonl").read_text().splitlines() if line]
    for line in (data / "catalogue.jsonl").read_text().splitlines():
        texts += [pair["sentence"] for pair in json.loads(line)["pairs"]]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=50_000, help="training tokens for both trainers")
    parser.add_argument("--batch", type=int, default=4096, help="training batch in tokens (sae-lens' default 4096)")
    parser.add_argument("--skip-sae-lens", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    import numpy as np
    import torch

    from apps.inference.registry import converted_dir, get_model
    from apps.inference.services import load_backend
    from apps.lingualens import pipeline
    from apps.lingualens import sae as sae_lib

    spec = get_model("gemma3-270m")
    backend = load_backend(spec)
    texts = corpus_texts()
    print(f"torch threads: {torch.get_num_threads()}  layer {args.layer}  width {args.width}  k {args.k}")

    # 1. activation collection
    started = time.perf_counter()
    chunks = []
    for start in range(0, len(texts), pipeline.BATCH):
        batch = pipeline.encode_batch(backend, texts[start : start + pipeline.BATCH], 64)
        hidden = pipeline.capture_layers(backend, batch, [args.layer])[args.layer]
        for row, length in enumerate(batch.lengths):
            chunks.append(hidden[row, 1:length].numpy().astype(np.float16))
    acts = np.concatenate(chunks)
    collect_seconds = time.perf_counter() - started
    collect_rate = len(acts) / collect_seconds
    print(
        f"activations: {len(acts)} tokens ({len(texts)} texts) in {collect_seconds:.1f}s = {collect_rate:,.0f} tokens/s"
    )

    # 2. LinguaLens' trainer on the stored activations
    cfg = sae_lib.TrainConfig(width=args.width, k=args.k, training_tokens=args.tokens, batch_size=args.batch)
    state = sae_lib.new_state(acts, cfg)
    started = time.perf_counter()
    sae_lib.train_steps(acts, cfg, state)
    train_seconds = time.perf_counter() - started
    train_rate = cfg.steps * cfg.batch_size / train_seconds
    metrics = sae_lib.reconstruction_metrics(sae_lib.folded(state), acts[-4000:])
    print(
        f"LinguaLens SAE training: {cfg.steps} steps x {cfg.batch_size} in {train_seconds:.1f}s = "
        f"{train_rate:,.0f} tokens/s (explained variance {metrics['explained_variance']:.3f}, L0 {metrics['l0']:.1f})"
    )
    # One pass over fresh text costs collection + training; later epochs reuse stored activations.
    combined = 1 / (1 / collect_rate + 1 / train_rate)
    print(f"LinguaLens fresh tokens (collect + train): {combined:,.0f} tokens/s")

    if args.skip_sae_lens:
        return
    # 3. sae-lens, same SAE configuration, on the same texts (it streams activations from the model).
    import datasets
    from sae_lens import (
        LanguageModelSAERunnerConfig,
        LanguageModelSAETrainingRunner,
        LoggingConfig,
        TopKTrainingSAEConfig,
    )

    runner_cfg = LanguageModelSAERunnerConfig(
        sae=TopKTrainingSAEConfig(d_in=acts.shape[1], d_sae=args.width, k=args.k),
        model_name=str(converted_dir(spec)),
        model_class_name="AutoModelForCausalLM",
        hook_name=f"model.layers.{args.layer}",
        context_size=64,
        training_tokens=args.tokens,
        train_batch_size_tokens=args.batch,
        store_batch_size_prompts=16,
        n_batches_in_buffer=2 * args.batch // 64,  # sae-lens: buffer = this x context_size, >= one batch
        device="cpu",
        lr=cfg.lr,
        logger=LoggingConfig(log_to_wandb=False),
        checkpoint_path=str(ROOT / "var" / "bench-sae-lens"),
        output_path=str(ROOT / "var" / "bench-sae-lens-output"),  # its default writes ./output
        n_checkpoints=0,
        save_final_checkpoint=False,
        verbose=False,
    )
    dataset = datasets.Dataset.from_dict({"text": texts * 4})
    started = time.perf_counter()
    LanguageModelSAETrainingRunner(runner_cfg, override_dataset=dataset).run()
    lens_seconds = time.perf_counter() - started
    lens_rate = args.tokens / lens_seconds
    print(
        f"sae-lens (model forward + training, same SAE config): {args.tokens} tokens in {lens_seconds:.1f}s = "
        f"{lens_rate:,.0f} tokens/s"
    )
    print(
        f"ratio LinguaLens training / sae-lens: {train_rate / lens_rate:.1f}x;  "
        f"LinguaLens collect + train / sae-lens: {combined / lens_rate:.1f}x"
    )


if __name__ == "__main__":
    main()
