"""Every backend operation against the real SmolLM2-135M on CPU. The model is tiny:
these tests check mechanics (streaming, seeds, stops, limits, constraints, hooks),
not the quality of its answers."""

import pytest
import torch

from apps.inference.backends import GenerationParams, InvalidParams, ModelFilesMissing, ModelSpec, PromptTooLong
from apps.inference.backends.transformers_backend import ensure_converted

pytestmark = pytest.mark.model

STORY = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]


def greedy(max_tokens: int = 24, **extra) -> GenerationParams:
    return GenerationParams(temperature=0, max_tokens=max_tokens, repetition_penalty=1.2, **extra)


def test_chat_streams_token_pieces(smollm2):
    pieces = list(smollm2.chat(STORY, greedy(16)))
    assert 2 <= len(pieces) <= 16
    assert "".join(pieces).strip()


def test_greedy_and_seeded_sampling_are_reproducible(smollm2):
    assert "".join(smollm2.chat(STORY, greedy())) == "".join(smollm2.chat(STORY, greedy()))
    sampled = GenerationParams(temperature=1.0, top_p=0.9, max_tokens=24, seed=11)
    assert "".join(smollm2.chat(STORY, sampled)) == "".join(smollm2.chat(STORY, sampled))
    others = {"".join(smollm2.chat(STORY, GenerationParams(temperature=1.0, max_tokens=24, seed=s))) for s in (1, 2, 3)}
    assert len(others) > 1


def test_stop_string_ends_the_text_before_it(smollm2):
    full = "".join(smollm2.chat(STORY, greedy(40)))
    words = full.split()
    stop = words[len(words) // 2]
    stopped = "".join(smollm2.chat(STORY, greedy(40, stop=[stop])))
    assert stop not in stopped
    assert stopped == full[: full.index(stop)]


def test_max_tokens_is_honoured(smollm2):
    pieces = list(smollm2.complete("Once upon a time", greedy(5)))
    assert len(pieces) <= 5
    assert len(smollm2.tokenizer.encode("".join(pieces), add_special_tokens=False)) <= 6


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (GenerationParams(temperature=3), "temperature"),
        (GenerationParams(top_p=0), "top_p"),
        (GenerationParams(max_tokens=0), "max_tokens"),
        (GenerationParams(stop=["a", "b", "c", "d", "e"]), "stop"),
        (GenerationParams(repetition_penalty=0.5), "repetition_penalty"),
    ],
)
def test_invalid_params_name_the_field(smollm2, params, field):
    with pytest.raises(InvalidParams, match=field):
        list(smollm2.chat(STORY, params))


def test_prompt_over_the_context_length(smollm2):
    with pytest.raises(PromptTooLong, match="context length of 8192"):
        list(smollm2.complete("sea " * 8200, greedy(8)))


def test_score_prefers_the_sensible_continuation(smollm2):
    sensible, nonsense = smollm2.score("The capital of France is", [" Paris", " banana-truck"])
    assert sensible > nonsense
    assert sensible < 0


def test_generate_json_follows_the_schema(smollm2):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    value = smollm2.generate_json(
        [{"role": "user", "content": "Describe a person as JSON with name and age."}],
        schema=schema,
        params=GenerationParams(temperature=0, max_tokens=60),
    )
    assert isinstance(value["name"], str)
    assert isinstance(value["age"], int)


def test_generate_json_picks_one_of_the_choices(smollm2):
    choices = ["hint", "question", "worked example"]
    answer = smollm2.generate_json(
        [{"role": "user", "content": "Which scaffold helps a stuck learner?"}], choices=choices
    )
    assert answer in choices
    with pytest.raises(InvalidParams):
        smollm2.generate_json(STORY)


def test_activations_per_layer(smollm2):
    results = smollm2.activations(["Hello world", "你好，世界"], [0, 5])
    assert len(results) == 2
    for result in results:
        n_tokens = len(result["tokens"])
        assert result["layers"][0].shape == (n_tokens, 576)
        assert result["layers"][5].dtype.name == "float16"
    with pytest.raises(InvalidParams, match="out of range"):
        smollm2.activations(["x"], [99])


def test_hooks_steer_generation_and_are_removed(smollm2):
    prompt = "The weather today is"
    baseline = "".join(smollm2.complete(prompt, greedy(12)))
    steered = "".join(smollm2.generate_with_hooks(prompt, greedy(12), {3: lambda h: h + 20 * torch.ones_like(h)}))
    assert steered != baseline
    assert all(not layer._forward_hooks for layer in smollm2.layers)
    assert "".join(smollm2.complete(prompt, greedy(12))) == baseline


def test_should_stop_cancels_within_a_token(smollm2):
    produced = []

    def should_stop() -> bool:
        return len(produced) >= 3

    for piece in smollm2.chat(STORY, greedy(100), should_stop=should_stop):
        produced.append(piece)
    assert len(produced) == 3


def test_missing_model_package_says_how_to_prepare(tmp_path):
    spec = ModelSpec(name="ghost", backend="transformers", source="gguf-package:no_such_pkg/x.gguf", context_length=128)
    with pytest.raises(ModelFilesMissing, match="prepare_models"):
        ensure_converted(spec, tmp_path)


def test_openai_backend_reports_an_unreachable_server():
    from apps.inference.backends import InferenceError
    from apps.inference.backends.openai_backend import OpenAIBackend

    spec = ModelSpec(
        name="remote",
        backend="openai",
        source="",
        context_length=4096,
        base_url="http://127.0.0.1:9/v1",
        api_key="x",
        remote_model="m",
    )
    with pytest.raises(InferenceError, match="Cannot reach the model server"):
        list(OpenAIBackend(spec, timeout=3).chat(STORY, greedy(4)))
