"""The inference backends without Django: the transformers backend against the real
SmolLM2-135M on CPU, and the openai backend against a real OpenAI-compatible server in
another process (tests/inference/openai_server.py). The model is tiny: these tests check
mechanics (streaming, seeds, stops, limits, constraints, hooks, errors), not eloquence.

Django-free run (tests/conftest.py needs Django, so leave it out):
    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/inference -p no:django --noconftest -q
They also run inside the whole suite (pytest-django on). The converted model is cached
in $ATRIUM_MODELS_DIR (default var/models); the first run converts it (~25 s)."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from apps.inference.backends import (
    CONVERTED_MARKER,
    GenerationParams,
    InferenceError,
    InvalidParams,
    ModelFilesMissing,
    ModelSpec,
    PromptTooLong,
    ensure_converted,
    get_backend,
    loaded_models,
)
from apps.inference.backends.transformers_backend import CONVERSION_FORMAT
from tests.inference.openai_server import NO_ECHO, SMOLLM2

# The backends import transformers lazily, so this comes before it: a missing model file
# must fail, never reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = Path(os.environ.get("ATRIUM_MODELS_DIR", ROOT / "var" / "models"))
STORY = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
SCAFFOLDS = ["hint", "question", "worked example"]

model = pytest.mark.model  # tests that load real weights


def hook_ids(backend) -> list[set]:
    """The forward hooks on each decoder layer. Compared before and after rather than
    expected empty: transformers keeps hooks of its own there (to record hidden states)."""
    return [set(layer._forward_hooks) for layer in backend.layers]


def greedy(max_tokens: int = 16, **extra) -> GenerationParams:
    return GenerationParams(temperature=0, max_tokens=max_tokens, repetition_penalty=1.2, **extra)


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2, loaded once per session (and per process) from the converted folder.
    One torch thread: this process and the test server share a small, busy machine."""
    return get_backend(SMOLLM2, MODELS_DIR, "cpu", threads=1)


# ---- parameters and model files (no model needed) -------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (GenerationParams(temperature=2.5), "temperature"),
        (GenerationParams(temperature=-0.1), "temperature"),
        (GenerationParams(top_p=0), "top_p"),
        (GenerationParams(top_p=1.1), "top_p"),
        (GenerationParams(max_tokens=0), "max_tokens"),
        (GenerationParams(max_tokens=4097), "max_tokens"),
        (GenerationParams(stop=["a", "b", "c", "d", "e"]), "stop"),
        (GenerationParams(seed="7"), "seed"),
        (GenerationParams(repetition_penalty=0.5), "repetition_penalty"),
    ],
)
def test_invalid_params_name_the_field(params, field):
    with pytest.raises(InvalidParams, match=f"^{field} ") as caught:
        params.validate()
    assert isinstance(caught.value, ValueError)


def test_valid_params_pass():
    params = GenerationParams(temperature=0, top_p=1.0, max_tokens=4096, stop=["a", "b", "c", "d"], seed=3)
    assert params.validate() is params
    assert GenerationParams(temperature=2, top_p=0.01, max_tokens=1).validate()


def test_missing_model_package_says_how_to_prepare(tmp_path):
    spec = ModelSpec(name="ghost", backend="transformers", source="gguf-package:no_such_pkg/x.gguf", context_length=128)
    with pytest.raises(ModelFilesMissing, match="python manage.py prepare_models"):
        ensure_converted(spec, tmp_path)
    with pytest.raises(ModelFilesMissing, match="prepare_models"):
        get_backend(spec, tmp_path)


def test_only_a_complete_conversion_counts(tmp_path):
    """The marker is written last: a folder without it (a killed conversion), or with an
    older format's marker, is converted again; with it, the folder is used as it is."""
    spec = ModelSpec(name="ghost", backend="transformers", source="gguf-package:no_such_pkg/x.gguf", context_length=128)
    folder = tmp_path / "ghost"
    folder.mkdir()
    (folder / "config.json").write_text("{}")  # half-written: no marker
    with pytest.raises(ModelFilesMissing):  # tried to convert again
        ensure_converted(spec, tmp_path)
    (folder / CONVERTED_MARKER).write_text(json.dumps({"format": CONVERSION_FORMAT - 1}))
    with pytest.raises(ModelFilesMissing):
        ensure_converted(spec, tmp_path)
    (folder / CONVERTED_MARKER).write_text(json.dumps({"format": CONVERSION_FORMAT}))
    assert ensure_converted(spec, tmp_path) == folder


def test_local_folder_without_a_model(tmp_path):
    spec = ModelSpec(name="local", backend="transformers", source=str(tmp_path / "nothing"), context_length=128)
    with pytest.raises(ModelFilesMissing, match="not a transformers model folder"):
        ensure_converted(spec, tmp_path)


