"""In-process vLLM, for a GPU worker with vllm installed (requirements-gpu.txt).

UNTESTED HERE: vllm cannot be installed on the machines this project is built and
tested on. The supported way to use vLLM is its OpenAI-compatible server through
the `openai` backend. Streaming is not offered: each call yields the whole text."""

from collections.abc import Iterator

from apps.inference.backends.base import GenerationParams, InferenceError, ModelSpec, StopCheck


class VLLMBackend:
    def __init__(self, spec: ModelSpec) -> None:
        try:
            from vllm import LLM
        except ImportError:
            raise InferenceError("vllm is not installed in this worker (pip install -r requirements-gpu.txt)") from None
        self.spec = spec
        self.llm = LLM(model=spec.source, max_model_len=spec.context_length)

    def _sampling(self, params: GenerationParams):
        from vllm import SamplingParams

        return SamplingParams(
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            stop=params.stop or None,
            seed=params.seed,
            repetition_penalty=params.repetition_penalty or 1.0,
        )

    def chat(
        self, messages: list[dict], params: GenerationParams, should_stop: StopCheck | None = None
    ) -> Iterator[str]:
        outputs = self.llm.chat(messages, self._sampling(params.validate()))
        yield outputs[0].outputs[0].text

    def complete(self, prompt: str, params: GenerationParams, should_stop: StopCheck | None = None) -> Iterator[str]:
        outputs = self.llm.generate([prompt], self._sampling(params.validate()))
        yield outputs[0].outputs[0].text

    def score(self, prompt: str, continuations: list[str]) -> list[float]:
        raise InferenceError("score is not implemented for in-process vLLM; use the openai backend")

    def generate_json(self, messages, schema=None, choices=None, params=None):
        raise InferenceError("generate_json is not implemented for in-process vLLM; use the openai backend")

    def count_tokens(self, text: str) -> int:
        return len(self.llm.get_tokenizer().encode(text))
