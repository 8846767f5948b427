"""The assistant model served by the real llama.cpp server (apps.inference.serve) with the real
Qwen2.5-Coder-1.5B GGUF, reached through the openai backend: the path every system takes."""

import os
import signal
import threading
import time

import httpx
import jsonschema
import psutil
import pytest
from django.conf import settings

from apps.inference.backends import GenerationParams, InferenceError, PromptTooLong
from apps.inference.backends.openai_backend import OpenAIBackend
from apps.inference.registry import model_for_role
from tests.live import free_port
from tests.llama import start_llama

pytestmark = pytest.mark.model

COUNT = [{"role": "user", "content": "Count from 1 to 30, separated by commas."}]


def greedy(max_tokens: int, **more) -> GenerationParams:
    return GenerationParams(temperature=0, max_tokens=max_tokens, seed=7, **more)


@pytest.fixture(scope="module")
def assistant(assistant_server) -> OpenAIBackend:
    spec = model_for_role("assistant")
    assert spec.base_url == assistant_server.url
    return OpenAIBackend(spec)


def slots_busy(server_url: str, max_tokens: int | None = None) -> int:
    """Slots generating now (only those of requests with this max_tokens, when given: a server
    shared with other work during development has other requests in flight)."""
    slots = httpx.get(server_url.removesuffix("/v1") + "/slots", timeout=5).json()
    return sum(
        1
        for slot in slots
        if slot.get("is_processing") and (max_tokens is None or slot["params"].get("max_tokens") == max_tokens)
    )


def test_the_assistant_role_is_the_served_model(assistant_server):
    spec = model_for_role("assistant")
    assert spec.backend == "openai"
    assert spec.name == settings.ASSISTANT_MODEL_NAME
    models = httpx.get(assistant_server.url + "/models", timeout=5).json()
    assert models["data"], models


def test_streaming_gives_the_same_text_as_a_whole_answer(assistant):
    pieces = list(assistant.chat(COUNT, greedy(24)))
    assert len(pieces) > 5  # streamed token by token, not in one piece
    whole = assistant.chat_result(COUNT, greedy(24))
    assert "".join(pieces) == whole.text
    assert whole.text.startswith("1, 2, 3")
    assert whole.completion_tokens == 24
    assert whole.finish_reason == "length"
    assert whole.prompt_tokens > 10


def test_stop_strings_end_the_text_before_them(assistant):
    text = "".join(assistant.chat(COUNT, greedy(40, stop=[", 5"])))
    assert text.startswith("1, 2, 3, 4")
    assert "5" not in text


def test_cancel_stops_generation_in_the_server(assistant, assistant_server):
    produced: list[str] = []
    for piece in assistant.chat(COUNT, greedy(397), should_stop=lambda: len(produced) >= 3):
        produced.append(piece)
    assert 3 <= len(produced) < 10
    # The closed connection frees the slot: the server stops generating, it does not finish 397 tokens.
    deadline = time.monotonic() + 5
    while slots_busy(assistant_server.url, 397) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert slots_busy(assistant_server.url, 397) == 0


def test_json_schema_constrains_the_answer(assistant):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population_millions": {"type": "number"}},
        "required": ["city", "population_millions"],
        "additionalProperties": False,
    }
    messages = [{"role": "user", "content": "Name the capital of France and its population in millions."}]
    value = assistant.generate_json(messages, schema=schema, params=greedy(60))
    jsonschema.validate(value, schema)
    assert "Paris" in value["city"]
    choice = assistant.generate_json(
        [{"role": "user", "content": "Is the sea salty? Answer yes or no."}], choices=["yes", "no"]
    )
    assert choice == "yes"


def test_log_probabilities_of_each_token(assistant):
    result = assistant.chat_result(
        [{"role": "user", "content": "What is 2 + 2? Answer with the number only."}], greedy(4), top_logprobs=5
    )
    assert result.text.strip().startswith("4")
    token, logprob, alternatives = result.logprobs[0]
    assert token.strip() == "4"
    assert -1.0 < logprob <= 0.0
    assert len(alternatives) == 5
    assert all(value <= 0 for value in alternatives.values())
    assert result.mean_entropy() is not None
    assert result.mean_entropy() >= 0


def test_token_counts_use_the_servers_tokenizer(assistant):
    assert assistant.count_tokens("hello world") == 2
    assert assistant.count_tokens("你好，世界") < len("你好，世界") + 1


def test_a_conversation_too_long_for_the_context_is_a_clear_error(assistant):
    huge = [{"role": "user", "content": "word " * (settings.ASSISTANT_CONTEXT_LENGTH + 500)}]
    with pytest.raises(PromptTooLong, match="too long"):
        "".join(assistant.chat(huge, greedy(8)))


def test_parallel_slots_answer_at_once(assistant, assistant_server):
    """Four requests are decoded together in the server's slots, not one after another
    (the speed-up is measured by bench/inference.py, not asserted here)."""
    results: list[str] = []

    def ask() -> None:
        results.append("".join(assistant.chat(COUNT, greedy(47))))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    most_busy = 0
    while any(thread.is_alive() for thread in threads):
        most_busy = max(most_busy, slots_busy(assistant_server.url, 47))
        time.sleep(0.05)
    assert len(results) == 4
    assert all(text.startswith("1, 2") for text in results)
    assert most_busy >= 2


def test_a_killed_server_is_restarted_and_a_request_in_flight_fails_cleanly(tmp_path):
    """The supervisor (what `make up` runs) starts the llama.cpp child again after it dies."""
    server = start_llama(tmp_path, free_port(), supervised=True, parallel=1)
    try:
        backend = OpenAIBackend(
            model_for_role("assistant").__class__(
                **{**model_for_role("assistant").__dict__, "base_url": server.url, "source": server.url}
            ),
            timeout=30,
        )
        assert "".join(backend.chat(COUNT, greedy(4)))
        child = psutil.Process(server.process.pid).children()[0]
        failure: list[Exception] = []

        def ask() -> None:
            try:
                "".join(backend.chat(COUNT, greedy(300)))
            except InferenceError as exc:
                failure.append(exc)

        asking = threading.Thread(target=ask)
        asking.start()
        time.sleep(1.0)
        os.kill(child.pid, signal.SIGKILL)
        asking.join(timeout=30)
        assert not asking.is_alive()  # no hang
        assert failure
        assert "model server" in str(failure[0])
        deadline = time.monotonic() + 90
        while True:
            try:
                text = "".join(backend.chat(COUNT, greedy(4)))
                break
            except InferenceError:
                assert time.monotonic() < deadline, server.log()[-2000:]
                time.sleep(1)
        assert text.startswith("1")
        assert "starting it again" in server.log()
    finally:
        server.stop()
