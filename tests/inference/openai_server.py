"""A tiny OpenAI-compatible HTTP server over the transformers backend, standard library only.
It exists to test OpenAIBackend against a real server in another process; it is not
Atrium's /v1 endpoint (that one is in apps/inference/openai_views.py).

    python -m tests.inference.openai_server [--port 0] [--models-dir var/models]

Prints "READY <port>" on stdout once it listens. Serves SmolLM2 as "smollm2-135m", and
the same model as "smollm2-135m-no-echo", which answers 400 to echo (a server that
cannot score). Endpoints: GET /v1/models; POST /v1/chat/completions (streamed as
server-sent events or not; response_format json_schema through generate_json);
POST /v1/completions (streamed or not; echo and logprobs, as used for scoring)."""

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from apps.inference.backends import (
    GenerationParams,
    InferenceError,
    InvalidParams,
    PromptTooLong,
    get_backend,
)
from apps.inference.registry import SMOLLM2  # a plain constant: importing it needs no Django settings

NO_ECHO = SMOLLM2.name + "-no-echo"
MODEL_IDS = (SMOLLM2.name, NO_ECHO)
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "var" / "models"


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def generation_params(body: dict) -> GenerationParams:
    stop = body.get("stop") or []
    return GenerationParams(
        temperature=body.get("temperature", 0.7),
        top_p=body.get("top_p", 1.0),
        max_tokens=body.get("max_tokens", 256),
        stop=[stop] if isinstance(stop, str) else stop,
        seed=body.get("seed"),
        repetition_penalty=body.get("repetition_penalty"),
    ).validate()


def finish_reason(pieces: int, params: GenerationParams) -> str:
    return "length" if pieces >= params.max_tokens else "stop"


class Handler(BaseHTTPRequestHandler):
    backend: Any = None  # set by serve(); one model shared by all request threads

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: test output stays readable

    # ---- plumbing ------------------------------------------------------------------------

    def send_json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_events(self, events: Iterator[dict]) -> None:
        """Server-sent events; the connection closes at the end (HTTP/1.0), as the client expects."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            for event in events:
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
        except (InferenceError, ValueError) as exc:  # after the headers: report inside the stream
            error = {"error": {"message": str(exc), "type": "server_error"}}
            self.wfile.write(f"data: {json.dumps(error)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        if self.path.rstrip("/") == "/v1/models":
            data = [{"id": name, "object": "model", "created": 0, "owned_by": "atrium-test"} for name in MODEL_IDS]
            self.send_json(200, {"object": "list", "data": data})
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:  # noqa: N802
        routes = {"/v1/chat/completions": self.chat_completions, "/v1/completions": self.completions}
        try:
            route = routes.get(self.path.rstrip("/"))
            if route is None:
                raise ApiError(404, f"no route {self.path}", "not_found")
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            except ValueError:
                raise ApiError(400, "the body is not valid JSON") from None
            if body.get("model") not in MODEL_IDS:
                raise ApiError(404, f"The model {body.get('model')!r} does not exist", "model_not_found")
            route(body)
        except ApiError as exc:
            self.send_json(exc.status, {"error": {"message": str(exc), "type": exc.kind}})
        except (InvalidParams, PromptTooLong) as exc:
            self.send_json(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
        except Exception as exc:  # a test server: say what broke rather than drop the connection
            traceback.print_exc()
            self.send_json(500, {"error": {"message": f"{type(exc).__name__}: {exc}", "type": "server_error"}})

    # ---- endpoints -----------------------------------------------------------------------

    def chat_completions(self, body: dict) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "messages must be a non-empty list")
        params = generation_params(body)
        created, ident = int(time.time()), f"chatcmpl-{time.time_ns()}"
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
            if not isinstance(schema, dict):
                raise ApiError(400, "response_format.json_schema.schema must be an object")
            value = self.backend.generate_json(messages, schema=schema, params=params)
            pieces: Iterator[str] = iter([json.dumps(value)])
        else:
            pieces = self.backend.chat(messages, params)

        def chunk(delta: dict, finish: str | None) -> dict:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": body["model"],
                    "choices": [choice]}  # fmt: skip

        if body.get("stream"):

            def events() -> Iterator[dict]:
                yield chunk({"role": "assistant", "content": ""}, None)
                count = 0
                for piece in pieces:
                    count += 1
                    if piece:
                        yield chunk({"content": piece}, None)
                yield chunk({}, finish_reason(count, params))

            self.send_events(events())
            return
        parts = list(pieces)
        message = {"role": "assistant", "content": "".join(parts)}
        self.send_json(
            200,
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(len(parts), params)}],
            },
        )

    def completions(self, body: dict) -> None:
        prompts = body.get("prompt")
        prompts = [prompts] if isinstance(prompts, str) else prompts
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise ApiError(400, "prompt must be a string or a list of strings")
        echo, logprobs = bool(body.get("echo")), body.get("logprobs")
        if echo and body["model"] == NO_ECHO:
            raise ApiError(400, "echo is not supported by this model")
        max_tokens = body.get("max_tokens", 16)
        # As in OpenAI's legacy API, max_tokens 0 with echo only returns the prompt (and its log-probs).
        params = generation_params({**body, "max_tokens": 1}) if max_tokens == 0 else generation_params(body)
        created, ident = int(time.time()), f"cmpl-{time.time_ns()}"

        if body.get("stream"):
            if len(prompts) != 1 or logprobs is not None:
                raise ApiError(400, "streaming takes one prompt and no logprobs here")

            def text_chunk(text: str, finish: str | None) -> dict:
                choice = {"index": 0, "text": text, "finish_reason": finish}
                return {"id": ident, "object": "text_completion", "created": created, "model": body["model"],
                        "choices": [choice]}  # fmt: skip

            # Called before the headers go out, so a bad request still gets its 400.
            pieces = self.backend.complete(prompts[0], params) if max_tokens else iter([])

            def events() -> Iterator[dict]:
                count = 0
                if echo:
                    yield text_chunk(prompts[0], None)
                for piece in pieces:
                    count += 1
                    yield text_chunk(piece, None)
                yield text_chunk("", finish_reason(count, params))

            self.send_events(events())
            return

        choices = []
        for index, prompt in enumerate(prompts):
            parts = list(self.backend.complete(prompt, params)) if max_tokens else []
            generated = "".join(parts)
            choice = {
                "index": index,
                "text": (prompt if echo else "") + generated,
                "finish_reason": finish_reason(len(parts), params) if max_tokens else "length",
                "logprobs": None,
            }
            if logprobs is not None:
                # Log-probs of the text as the model reads it back: the echoed prompt's tokens
                # (what score needs) and then the generated ones.
                tokens = self.backend.token_logprobs(prompt + generated)
                shift = 0 if echo else len(prompt)
                tokens = [token for token in tokens if echo or token["offset"] >= len(prompt)]
                choice["logprobs"] = {
                    "tokens": [token["token"] for token in tokens],
                    "token_logprobs": [token["logprob"] for token in tokens],
                    "top_logprobs": None,
                    "text_offset": [token["offset"] - shift for token in tokens],
                }
            choices.append(choice)
        self.send_json(
            200,
            {"id": ident, "object": "text_completion", "created": created, "model": body["model"], "choices": choices},
        )


def serve(port: int, models_dir: Path, threads: int) -> None:
    Handler.backend = get_backend(SMOLLM2, models_dir, "cpu", threads)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: fastest on a busy small box)")
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("ATRIUM_MODELS_DIR", DEFAULT_MODELS_DIR))
    )
    args = parser.parse_args(argv)
    try:
        serve(args.port, args.models_dir, args.threads)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
