import os

import pytest
import redis
from django.conf import settings

from tests.factories import TEST_PASSWORD, CohortFactory, UserFactory
from tests.live import free_port, start_stack
from tests.llama import reuse_llama, start_llama


@pytest.fixture(scope="session", autouse=True)
def clean_redis():
    """Tests own their Redis database: start from empty so no stale tasks run."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture
def password() -> str:
    return TEST_PASSWORD


@pytest.fixture
def student(db):
    return UserFactory(username="alice", role="student")


@pytest.fixture
def teacher(db):
    return UserFactory(username="tess", role="teacher")


@pytest.fixture
def researcher(db):
    return UserFactory(username="rhea", role="researcher")


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ada", role="admin")


@pytest.fixture
def cohort(teacher):
    return CohortFactory(teacher=teacher, name="Physics 9B")


@pytest.fixture
def client_for(client):
    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture(scope="session")
def assistant_server(tmp_path_factory):
    """The real llama.cpp server with the real assistant model, once per session. This process
    and every process started after it (live stacks) reach it as the `assistant` role."""
    from django.core.management import call_command

    from apps.inference.registry import all_models

    reuse = os.environ.get("ATRIUM_TEST_LLAMA_URL")
    if reuse:
        server = reuse_llama(reuse)
    else:
        call_command("prepare_models", model=[settings.ASSISTANT_MODEL_NAME])  # joined once under var/models
        server = start_llama(tmp_path_factory.mktemp("llama"), free_port())
    saved = {key: os.environ.get(key) for key in server.env()}
    os.environ.update(server.env())
    settings.LLAMA_SERVER_URL, settings.OPENAI_BASE_URL = server.url, ""
    all_models.cache_clear()
    yield server
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def live_stack_session(django_db_setup, django_db_blocker, tmp_path_factory, assistant_server):
    """Real daphne + a real Celery worker against the test database, once per session; the
    worker reaches the session's llama.cpp server as the assistant."""
    from django.core.management import call_command

    call_command("prepare_models", model=["smollm2-135m"])  # converted once, cached under var/models
    stack = start_stack(tmp_path_factory.mktemp("live"))
    yield stack
    stack.stop()


@pytest.fixture
def live_stack(live_stack_session, transactional_db):
    """The session's live stack for one test. Depending on transactional_db makes this teardown
    run before the database is flushed: it waits for what the test set going in the worker."""
    yield live_stack_session
    live_stack_session.wait_until_idle()


def pytest_collection_modifyitems(config, items):
    """Browser tests run last: Playwright's sync API keeps an event loop in the main
    thread while the browser is open, and async_to_sync refuses to run beside it."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
