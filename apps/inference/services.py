"""Generation requests (web side) and generation runs (worker side)."""

import logging
import os
import socket
import time
from dataclasses import asdict, fields
from functools import cache

from django.conf import settings
from django.db import transaction

from apps.accounts.permissions import can_view_owned
from apps.inference import live_text
from apps.inference.backends import (
    CONVERTED_MARKER,
    Backend,
    GenerationParams,
    InvalidParams,
    ModelFilesMissing,
    ModelSpec,
    PromptTooLong,
    get_backend,
)
from apps.inference.models import Generation
from apps.inference.registry import all_models, converted_dir, get_model, roles_of
from apps.jobs.events import send_to_group
from apps.jobs.models import Job, job_group
from apps.jobs.services import JobCancelled, create_job, report_progress

logger = logging.getLogger(__name__)

GENERATION_KIND = "inference.generate"  # registered in apps.py
ROLES = {"system", "user", "assistant"}
MAX_MESSAGES = 200
MAX_PROMPT_CHARS = 200_000
HEARTBEAT_SECONDS = 2.0
CANCEL_CHECK_SECONDS = 0.25

PARAM_NAMES = {field.name for field in fields(GenerationParams)}


def visible_generation(user, job_id: int) -> Generation | None:
    """The generation of job `job_id` if `user` may see it; None otherwise (callers answer 404)."""
    generation = Generation.objects.select_related("job").filter(job_id=job_id).first()
    if generation is None or not can_view_owned(user, generation.job.owner_id):
        return None
    return generation


def build_params(spec: ModelSpec, params: dict | None) -> GenerationParams:
    """The model's defaults overlaid with the request's parameters, validated."""
    params = {key: value for key, value in (params or {}).items() if value is not None}
    unknown = set(params) - PARAM_NAMES
    if unknown:
        raise InvalidParams(f"Unknown parameter(s): {', '.join(sorted(unknown))}")
    merged = {**spec.default_params, **params}
    if isinstance(merged.get("stop"), str):
        merged["stop"] = [merged["stop"]]
    try:
        generation_params = GenerationParams(**merged)
    except TypeError as exc:
        raise InvalidParams(str(exc)) from None
    generation_params.validate()
    return generation_params


def check_messages(messages: list) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise InvalidParams("messages must be a non-empty list")
    if len(messages) > MAX_MESSAGES:
        raise InvalidParams(f"messages: at most {MAX_MESSAGES} messages")
    cleaned = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise InvalidParams(f"messages[{index}].role must be one of system, user, assistant")
        content = message.get("content")
        if not isinstance(content, str):
            raise InvalidParams(f"messages[{index}].content must be a string")
        cleaned.append({"role": message["role"], "content": content})
    return cleaned


@cache
def _tokenizer(spec_name: str):
    """A tokenizer for counting, without loading the model (the web process never does)."""
    from tokenizers import Tokenizer

    path = converted_dir(get_model(spec_name)) / "tokenizer.json"
    return Tokenizer.from_file(str(path)) if path.exists() else None


def estimate_prompt_tokens(spec: ModelSpec, messages: list[dict] | None, prompt: str) -> int:
    texts = [message["content"] for message in messages] if messages is not None else [prompt]
    tokenizer = _tokenizer(spec.name) if spec.backend == "transformers" else None
    # Chat templates add a few tokens per message around the content.
    overhead = 8 * len(texts) if messages is not None else 0
    if tokenizer is None:
        return sum(len(text) for text in texts) // 3 + overhead  # conservative without a tokenizer
    return sum(len(tokenizer.encode(text).ids) for text in texts) + overhead


