"""Any OpenAI-compatible server: llama.cpp's server (the assistant on `make up`), vLLM's
`vllm serve` (the assistant on GPUs), a hosted API, or Atrium's own /v1.

Cancellation: closing a stream closes its HTTP connection, and llama.cpp and vLLM both stop
generating for a request whose client went away."""

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from apps.inference.backends.base import (
    GenerationParams,
    InferenceError,
    ModelSpec,
    PromptTooLong,
    StopCheck,
    check_json_request,
    parse_json_answer,
)

# How servers say a prompt does not fit (llama.cpp: "exceeds the available context size";
# vLLM: "maximum context length").
CONTEXT_OVERFLOW_WORDS = ("context size", "context length", "exceed_context_size")


@dataclass
class ChatResult:
    """One whole (not streamed) chat answer with what the server reported about it."""

    text: str
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # One entry per generated token: (token text, its log-probability, {alternative: log-prob}).
    logprobs: list[tuple[str, float, dict[str, float]]] = field(default_factory=list)

    def mean_entropy(self) -> float | None:
        """Mean entropy (nats) of the next-token distribution over the top alternatives: a cheap
        uncertainty signal (high = the model was unsure). None without log-probabilities."""
        if not self.logprobs:
            return None
        total = 0.0
        for _token, _logprob, alternatives in self.logprobs:
            probs = [math.exp(value) for value in alternatives.values()]
            mass = sum(probs)
            if mass <= 0:
                continue
            total -= sum(p / mass * math.log(p / mass) for p in probs if p > 0)
        return total / len(self.logprobs)


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
    def __init__(self, spec: ModelSpec, timeout: float = 120.0, max_retries: int = 2) -> None:
        import openai

        self.spec = spec
        import httpx

        # APIError covers connection failures, timeouts and 4xx/5xx answers (APIStatusError);
        # a connection lost in the middle of a stream surfaces as httpx's own error.
        self._errors = (openai.APIError, httpx.HTTPError)
        self.client = openai.OpenAI(
            base_url=spec.base_url, api_key=spec.api_key or "none", timeout=timeout, max_retries=max_retries
        )
        self.model = spec.remote_model or spec.name

    def _fail(self, exc: Exception) -> InferenceError:
        import openai

        where = f"{self.spec.base_url} ({self.model})"
        if isinstance(exc, openai.APIConnectionError):  # refused, DNS, TLS, timeout
            return InferenceError(f"Cannot reach the model server at {where}: {exc}")
        if not isinstance(exc, openai.APIError):  # the connection broke mid-stream
            return InferenceError(f"Lost the connection to the model server at {where}: {exc!r}")
        status = getattr(exc, "status_code", None)
        message = str(getattr(exc, "message", exc))
        if status == 400 and any(word in message.lower() for word in CONTEXT_OVERFLOW_WORDS):
            return PromptTooLong(f"The conversation is too long for {self.model}'s context: {message}")
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

    def chat_choices(self, messages: list[dict], params: GenerationParams, n: int) -> list[str]:
        """`n` sampled answers to one prompt in one request (OpenAI's `n`): llama.cpp reads the
        prompt once and copies it to the other slots, and vLLM shares it, so n answers cost
        about one prompt. Servers that refuse `n` get one request per answer instead."""
        params.validate()
        try:
            reply = self.client.chat.completions.create(
                model=self.model, messages=messages, n=n, **_request_params(params)
            )
            texts = [choice.message.content or "" for choice in sorted(reply.choices, key=lambda c: c.index)]
        except self._errors as exc:
            if getattr(exc, "status_code", None) not in (400, 422) or n == 1:
                raise self._fail(exc) from None
            texts = []  # this server takes one choice per request
        while len(texts) < n:
            seeded = replace(params, seed=None if params.seed is None else params.seed + len(texts))
            texts.append("".join(self.chat(messages, seeded)))
        return texts[:n]

    def chat_result(self, messages: list[dict], params: GenerationParams, top_logprobs: int = 0) -> ChatResult:
        """The whole answer at once, with token counts and, when asked, each token's
        log-probability and its `top_logprobs` alternatives (llama.cpp and vLLM both give them)."""
        params.validate()
        extra: dict[str, Any] = {"logprobs": True, "top_logprobs": top_logprobs} if top_logprobs else {}
        try:
            reply = self.client.chat.completions.create(
                model=self.model, messages=messages, **_request_params(params), **extra
            )
        except self._errors as exc:
            raise self._fail(exc) from None
        choice = reply.choices[0]
        logprobs = []
        if top_logprobs and choice.logprobs and choice.logprobs.content:
            logprobs = [
                (item.token, item.logprob, {alt.token: alt.logprob for alt in item.top_logprobs or []})
                for item in choice.logprobs.content
            ]
        usage = reply.usage
        return ChatResult(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason or "stop",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            logprobs=logprobs,
        )

    def count_tokens(self, text: str) -> int:
        """Tokens by the server's own tokenizer (llama.cpp's and vLLM's /tokenize); an estimate
        where the server has none (hosted APIs)."""
        import httpx

        root = self.spec.base_url.rstrip("/").removesuffix("/v1")
        for body in ({"content": text}, {"model": self.model, "prompt": text}):  # llama.cpp, vLLM
            try:
                answer = httpx.post(f"{root}/tokenize", json=body, timeout=10)
                if answer.status_code == 200:
                    data = answer.json()
                    if "tokens" in data:
                        return len(data["tokens"])
                    if "count" in data:
                        return int(data["count"])
            except (httpx.HTTPError, ValueError):
                break
        return max(1, len(text) // 3)
