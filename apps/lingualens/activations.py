"""Activation runs on disk (run in workers): the residual stream after each of the run's layers
over its corpus, BOS left out, fp16, all layers from one forward pass per batch.

Collection writes shards as it goes (shards/<n>_L<layer>.npy, then shards/<n>.json as the mark
that the shard is whole), so a worker killed mid-run loses at most the texts since the last
shard, and the next attempt resumes after the shards on disk. When every text is done the
shards are joined into acts_L<layer>.npy (written through a memory map, never held twice in
memory) and tokens.json, which is what SAE training, latent statistics and the pages read."""

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from apps.jobs.progress_text import message
from apps.lingualens.models import ActivationRun, RunStatus
from apps.lingualens.progress import ACTIVATIONS
from apps.lingualens.services import run_dir

SHARD_TEXTS = 256  # about 25k tokens of the default set: a minute of collection at most


def load_run_arrays(run: ActivationRun, layer: int, mmap: bool = True) -> tuple[np.ndarray, dict]:
    folder = run_dir(run)
    acts = np.load(folder / f"acts_L{layer}.npy", mmap_mode="r" if mmap else None)
    tokens = json.loads((folder / "tokens.json").read_text(encoding="utf-8"))
    return acts, tokens


def _shards(folder: Path) -> list[Path]:
    """Whole shards (their .json written last), in order; half-written arrays are dropped."""
    shard_dir = folder / "shards"
    if not shard_dir.exists():
        return []
    whole = sorted(shard_dir.glob("[0-9]*[0-9].json"))
    names = {path.stem for path in whole}
    for stray in shard_dir.glob("*.npy"):
        if stray.stem.split("_L")[0] not in names:
            stray.unlink()
    return whole


def _adopt_old_partial(run: ActivationRun, folder: Path) -> None:
    """A run stopped before shards existed kept its partial arrays as the final files: they
    become shard 0, so it resumes like any other."""
    if not run.n_texts_done or (folder / "shards").exists() or not (folder / "tokens.json").exists():
        return
    shard_dir = folder / "shards"
    shard_dir.mkdir()
    for layer in run.layers:
        (folder / f"acts_L{layer}.npy").replace(shard_dir / f"00000_L{layer}.npy")
    (folder / "tokens.json").replace(shard_dir / "00000.json")


def _write_shard(folder: Path, number: int, arrays: dict[int, list[np.ndarray]], tokens: dict) -> None:
    shard_dir = folder / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    for layer, chunks in arrays.items():
        np.save(shard_dir / f"{number:05d}_L{layer}.npy", np.concatenate(chunks))
    tmp = shard_dir / f"{number:05d}.json.tmp"
    tmp.write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    tmp.replace(shard_dir / f"{number:05d}.json")


def _join_shards(run: ActivationRun, folder: Path, shards: list[Path], d_model: int) -> int:
    parts = [json.loads(path.read_text(encoding="utf-8")) for path in shards]
    total = sum(len(part["tokens"]) for part in parts)
    for layer in run.layers:
        tmp = folder / f"acts_L{layer}.tmp.npy"
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(total, d_model))
        at = 0
        for path in shards:
            chunk = np.load(path.with_name(f"{path.stem}_L{layer}.npy"))
            out[at : at + len(chunk)] = chunk
            at += len(chunk)
        out.flush()
        del out
        tmp.replace(folder / f"acts_L{layer}.npy")
    tokens = {key: [value for part in parts for value in part[key]] for key in ("tokens", "doc", "pos", "texts")}
    (folder / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    for path in shards:
        for layer in run.layers:
            path.with_name(f"{path.stem}_L{layer}.npy").unlink(missing_ok=True)
        path.unlink()
    (folder / "shards").rmdir()
    return total


def collect_activations(run: ActivationRun, backend, progress: Callable[[float, str], None]) -> ActivationRun:
    """Residual activations of the run's layers over its corpus. Resumes after the shards on
    disk (a cancelled, failed or killed run keeps what it had written)."""
    from apps.lingualens.pipeline import BATCH, capture_layers, encode_batch

    texts = run.corpus.texts[: run.max_texts]
    folder = run_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    _adopt_old_partial(run, folder)
    shards = _shards(folder)
    meta = [json.loads(path.read_text(encoding="utf-8")) for path in shards]
    done = sum(len(part["texts"]) for part in meta)
    n_tokens = sum(len(part["tokens"]) for part in meta)
    del meta
    if shards and not run.d_model:
        first = shards[0].with_name(f"{shards[0].stem}_L{run.layers[0]}.npy")
        run.d_model = int(np.load(first, mmap_mode="r").shape[1])
    run.status, run.n_texts_done, run.n_tokens = RunStatus.RUNNING, done, n_tokens
    run.save(update_fields=["status", "n_texts_done", "n_tokens", "d_model"])
    seconds_before = run.seconds or 0.0  # collection time of earlier attempts: the measured rate spans them
    started = time.monotonic()
    arrays: dict[int, list[np.ndarray]] = {layer: [] for layer in run.layers}
    pending = {"tokens": [], "doc": [], "pos": [], "texts": []}
    number = len(shards)

    def flush() -> None:
        nonlocal number, arrays, pending
        if not pending["texts"]:
            return
        _write_shard(folder, number, arrays, pending)
        number += 1
        run.n_texts_done += len(pending["texts"])
        run.n_tokens += len(pending["tokens"])
        run.seconds = seconds_before + time.monotonic() - started
        run.save(update_fields=["n_texts_done", "n_tokens", "d_model", "seconds"])
        arrays = {layer: [] for layer in run.layers}
        pending = {"tokens": [], "doc": [], "pos": [], "texts": []}

    try:
        for batch_start in range(done, len(texts), BATCH):
            chunk = texts[batch_start : batch_start + BATCH]
            batch = encode_batch(backend, chunk, run.max_tokens_per_text)
            captured = capture_layers(backend, batch, run.layers)  # every layer, one forward pass
            for row, text in enumerate(chunk):
                doc = batch_start + row
                pending["texts"].append(text)
                ids = batch.ids[row, 1 : batch.lengths[row]].tolist()  # BOS left out
                for pos, token_id in enumerate(ids, 1):
                    pending["tokens"].append(backend.tokenizer.decode([token_id]))
                    pending["doc"].append(doc)
                    pending["pos"].append(pos)
                for layer in run.layers:
                    arrays[layer].append(captured[layer][row, 1 : batch.lengths[row]].cpu().numpy().astype(np.float16))
            run.d_model = int(captured[run.layers[0]].shape[-1])
            if len(pending["texts"]) >= SHARD_TEXTS:
                flush()
            finished = batch_start + len(chunk)
            collected = run.n_tokens + len(pending["tokens"])
            progress(
                finished / len(texts),
                message(ACTIVATIONS, done=finished, total=len(texts), tokens=f"{collected:,}"),
            )
    except BaseException:
        # Cancelled or failed: keep what was collected, marked partial, so it can be resumed.
        flush()
        run.status = RunStatus.PARTIAL
        run.save(update_fields=["status"])
        raise
    flush()
    run.n_tokens = _join_shards(run, folder, _shards(folder), run.d_model)
    run.status = RunStatus.COMPLETE
    run.seconds = seconds_before + time.monotonic() - started
    run.save()
    return run
