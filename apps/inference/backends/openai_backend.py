"""Any OpenAI-compatible server: vLLM's `vllm serve`, llama.cpp's server, a hosted API,
or Atrium's own /v1."""

from collections.abc import Iterator
from typing import Any

from apps.inference.backends.base import (
    GenerationParams,
    InferenceError,
    ModelSpec,
    StopCheck,
    check_json_request,
    parse_json_answer,
)


def _request_params(params: GenerationParams) -> dict:
    body: dict[str, Any] = {"temperature": params.temperature, "top_p": params.top_p, "max_tokens": params.max_tokens}
    if params.stop:
        body["stop"] = params.stop
    if params.seed is not None:
        body["seed"] = params.seed
    if params.repetition_penalty:
        # Not in the OpenAI API; vLLM and llama.cpp read it from the body.
        body["extra_body"] = {"repetition_penalty": params.repetition_penalty}
    return body


class OpenAIBackend:
    def __init__(self, spec: ModelSpec, timeout: float = 120.0) -> None:
        import openai

        self.spec = spec
        # APIError covers connection failures, timeouts and 4xx/5xx answers (APIStatusError).
        self._errors = (openai.APIError,)
        self.client = openai.OpenAI(
            base_url=spec.base_url, api_key=spec.api_key or "none", timeout=timeout, max_retries=1
        )
        self.model = spec.remote_model or spec.name

    def _fail(self, exc: Exception) -> InferenceError:
        import openai

        where = f"{self.spec.base_url} ({self.model})"
        if isinstance(exc, openai.APIConnectionError):  # refused, DNS, TLS, timeout
            return InferenceError(f"Cannot reach the model server at {where}: {exc}")
        status = getattr(exc, "status_code", None)
        if status:
            return InferenceError(f"The model server at {where} answered {status}: {getattr(exc, 'message', exc)}")
        # An error event inside a stream, or an answer the client could not read.
        return InferenceError(f"The model server at {where} reported an error: {exc}")

    def _stream(self, create, should_stop: StopCheck | None, pick) -> Iterator[str]:
        try:
            stream = create()
            for chunk in stream:
                if should_stop and should_stop():
                    stream.close()
                    return
                if chunk.choices:
                    piece = pick(chunk.choices[0])
                    if piece:
                        yield piece
        except self._errors as exc:
            raise self._fail(exc) from None

    def chat(
        self, messages: list[dict], params: GenerationParams, should_stop: StopCheck | None = None
    ) -> Iterator[str]:
        params.validate()
        return self._stream(
            lambda: self.client.chat.completions.create(
                model=self.model, messages=messages, stream=True, **_request_params(params)
            ),
            should_stop,
            lambda choice: choice.delta.content,
        )

    def complete(self, prompt: str, params: GenerationParams, should_stop: StopCheck | None = None) -> Iterator[str]:
        params.validate()
        return self._stream(
            lambda: self.client.completions.create(
                model=self.model, prompt=prompt, stream=True, **_request_params(params)
            ),
            should_stop,
            lambda choice: choice.text,
        )

    def score(self, prompt: str, continuations: list[str]) -> list[float]:
        """Sum of log-probs of each continuation's tokens, from the prompt log-probs the server
        echoes (vLLM, llama-cpp-python and Atrium's test server do; OpenAI's chat-only API does not).
        One request for all continuations. max_tokens is 1, not 0: vLLM accepts 0 with echo,
        but llama-cpp-python reads 0 as "no limit"; the one generated token lies after the
        continuation and is not counted. Tokens are counted by where they start, so a token
        straddling the prompt/continuation boundary is left out."""
        if not continuations:
            return []
        try:
            reply = self.client.completions.create(
                model=self.model,
                prompt=[prompt + continuation for continuation in continuations],
                max_tokens=1,
                echo=True,
                logprobs=1,
                temperature=0,
            )
        except self._errors as exc:
            if getattr(exc, "status_code", None) in (400, 422, 501):
                raise InferenceError(f"score not supported by this server ({self._fail(exc)})") from None
            raise self._fail(exc) from None
        choices = sorted(reply.choices, key=lambda choice: choice.index)
        if len(choices) != len(continuations):
            raise InferenceError("score not supported by this server (it did not answer every prompt)")
        scores = []
        for choice, continuation in zip(choices, continuations, strict=True):
            logprobs = choice.logprobs
            if logprobs is None or not logprobs.token_logprobs or not logprobs.text_offset:
                raise InferenceError("score not supported by this server (no prompt log-probs)")
            start, end = len(prompt), len(prompt) + len(continuation)
            total = sum(
                logprob
                for logprob, offset in zip(logprobs.token_logprobs, logprobs.text_offset, strict=False)
                if logprob is not None and start <= offset < end
            )
            scores.append(float(total))
        return scores

    def generate_json(
        self,
        messages: list[dict],
        schema: dict | None = None,
        choices: list[str] | None = None,
        params: GenerationParams | None = None,
    ) -> Any:
        check_json_request(schema, choices)
        target = schema if schema is not None else {"enum": choices}
        params = params or GenerationParams(temperature=0, max_tokens=256)
        try:
            reply = self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": target}},
                **_request_params(params),
            )
        except self._errors as exc:
            raise self._fail(exc) from None
        return parse_json_answer(reply.choices[0].message.content or "", target)

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)  # the server's tokenizer is not at hand; an estimate
