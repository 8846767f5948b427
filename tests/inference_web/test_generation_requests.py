"""Validation of generation requests (web side: no model is loaded here)."""

import pytest

from apps.accounts.services import create_api_token
from apps.inference import services
from apps.inference.backends import InvalidParams, ModelNotFound, PromptTooLong
from apps.inference.models import Generation

HELLO = [{"role": "user", "content": "Hello"}]


def test_request_creates_job_and_generation_with_merged_params(researcher):
    job = services.request_generation(researcher, "smollm2-135m", messages=HELLO, params={"max_tokens": 16})
    generation = Generation.objects.get(job=job)
    assert job.queue == "interactive"
    assert generation.params["max_tokens"] == 16
    assert generation.params["repetition_penalty"] == 1.2  # the model's default
    assert generation.prompt_tokens > 0


def test_unknown_model_names_the_known_ones(researcher):
    with pytest.raises(ModelNotFound, match="Known models: qwen2.5-coder-1.5b, smollm2-135m"):
        services.request_generation(researcher, "gpt-17", messages=HELLO)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"temperature": 5}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"top_p": 0}, "top_p"),
        ({"frobnicate": 1}, "frobnicate"),
    ],
)
def test_invalid_params_name_the_field(researcher, params, field):
    with pytest.raises(InvalidParams, match=field):
        services.request_generation(researcher, "smollm2-135m", messages=HELLO, params=params)


def test_prompt_over_context_length_is_refused(researcher):
    long_text = "word " * 9000
    with pytest.raises(PromptTooLong, match="context length of 8192"):
        services.request_generation(researcher, "smollm2-135m", messages=[{"role": "user", "content": long_text}])


def test_bad_messages_are_refused(researcher):
    with pytest.raises(InvalidParams, match=r"messages\[0\].role"):
        services.request_generation(researcher, "smollm2-135m", messages=[{"role": "robot", "content": "x"}])
    with pytest.raises(InvalidParams, match="either messages"):
        services.request_generation(researcher, "smollm2-135m", messages=HELLO, prompt="x")


def test_base_model_needs_a_prompt(researcher):
    with pytest.raises(InvalidParams, match="base model"):
        services.request_generation(researcher, "gemma3-270m", messages=HELLO)


def test_api_errors_are_4xx_with_the_reason(client, researcher):
    _token, raw = create_api_token(researcher, "t")
    headers = {"Authorization": f"Bearer {raw}"}
    response = client.post(
        "/api/generate", {"model": "nope", "messages": HELLO}, content_type="application/json", headers=headers
    )
    assert response.status_code == 404
    assert "Unknown model" in response.json()["detail"]
    response = client.post(
        "/api/generate",
        {"model": "smollm2-135m", "messages": HELLO, "params": {"top_p": 7}},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 422
    assert "top_p" in response.json()["detail"]


def test_students_cannot_generate_through_the_api(client, student):
    _token, raw = create_api_token(student, "t")
    response = client.post(
        "/api/generate",
        {"model": "smollm2-135m", "messages": HELLO},
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 403


def test_another_users_generation_is_404(client_for, researcher, admin_user, django_user_model):
    job = services.request_generation(researcher, "smollm2-135m", messages=HELLO)
    other = django_user_model.objects.create_user(username="other-r", password="x-pass-12345", role="researcher")
    assert client_for(other).get(f"/api/generations/{job.pk}").status_code == 404
    assert client_for(other).get(f"/inference/generations/{job.pk}/").status_code == 404


def test_playground_is_for_researchers_and_admins(client_for, student, teacher, researcher):
    assert client_for(student).get("/inference/playground/").status_code == 403
    assert client_for(teacher).get("/inference/playground/").status_code == 403
    assert client_for(researcher).get("/inference/playground/").status_code == 200


def test_playground_shows_errors_and_keeps_the_input(client_for, researcher):
    response = client_for(researcher).post(
        "/inference/playground/",
        {
            "model": "smollm2-135m",
            "message": "Keep me",
            "temperature": 0.7,
            "top_p": 1,
            "max_tokens": 5000,
            "repetition_penalty": 1.2,
        },
    )
    page = response.content.decode()
    assert "Keep me" in page
    assert "max_tokens" in page or "4096" in page


def test_models_page_is_admin_only(client_for, researcher, admin_user):
    assert client_for(researcher).get("/inference/models/").status_code == 403
    page = client_for(admin_user).get("/inference/models/").content.decode()
    assert 'data-model="smollm2-135m"' in page
    assert 'data-model="gemma3-270m"' in page


def test_models_page_shows_roles_where_each_runs_and_readiness(client_for, admin_user, settings):
    from apps.inference.registry import all_models

    settings.LLAMA_SERVER_URL = "http://127.0.0.1:9/v1"  # nothing listens there
    all_models.cache_clear()
    try:
        page = client_for(admin_user).get("/inference/models/").content.decode()
    finally:
        all_models.cache_clear()
    row = page[page.index(f'data-model="{settings.ASSISTANT_MODEL_NAME}"') :]
    row = row[: row.index("</tr>")]
    assert 'data-ready="no"' in row
    assert "assistant" in row
    assert "server not answering" in row
    assert "127.0.0.1:9/v1" in row
    lens = page[page.index('data-model="gemma3-270m"') :]
    assert ">lens<" in lens[: lens.index("</tr>")]


def test_a_conversation_too_long_is_trimmed_with_a_note(client_for, researcher):
    """The oldest turns give way (the system prompt and the last message stay), and the page says so."""
    long_turn = "a long turn about the sea " * 80  # about 2,000 characters
    messages = [{"role": "system", "content": "Be brief."}]
    for index in range(12):
        messages += [{"role": "user", "content": f"{index} {long_turn}"}, {"role": "assistant", "content": "ok"}]
    messages.append({"role": "user", "content": "And now?"})
    job = services.request_generation(researcher, "smollm2-135m", messages=messages, params={"max_tokens": 4000})
    generation = job.generation
    assert generation.trimmed_messages > 0
    assert generation.messages[0] == {"role": "system", "content": "Be brief."}
    assert generation.messages[-1]["content"] == "And now?"
    assert len(generation.messages) == len(messages) - generation.trimmed_messages
    page = client_for(researcher).get(f"/inference/generations/{job.pk}/").content.decode()
    assert "left out so the conversation fits" in page


def test_openai_endpoint_requires_a_token(client, researcher):
    assert client.get("/v1/models").status_code == 401
    _token, raw = create_api_token(researcher, "t")
    body = client.get("/v1/models", headers={"Authorization": f"Bearer {raw}"}).json()
    assert "smollm2-135m" in [model["id"] for model in body["data"]]


def test_trim_delta_never_repeats_text():
    from apps.inference.live_text import trim_delta

    assert trim_delta(0, 0, "abc") == "abc"
    assert trim_delta(5, 0, "abc") == ""
    assert trim_delta(2, 0, "abcd") == "cd"
    assert trim_delta(4, 4, "ef") == "ef"


def test_waiting_generation_shows_its_queue_position(client_for, researcher):
    services.request_generation(researcher, "smollm2-135m", messages=HELLO)
    second = services.request_generation(researcher, "smollm2-135m", messages=HELLO)
    page = client_for(researcher).get(f"/inference/generations/{second.pk}/").content.decode()
    assert "Position in queue: 2" in page
    body = client_for(researcher).get(f"/api/jobs/{second.pk}").json()
    assert body["queue_position"] == 2
