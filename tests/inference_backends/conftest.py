import pytest
from django.conf import settings


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2 model, loaded once per test session from the cached converted folder."""
    from apps.inference.backends import get_backend
    from apps.inference.registry import SMOLLM2

    return get_backend(SMOLLM2, settings.MODELS_DIR, "cpu")
