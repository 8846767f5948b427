import json
from pathlib import Path

import pytest
from django.utils import timezone

from apps.kbqa import kb_format, kopl, services
from apps.kbqa.builders import DATA_DIR
from apps.kbqa.models import ParserModel

TESTS_DATA = Path(__file__).parent / "data"


def step(function: str, dependencies: list[int] | None = None, *inputs: str) -> dict:
    return {"function": function, "dependencies": dependencies or [], "inputs": list(inputs)}


@pytest.fixture
def tiny_data() -> dict:
    return json.loads((TESTS_DATA / "tiny_kb.json").read_text())


@pytest.fixture
def tiny_kb(db, tiny_data):
    return services.import_kb(None, "tiny", tiny_data, title="Tiny")


@pytest.fixture(scope="session")
def geo_kb(django_db_setup, django_db_blocker):
    """The shipped geo KB, imported once per session from apps/kbqa/data/geo.json (kept in the
    test database across tests, so its engine is built once)."""
    data = json.loads((DATA_DIR / "geo.json").read_text(encoding="utf-8"))
    with django_db_blocker.unblock():
        kb = services.import_kb(None, "geo", data, title="World geography", replace=True)
    yield kb
    with django_db_blocker.unblock():
        kb.delete()


def ontology_of(name: str):
    """The ontology of a shipped KB, built without the database (for parser unit tests)."""
    from apps.kbqa.ontology import Ontology

    data = json.loads((DATA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return Ontology(kopl.AtriumKoPLEngine(kb_format.normalize_kb(data)))


@pytest.fixture(scope="session")
def geo_onto():
    return ontology_of("geo")


@pytest.fixture(scope="session")
def elements_onto():
    return ontology_of("elements")


@pytest.fixture(scope="session")
def geo_examples(geo_onto):
    from apps.kbqa.questions import generate_examples

    return generate_examples(geo_onto, 1200, seed=0, wordings="train").examples


@pytest.fixture(scope="session")
def sketch_classifier(geo_onto, geo_examples):
    """A sketch parser trained on generated geo pairs only (real MiniLM embeddings)."""
    from apps.kbqa.parser import train_sketch_classifier

    return train_sketch_classifier([e.question for e in geo_examples], [e.sketch for e in geo_examples], geo_onto)


@pytest.fixture
def geo_parser(geo_kb, sketch_classifier, researcher):
    """A ready parser row holding the session's geo-trained sketch classifier."""
    return ParserModel.objects.create(
        source_kb=geo_kb,
        created_by=researcher,
        trained_at=timezone.now(),
        classifier=sketch_classifier.as_json(),
        metrics={"train_size": 1000, "test_size": 200, "sketch_accuracy": 0.97},
    )