def test_unknown_backend():
    spec = ModelSpec(name="odd", backend="carrier-pigeon", source="", context_length=1)
    with pytest.raises(InferenceError, match="Unknown backend"):
        get_backend(spec, MODELS_DIR)


# ---- transformers backend on SmolLM2 --------------------------------------------------------


@model
def test_the_model_is_loaded_once_per_process(smollm2):
    assert get_backend(SMOLLM2, MODELS_DIR, "cpu") is smollm2
    assert (SMOLLM2.name, "cpu") in loaded_models()
    marker = json.loads((MODELS_DIR / SMOLLM2.name / CONVERTED_MARKER).read_text())
    assert marker["format"] == CONVERSION_FORMAT


@model
def test_get_backend_is_thread_safe(smollm2):
    found = []
    threads = [threading.Thread(target=lambda: found.append(get_backend(SMOLLM2, MODELS_DIR))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [smollm2] * 4


@model
def test_chat_streams_token_pieces(smollm2):
    pieces = list(smollm2.chat(STORY, greedy(16)))
    assert 2 <= len(pieces) <= 16  # one piece per token, as produced
    assert all(isinstance(piece, str) for piece in pieces)
    assert sum(bool(piece) for piece in pieces) >= 2
    assert "".join(pieces).strip()
    assert "<|im_" not in "".join(pieces)  # special tokens are not text


@model
def test_chat_uses_the_chat_template(smollm2):
    prompt = smollm2.chat_prompt(STORY)
    assert prompt.rstrip().endswith("<|im_start|>assistant")
    assert STORY[0]["content"] in prompt


@model
def test_greedy_and_seeded_sampling_are_reproducible(smollm2):
    assert "".join(smollm2.chat(STORY, greedy(8))) == "".join(smollm2.chat(STORY, greedy(8)))
    sampled = GenerationParams(temperature=1.0, top_p=0.9, max_tokens=8, seed=11)
    assert "".join(smollm2.chat(STORY, sampled)) == "".join(smollm2.chat(STORY, sampled))
    others = {"".join(smollm2.chat(STORY, GenerationParams(temperature=1.2, max_tokens=6, seed=s))) for s in (1, 2, 3)}
    assert len(others) > 1


@model
def test_stop_string_ends_the_text_before_it(smollm2):
    full = "".join(smollm2.chat(STORY, greedy(24)))
    words = full.split()
    stop = words[len(words) // 2]
    stopped = "".join(smollm2.chat(STORY, greedy(24, stop=[stop, "never-appears"])))
    assert stop not in stopped
    assert stopped == full[: full.index(stop)]


@model
def test_max_tokens_is_honoured(smollm2):
    pieces = list(smollm2.complete("Once upon a time", greedy(5)))
    assert len(pieces) == 5
    assert smollm2.count_tokens("".join(pieces)) <= 6  # re-tokenizing may merge or split one


@model
def test_invalid_params_fail_at_the_call(smollm2):
    with pytest.raises(InvalidParams, match="temperature"):
        smollm2.chat(STORY, GenerationParams(temperature=3))  # before any token is asked for
    with pytest.raises(InvalidParams, match="top_p"):
        smollm2.complete("Hi", GenerationParams(top_p=0))
    with pytest.raises(InvalidParams, match="max_tokens"):
        smollm2.generate_with_hooks("Hi", GenerationParams(max_tokens=0), {})


@model
def test_prompt_too_long_counts_max_tokens(smollm2):
    prompt = "sea " * 8100
    prompt_tokens = len(smollm2.encode(prompt))
    room = SMOLLM2.context_length - prompt_tokens
    assert 0 < room < 4096
    smollm2.complete(prompt, greedy(room))  # fits exactly: not run, only checked
    with pytest.raises(PromptTooLong, match="context length of 8192"):
        smollm2.complete(prompt, greedy(room + 1))
    with pytest.raises(PromptTooLong):
        smollm2.chat([{"role": "user", "content": "sea " * 9000}], greedy(8))


@model
def test_score_prefers_the_sensible_continuation(smollm2):
    sensible, nonsense = smollm2.score("The capital of France is", [" Paris", " banana-truck"])
    assert nonsense < sensible < 0
    assert smollm2.score("The capital of France is", []) == []


@model
def test_score_matches_the_token_logprobs(smollm2):
    prompt = "The capital of France is"
    tokens = smollm2.token_logprobs(prompt + " Paris")
    assert tokens[0]["logprob"] is None  # nothing before the first token
    assert tokens[0]["offset"] == 0
    assert [token["offset"] for token in tokens] == sorted(token["offset"] for token in tokens)
    after = sum(token["logprob"] for token in tokens if token["offset"] >= len(prompt))
    assert smollm2.score(prompt, [" Paris"])[0] == pytest.approx(after, abs=1e-3)


@model
def test_generate_json_follows_the_schema(smollm2):
    value = smollm2.generate_json(
        [{"role": "user", "content": "Describe a person as JSON with name and age."}],
        schema=PERSON,
        params=GenerationParams(temperature=0, max_tokens=40),
    )
    jsonschema.validate(value, PERSON)


@model
def test_generate_json_picks_one_of_the_choices(smollm2):
    answer = smollm2.generate_json(
        [{"role": "user", "content": "Which scaffold helps a stuck learner?"}], choices=SCAFFOLDS
    )
    assert answer in SCAFFOLDS
    with pytest.raises(InvalidParams, match="either a schema or a list of choices"):
        smollm2.generate_json(STORY)
    with pytest.raises(InvalidParams, match="choices"):
        smollm2.generate_json(STORY, choices=[])


@model
def test_activations_are_the_residual_stream(smollm2):
    import torch

    results = smollm2.activations(["Hello world", "你好，世界"], [0, 5])
    assert len(results) == 2
    for result in results:
        n_tokens = len(result["tokens"])
        assert n_tokens == len(result["token_ids"]) >= 2
        assert set(result["layers"]) == {0, 5}
        for array in result["layers"].values():
            assert array.shape == (n_tokens, 576)
            assert array.dtype.name == "float16"
    # The last layer's output, through the final norm and the LM head, gives the model's
    # logits: what is captured is the residual stream itself. (Not compared with
    # output_hidden_states: that leaves transformers' own hooks on the layers.)
    last = len(smollm2.layers) - 1
    (result,) = smollm2.activations(["The capital of France is"], [last])
    with torch.inference_mode():
        logits = smollm2.model(input_ids=torch.tensor([result["token_ids"]])).logits[0]
        hidden = torch.from_numpy(result["layers"][last].astype("float32"))
        rebuilt = smollm2.model.lm_head(smollm2.model.model.norm(hidden))
    assert torch.equal(rebuilt.argmax(-1), logits.argmax(-1))
    assert (rebuilt - logits).abs().max() < 0.05 * logits.abs().max()
    with pytest.raises(InvalidParams, match="out of range"):
        smollm2.activations(["x"], [99])


@model
def test_hooks_steer_generation_and_are_removed(smollm2):
    import torch

    prompt = "The weather today is"
    baseline = "".join(smollm2.complete(prompt, greedy(8)))
    before = hook_ids(smollm2)
    calls = []

    def push(hidden: torch.Tensor) -> torch.Tensor:
        calls.append(hidden.shape)
        return hidden + 20 * torch.ones_like(hidden)

    steered = "".join(smollm2.generate_with_hooks(prompt, greedy(8), {3: push}))
    assert steered != baseline
    assert calls
    assert calls[0][-1] == 576
    assert hook_ids(smollm2) == before
    assert "".join(smollm2.complete(prompt, greedy(8))) == baseline


@model
def test_hooks_are_removed_on_error_and_on_early_close(smollm2):
    def broken(hidden):
        raise RuntimeError("hook failed")

    before = hook_ids(smollm2)
    with pytest.raises(RuntimeError, match="hook failed"):
        list(smollm2.generate_with_hooks("Hello", greedy(4), {2: broken}))
    assert hook_ids(smollm2) == before

    stream = smollm2.generate_with_hooks("Hello", greedy(8), {2: lambda hidden: hidden})
    next(stream)
    assert len(smollm2.layers[2]._forward_hooks) == len(before[2]) + 1  # attached while it runs
    stream.close()
    assert hook_ids(smollm2) == before
    with pytest.raises(InvalidParams, match="out of range"):
        smollm2.generate_with_hooks("Hello", greedy(4), {99: broken})


@model
def test_should_stop_cancels_within_a_token(smollm2):
    produced = []
    for piece in smollm2.chat(STORY, greedy(100), should_stop=lambda: len(produced) >= 3):
        produced.append(piece)
    assert len(produced) == 3


@model
def test_model_is_shared_safely_between_threads(smollm2):
    """Two threads generating at once take turns on the model; each gets its own answer."""
    expected = "".join(smollm2.complete("The sea is", greedy(6)))
    results = []
    threads = [
        threading.Thread(target=lambda: results.append("".join(smollm2.complete("The sea is", greedy(6)))))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected, expected]


# ---- openai backend against a real OpenAI-compatible server ---------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def openai_spec(base_url: str, remote_model: str = SMOLLM2.name) -> ModelSpec:
    return ModelSpec(
        name="remote-smollm2",
        backend="openai",
        source=base_url,
        context_length=8192,
        base_url=base_url,
        api_key="test-key",
        remote_model=remote_model,
    )


@pytest.fixture(scope="session")
def openai_server():
    """tests/inference/openai_server.py in its own process, serving SmolLM2; yields its /v1 URL."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ATRIUM_MODELS_DIR": str(MODELS_DIR)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.inference.openai_server", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=180)
        if not ready or not ready[0].startswith("READY "):
            pytest.fail(f"the test OpenAI server did not start (exit code {process.poll()})")
        yield f"http://127.0.0.1:{int(ready[0].split()[1])}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def remote(openai_server):
    from apps.inference.backends.openai_backend import OpenAIBackend

    return OpenAIBackend(openai_spec(openai_server), timeout=120)


@model
def test_openai_chat_streams_the_same_tokens(remote, smollm2):
    pieces = list(remote.chat(STORY, greedy(12)))
    assert len(pieces) >= 2  # streamed, not one block
    # Same model, same greedy decoding on the other side of HTTP.
    assert "".join(pieces) == "".join(smollm2.chat(STORY, greedy(12)))


@model
def test_openai_complete_passes_stop_and_seed(remote, smollm2):
    full = "".join(remote.complete("Once upon a time", greedy(10)))
    stop = full.split()[len(full.split()) // 2]
    assert "".join(remote.complete("Once upon a time", greedy(10, stop=[stop]))) == full[: full.index(stop)]
    sampled = GenerationParams(temperature=1.0, max_tokens=6, seed=5)
    local = "".join(smollm2.complete("Once upon a time", sampled))
    assert "".join(remote.complete("Once upon a time", sampled)) == local


@model
def test_openai_stream_stops_when_asked(remote):
    produced = []
    for piece in remote.chat(STORY, greedy(60), should_stop=lambda: len(produced) >= 2):
        produced.append(piece)
    assert len(produced) == 2


@model
def test_openai_generate_json(remote):
    value = remote.generate_json(
        [{"role": "user", "content": "Describe a person as JSON with name and age."}],
        schema=PERSON,
        params=GenerationParams(temperature=0, max_tokens=40),
    )
    jsonschema.validate(value, PERSON)
    answer = remote.generate_json(
        [{"role": "user", "content": "Which scaffold helps a stuck learner?"}],
        choices=SCAFFOLDS,
        params=GenerationParams(temperature=0, max_tokens=12),
    )
    assert answer in SCAFFOLDS


@model
def test_openai_score(remote, smollm2):
    prompt = "The capital of France is"
    sensible, nonsense = remote.score(prompt, [" Paris", " banana-truck"])
    assert nonsense < sensible < 0
    assert sensible == pytest.approx(smollm2.score(prompt, [" Paris"])[0], abs=1e-2)


@model
def test_openai_server_without_echo_cannot_score(openai_server):
    from apps.inference.backends.openai_backend import OpenAIBackend

    backend = OpenAIBackend(openai_spec(openai_server, NO_ECHO))
    with pytest.raises(InferenceError, match="score not supported by this server"):
        backend.score("The capital of France is", [" Paris"])


@model
def test_openai_errors_from_the_server(openai_server):
    from apps.inference.backends.openai_backend import OpenAIBackend

    unknown = OpenAIBackend(openai_spec(openai_server, "no-such-model"))
    with pytest.raises(InferenceError, match="answered 404"):
        list(unknown.chat(STORY, greedy(4)))
    # Too long for the server's model: its 400 comes back as PromptTooLong, saying so.
    backend = OpenAIBackend(openai_spec(openai_server))
    with pytest.raises(PromptTooLong, match="too long.*context length"):
        list(backend.complete("sea " * 9000, greedy(4)))
    with pytest.raises(PromptTooLong, match="too long.*context length"):
        list(backend.chat([{"role": "user", "content": "sea " * 9000}], greedy(4)))


def test_openai_unreachable_server_is_an_inference_error():
    from apps.inference.backends.openai_backend import OpenAIBackend

    backend = OpenAIBackend(openai_spec(f"http://127.0.0.1:{free_port()}/v1"), timeout=5)
    started = time.monotonic()
    with pytest.raises(InferenceError, match="Cannot reach the model server at http://127.0.0.1"):
        list(backend.chat(STORY, greedy(4)))
    with pytest.raises(InferenceError, match="Cannot reach"):
        backend.score("a", ["b"])
    with pytest.raises(InferenceError, match="Cannot reach"):
        backend.generate_json(STORY, choices=SCAFFOLDS)
    assert time.monotonic() - started < 30
    with pytest.raises(InvalidParams, match="temperature"):
        backend.chat(STORY, GenerationParams(temperature=9))