def request_generation(
    owner, model_name: str, messages: list | None = None, prompt: str | None = None, params: dict | None = None
) -> Job:
    """Validate a request and queue it on the gpu queue. Raises ModelNotFound,
    InvalidParams or PromptTooLong with a message naming the problem."""
    spec = get_model(model_name)
    if (messages is None) == (prompt is None):
        raise InvalidParams("Give either messages (chat) or prompt (completion), not both")
    if messages is not None:
        if not spec.chat:
            raise InvalidParams(f"Model {spec.name} is a base model without a chat template: send a prompt instead")
        messages = check_messages(messages)
        total_chars = sum(len(message["content"]) for message in messages)
    else:
        if not isinstance(prompt, str) or not prompt:
            raise InvalidParams("prompt must be a non-empty string")
        total_chars = len(prompt)
    if total_chars > MAX_PROMPT_CHARS:
        raise PromptTooLong(f"The prompt has {total_chars} characters; the limit is {MAX_PROMPT_CHARS}")
    generation_params = build_params(spec, params)
    trimmed = 0
    if messages is not None:
        messages, trimmed = fit_messages(spec, messages, generation_params.max_tokens)
    prompt_tokens = estimate_prompt_tokens(spec, messages, prompt or "")
    if prompt_tokens + generation_params.max_tokens > spec.context_length:
        raise PromptTooLong(
            f"The prompt is about {prompt_tokens} tokens and max_tokens is {generation_params.max_tokens}; "
            f"{spec.name} has a context length of {spec.context_length} tokens"
        )
    with transaction.atomic():
        job = create_job(owner, GENERATION_KIND, {"model": spec.name})
        Generation.objects.create(
            job=job,
            model_name=spec.name,
            messages=messages,
            prompt=prompt or "",
            params=asdict(generation_params),
            prompt_tokens=prompt_tokens,
            trimmed_messages=trimmed,
        )
    return job


def fit_messages(spec: ModelSpec, messages: list[dict], max_tokens: int) -> tuple[list[dict], int]:
    """The conversation cut to fit `spec`'s context with room for `max_tokens`: the oldest
    messages after the system prompt go first, the last message always stays. Returns the
    messages and how many were left out, so callers can say so rather than fail."""
    budget = spec.context_length - max_tokens
    system = [message for message in messages[:1] if message["role"] == "system"]
    rest = messages[len(system) :]
    # Each message is counted once; dropping one takes its own count off the total.
    counts = [estimate_prompt_tokens(spec, [message], "") for message in rest]
    total = estimate_prompt_tokens(spec, system, "") + sum(counts)
    dropped = 0
    while len(rest) - dropped > 1 and total > budget:
        total -= counts[dropped]
        dropped += 1
    return system + rest[dropped:], dropped


LOADED_MODELS_KEY = "atrium:loaded-models"


def load_backend(spec: ModelSpec) -> Backend:
    """The process's backend for `spec`, loaded once; the admin page lists where models are loaded."""
    backend = get_backend(spec, settings.MODELS_DIR, settings.MODEL_DEVICE, settings.MODEL_THREADS or None)
    live_text.redis_client().hset(LOADED_MODELS_KEY, f"{spec.name}@{socket.gethostname()}:{os.getpid()}", time.time())
    return backend


def forget_loaded_models() -> None:
    """Called when a worker process exits."""
    client = live_text.redis_client()
    suffix = f"@{socket.gethostname()}:{os.getpid()}"
    for field in client.hkeys(LOADED_MODELS_KEY):
        if field.decode().endswith(suffix):
            client.hdel(LOADED_MODELS_KEY, field)


def loaded_models() -> dict[str, list[str]]:
    """model name -> the worker processes that hold it."""
    where: dict[str, list[str]] = {}
    for field in live_text.redis_client().hkeys(LOADED_MODELS_KEY):
        name, _at, process = field.decode().partition("@")
        where.setdefault(name, []).append(process)
    return where


