import pytest

from apps.lingualens import services
from apps.lingualens.models import SAE, ActivationRun, Corpus, LinguisticFeature

TINY = {"layer": 3, "width": 128, "k": 8, "training_tokens": 30000, "max_tokens_per_text": 24}


@pytest.fixture(scope="session")
def gemma():
    """One loaded Gemma-3-270m for the whole session (the worker's cached backend)."""
    from apps.inference.registry import get_model
    from apps.inference.services import load_backend

    return load_backend(get_model("gemma3-270m"))


@pytest.fixture
def lens_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path  # runs and SAEs are written here, not into the real var/
    return tmp_path / "lingualens"


@pytest.fixture
def catalogue(db):
    services.load_default_catalogue()
    return LinguisticFeature.objects.all()


@pytest.fixture
def tiny_corpus(catalogue):
    """A few dozen texts: passages plus the pairs of the passive and 把 features."""
    texts = list(services.DEFAULT_CORPUS_PATH.read_text(encoding="utf-8").splitlines())[:0]
    default = services.ensure_default_corpus()
    texts = default.texts[:20]
    for name in ("Passive voice", "把 construction"):
        for pair in LinguisticFeature.objects.get(name=name).pairs.all()[:10]:
            texts += [pair.sentence, pair.counterfactual]
    return Corpus.objects.create(name="tiny", source="test", texts=texts, n_chars=sum(map(len, texts)))


@pytest.fixture
def tiny_sae(researcher, tiny_corpus, lens_dir, gemma, django_capture_on_commit_callbacks):
    """An SAE trained on the tiny corpus by the real pipeline (the job's Celery send is not run)."""
    from apps.lingualens.pipeline import train_job

    sae = services.start_training(researcher, tiny_corpus, **TINY)
    train_job(sae.job, backend=gemma)
    return SAE.objects.select_related("run").get(pk=sae.pk)


__all__ = ["ActivationRun"]
