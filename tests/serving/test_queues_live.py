"""Interactive work never waits behind batch work: a chat reply from the assistant arrives while
an SAE training job runs, through the real web, workers (one per queue, as in `make up`),
llama.cpp server and models."""

import time

import httpx
import pytest
from django.conf import settings

from apps.accounts.services import create_api_token
from apps.inference.models import Generation
from apps.jobs.models import Job, JobStatus
from apps.jobs.services import cancel_job

pytestmark = [pytest.mark.live, pytest.mark.model, pytest.mark.django_db(transaction=True)]


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_chat_reply_arrives_while_an_sae_trains(live_stack, researcher):
    from apps.lingualens import services as lens

    lens.load_default_catalogue()
    corpus = lens.ensure_default_corpus()
    sae = lens.start_training(
        researcher, corpus, layer=3, width=128, k=8, training_tokens=3_000_000, max_tokens_per_text=24
    )
    training = wait_until(
        lambda: (job := Job.objects.get(pk=sae.job_id)).status == JobStatus.RUNNING and job, 120, "training to start"
    )
    assert training.queue == "batch"
    try:
        _token, raw = create_api_token(researcher, "chat")
        api = httpx.Client(base_url=live_stack.url, headers={"Authorization": f"Bearer {raw}"}, timeout=60)
        created = api.post(
            "/api/generate",
            json={
                "model": settings.ASSISTANT_MODEL_NAME,
                "messages": [{"role": "user", "content": "Name one colour of the sky."}],
                "params": {"temperature": 0, "max_tokens": 12},
            },
        )
        assert created.status_code == 201, created.text
        job_id = created.json()["job_id"]
        chat = wait_until(lambda: (job := Job.objects.get(pk=job_id)).is_finished and job, 180, "the chat reply")
        assert chat.status == JobStatus.SUCCEEDED, chat.error
        assert chat.queue == "interactive"
        assert Generation.objects.get(job_id=job_id).output.strip()
        # The reply did not wait for the training to end: it is still going.
        assert Job.objects.get(pk=sae.job_id).status == JobStatus.RUNNING
    finally:
        cancel_job(Job.objects.get(pk=sae.job_id))
        wait_until(lambda: Job.objects.get(pk=sae.job_id).is_finished, 120, "training to stop")