def server_is_up(spec: ModelSpec) -> bool:
    """Whether the OpenAI-compatible server serving `spec` answers its model list."""
    import httpx

    try:
        return httpx.get(spec.base_url.rstrip("/") + "/models", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def model_statuses() -> list[dict]:
    """Each model with its roles, where it runs and whether it is ready to answer."""
    loaded = loaded_models()
    rows = []
    for spec in all_models().values():
        if spec.backend == "transformers":
            ready = (converted_dir(spec) / CONVERTED_MARKER).exists()
            where = ", ".join(loaded.get(spec.name, [])) or "transformers, in the worker that needs it"
        else:
            ready = server_is_up(spec)
            where = f"OpenAI-compatible server at {spec.base_url}"
        rows.append(
            {
                "spec": spec,
                "ready": ready,
                "loaded_in": loaded.get(spec.name, []),
                "roles": roles_of(spec.name),
                "where": where,
            }
        )
    return rows


class TokenBatcher:
    """Collects token pieces and publishes them about every `interval` seconds,
    so the browser gets a few messages a second rather than one per token."""

    def __init__(self, job_id: int, interval: float) -> None:
        self.job_id = job_id
        self.group = job_group(job_id)
        self.interval = interval
        self.pending: list[str] = []
        self.sent_chars = 0
        self.last_flush = time.monotonic()
        self.text_parts: list[str] = []

    def add(self, piece: str) -> None:
        self.pending.append(piece)
        self.text_parts.append(piece)
        if time.monotonic() - self.last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self.pending:
            return
        text = "".join(self.pending)
        self.pending = []
        live_text.append(self.job_id, text)
        # Not waiting: the publisher thread sends in order while generation goes on.
        send_to_group(self.group, {"type": "generation.delta", "start": self.sent_chars, "text": text}, wait=False)
        self.sent_chars += len(text)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


def run_generation(job: Job) -> dict:
    """Worker side: stream tokens to the job's group, save the text and the figures."""
    generation = Generation.objects.get(job=job)
    spec = get_model(generation.model_name)
    params = GenerationParams(**generation.params)
    live_text.reset(job.pk)
    send_to_group(job.group_name, {"type": "generation.reset"})
    try:
        backend = load_backend(spec)
    except ModelFilesMissing as exc:
        raise RuntimeError(str(exc)) from None

    last_check = time.monotonic()
    cancelled = False

    def should_stop() -> bool:
        nonlocal last_check, cancelled
        now = time.monotonic()
        if now - last_check >= CANCEL_CHECK_SECONDS:
            last_check = now
            cancelled = Job.objects.filter(pk=job.pk, cancel_requested=True).exists()
        return cancelled

    batcher = TokenBatcher(job.pk, settings.STREAM_BATCH_SECONDS)
    started = time.monotonic()
    first_token_at = None
    pieces = 0
    last_heartbeat = started
    stream = (
        backend.chat(generation.messages, params, should_stop=should_stop)
        if generation.is_chat
        else backend.complete(generation.prompt, params, should_stop=should_stop)
    )
    try:
        for piece in stream:
            if first_token_at is None:
                first_token_at = time.monotonic()
            pieces += 1
            batcher.add(piece)
            if time.monotonic() - last_heartbeat >= HEARTBEAT_SECONDS:
                last_heartbeat = time.monotonic()
                batcher.flush()
                Generation.objects.filter(pk=generation.pk).update(output=batcher.text, completion_tokens=pieces)
                try:
                    report_progress(job, pieces / params.max_tokens, f"{pieces} tokens")
                except JobCancelled:
                    cancelled = True  # seen at the heartbeat rather than by should_stop
                    break
    finally:
        batcher.flush()
        finished = time.monotonic()
        generation.output = batcher.text
        generation.completion_tokens = pieces
        if first_token_at is not None:
            generation.time_to_first_token_ms = (first_token_at - started) * 1000
            generating_seconds = finished - first_token_at
            generation.tokens_per_second = (
                (pieces - 1) / generating_seconds if pieces > 1 and generating_seconds else None
            )
        generation.finish_reason = "cancelled" if cancelled else ("length" if pieces >= params.max_tokens else "stop")
        generation.save()
    if cancelled:
        raise JobCancelled
    return {
        "completion_tokens": pieces,
        "tokens_per_second": generation.tokens_per_second,
        "time_to_first_token_ms": generation.time_to_first_token_ms,
        "finish_reason": generation.finish_reason,
    }
