"""The one interface every model backend implements, and what it raises."""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import jsonschema


class InferenceError(Exception):
    """A model call failed; the message is fit to show to the user."""


class ModelNotFound(InferenceError):  # noqa: N818  (reads better at call sites)
    pass


class ModelFilesMissing(InferenceError):  # noqa: N818
    pass


class PromptTooLong(InferenceError):  # noqa: N818
    pass


class InvalidParams(InferenceError, ValueError):  # noqa: N818
    pass


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model."""

    name: str
    backend: str  # "transformers" | "openai" (llama.cpp, vLLM, hosted)
    source: str  # transformers: "gguf-package:<module>/<file>", "gguf-gemma3" or a local folder
    context_length: int
    languages: tuple[str, ...] = ("en",)
    chat: bool = True
    default_params: dict = field(default_factory=dict, hash=False)
    base_url: str = ""
    api_key: str = ""
    remote_model: str = ""


@dataclass
class GenerationParams:
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    repetition_penalty: float | None = None

    def validate(self) -> "GenerationParams":
        def bad(name: str, rule: str) -> InvalidParams:
            return InvalidParams(f"{name} {rule}, got {getattr(self, name)!r}")

        if not isinstance(self.temperature, int | float) or not 0 <= self.temperature <= 2:
            raise bad("temperature", "must be between 0 and 2")
        if not isinstance(self.top_p, int | float) or not 0 < self.top_p <= 1:
            raise bad("top_p", "must be greater than 0 and at most 1")
        if (
            not isinstance(self.max_tokens, int)
            or isinstance(self.max_tokens, bool)
            or not 1 <= self.max_tokens <= 4096
        ):
            raise bad("max_tokens", "must be a whole number from 1 to 4096")
        if (
            not isinstance(self.stop, list)
            or len(self.stop) > 4
            or not all(isinstance(s, str) and s for s in self.stop)
        ):
            raise bad("stop", "must be a list of at most 4 non-empty strings")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise bad("seed", "must be a whole number")
        if self.repetition_penalty is not None and (
            not isinstance(self.repetition_penalty, int | float) or not 1 <= self.repetition_penalty <= 2
        ):
            raise bad("repetition_penalty", "must be between 1 and 2")
        return self


StopCheck = Callable[[], bool]


def check_json_request(schema: dict | None, choices: list[str] | None) -> None:
    if (schema is None) == (choices is None):
        raise InvalidParams("generate_json needs either a schema or a list of choices")
    if choices is not None and not choices:
        raise InvalidParams("choices must not be empty")


def parse_json_answer(text: str, schema: dict) -> Any:
    """The model's text as a value valid against `schema`, or InferenceError saying why not."""
    try:
        value = json.loads(text)
        jsonschema.validate(value, schema)
    except (ValueError, jsonschema.ValidationError) as exc:
        raise InferenceError(f"The model's answer is not valid JSON for the schema: {exc}") from None
    return value


class Backend(Protocol):
    spec: ModelSpec

    def chat(
        self, messages: list[dict], params: GenerationParams, should_stop: StopCheck | None = None
    ) -> Iterator[str]:
        """Token text pieces of the assistant's reply, as produced (one per generated token)."""

    def complete(self, prompt: str, params: GenerationParams, should_stop: StopCheck | None = None) -> Iterator[str]:
        """Token text pieces continuing `prompt`."""

    def score(self, prompt: str, continuations: list[str]) -> list[float]:
        """Sum of log-probabilities of each continuation given the prompt."""

    def generate_json(
        self,
        messages: list[dict],
        schema: dict | None = None,
        choices: list[str] | None = None,
        params: GenerationParams | None = None,
    ) -> Any:
        """A value valid against `schema`, or one of `choices`."""

    def count_tokens(self, text: str) -> int: ...
