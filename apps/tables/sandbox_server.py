"""The sandbox's long-lived parent process. Runs as `python -I sandbox_server.py` with a
clean environment, imports pandas and numpy once, then for each request forks a child
that drops every privilege before running the analysis code:

- its own network namespace (no network at all) when the host allows it,
- the `nobody` user and group when started as root, in an empty temporary folder,
- no file descriptors but its result pipe, no writes to files (RLIMIT_FSIZE 0),
- CPU-time and address-space limits, and a wall-clock limit enforced from here,
- restricted builtins and an import hook allowing only the analysis modules.

This file imports nothing from Atrium or Django, so the child's memory holds no
secrets. Requests and replies are length-prefixed JSON frames on stdin/stdout.
Results are data (JSON), never pickles."""

import ast
import builtins
import contextlib
import ctypes
import datetime
import io
import json
import math
import os
import re
import resource
import select
import signal
import statistics
import struct
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import pyarrow as pa

# pandas keeps strings in Arrow. Arrow's default allocator (mimalloc) reserves a 1 GiB arena
# on its first allocation, which the child's address-space limit counts as used: the first
# string column of a run could fail as "out of memory". The system allocator takes only what
# is used, so the limit measures the code's real memory. Set here, before any fork, because
# the child clears its environment before Arrow would read ARROW_DEFAULT_MEMORY_POOL.
pa.set_memory_pool(pa.system_memory_pool())

ALLOWED_MODULES = {"pandas": pd, "numpy": np, "math": math, "datetime": datetime, "re": re, "statistics": statistics}
SAFE_BUILTIN_NAMES = [
    "abs",
    "all",
    "any",
    "bool",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "frozenset",
    "int",
    "isinstance",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "print",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
    "iter",
    "chr",
    "ord",
    "hash",
    "callable",
    "issubclass",
    "Exception",
    "ValueError",
    "KeyError",
    "IndexError",
    "TypeError",
    "ZeroDivisionError",
    "ArithmeticError",
    "AttributeError",
    "StopIteration",
    "RuntimeError",
    "NameError",
    "True",
    "False",
    "None",
]
NOBODY = 65534
CLONE_NEWNET = 0x40000000
MAX_RESULT_BYTES = 20 * 1024 * 1024
MAX_STDOUT_CHARS = 20_000


def read_frame(stream) -> dict | None:
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    return json.loads(stream.read(size))


def write_frame(stream, payload: dict) -> None:
    data = json.dumps(payload).encode()
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002  (the signature of __import__)
    if level != 0 or name not in ALLOWED_MODULES:
        raise ImportError(f"import of {name!r} is not allowed in the sandbox")
    return ALLOWED_MODULES[name]


def jsonable(value):
    """Only plain data leaves the child."""
    if isinstance(value, pd.DataFrame):
        if isinstance(value.index, pd.RangeIndex):
            frame = value
        elif value.index.name is None and value.index.nlevels == 1 and pd.api.types.is_integer_dtype(value.index):
            # Row numbers left by a filter or a sort (`df[df.status != 'cancelled']`): not data.
            # Kept as a column they became an "index" column in the sheet's next version.
            frame = value.reset_index(drop=True)
        else:
            frame = value.reset_index()  # a group key or a label index is part of the answer
        frame.columns = [str(column) for column in frame.columns]
        return {"type": "table", "table": frame.to_json(orient="table", index=False, date_format="iso")}
    if isinstance(value, pd.Series):
        return jsonable(value.to_frame(name=str(value.name) if value.name is not None else "value"))
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, datetime.date | datetime.datetime | pd.Timestamp):
        return {"type": "value", "value": value.isoformat()}
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return {"type": "value", "value": str(value)}
    if value is None or isinstance(value, bool | int | float | str):
        return {"type": "value", "value": value}
    if isinstance(value, list | tuple | set | dict | np.ndarray):
        text = json.dumps(value.tolist() if isinstance(value, np.ndarray) else value, default=str)
        return {"type": "value", "value": json.loads(text)}
    return {"type": "value", "value": repr(value)[:10_000]}


def drop_privileges(keep_fd: int) -> None:
    os.setsid()
    # Where the host does not permit a network namespace (returns -1), the AST check and
    # the import hook still keep sockets out.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)
    workdir = tempfile.mkdtemp(prefix="atrium-sandbox-")
    if os.getuid() == 0:
        # No new processes for the sandbox user (it has no other): no shells, no fork bombs.
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        os.chown(workdir, NOBODY, NOBODY)
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    os.chdir(workdir)
    os.closerange(3, keep_fd)
    os.closerange(keep_fd + 1, 4096)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.environ.clear()


def read_tables(tables: dict) -> dict[str, pd.DataFrame]:
    return {name: pd.read_json(io.StringIO(text), orient="table") for name, text in tables.items()}


def limit_resources(memory_mb: int, cpu_seconds: int) -> None:
    """The code's own budget on top of what the child holds now. Called after the tables are
    read, so allocators have made their first-use reservations (arenas, pools) already and
    the address-space limit counts only what the code itself asks for."""
    with open("/proc/self/statm") as statm:
        in_use = int(statm.read().split()[0]) * resource.getpagesize()
    limit = in_use + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))


def execute(code: str, frames: dict[str, pd.DataFrame]) -> dict:
    first = next(iter(frames.values()), pd.DataFrame())
    original = first.copy()
    safe_builtins = {name: getattr(builtins, name) for name in SAFE_BUILTIN_NAMES if hasattr(builtins, name)}
    safe_builtins["__import__"] = guarded_import
    printed = io.StringIO()
    safe_builtins["print"] = lambda *args, **kwargs: print(*args, file=printed)  # noqa: T201
    namespace = {
        "__builtins__": safe_builtins,
        "pd": pd,
        "np": np,
        "math": math,
        "re": re,
        "datetime": datetime,
        "statistics": statistics,
        "df": first,
        "dfs": frames,
    }
    tree = ast.parse(code)
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        # A trailing expression is the answer, as in a notebook cell.
        last = tree.body[-1]
        tree.body[-1] = ast.copy_location(ast.Assign(targets=[ast.Name("result", ast.Store())], value=last.value), last)
        ast.fix_missing_locations(tree)
    exec(compile(tree, "<analysis>", "exec"), namespace)  # noqa: S102  (this is the sandbox)
    if "result" in namespace:
        answer = jsonable(namespace["result"])
    elif isinstance(namespace.get("df"), pd.DataFrame) and not namespace["df"].equals(original):
        answer = jsonable(namespace["df"])
    else:
        answer = {"type": "value", "value": None}
    changed = isinstance(namespace.get("df"), pd.DataFrame) and not namespace["df"].equals(original)
    return {
        "result": answer,
        "df_changed": changed,
        # The edited df travels apart from the result unless the result is that same frame
        # (`result = df['x'] = ...` answers a column but changed the whole table).
        "new_df": jsonable(namespace["df"]) if changed and namespace.get("result") is not namespace["df"] else None,
        "stdout": printed.getvalue()[:MAX_STDOUT_CHARS],
    }


def run_child(request: dict, write_fd: int) -> None:
    try:
        drop_privileges(write_fd)
        frames = read_tables(request["tables"])  # our data, read before the code's limits apply
        limit_resources(request["memory_mb"], request["cpu_seconds"])
        reply = {"ok": True, **execute(request["code"], frames)}
    except MemoryError:
        reply = {"ok": False, "kind": "memory", "error": f"The code needed more than {request['memory_mb']} MB."}
    except BaseException as exc:  # noqa: BLE001  (every failure of user code is reported, none escapes)
        reply = {"ok": False, "kind": "error", "error": f"{type(exc).__name__}: {exc}"[:2000]}
    data = json.dumps(reply, default=str).encode()
    if len(data) > MAX_RESULT_BYTES:
        data = json.dumps({"ok": False, "kind": "error", "error": "The result is too large to return."}).encode()
    with contextlib.suppress(OSError):
        view = memoryview(data)
        while view:
            written = os.write(write_fd, view)
            view = view[written:]
    os._exit(0)


def serve_one(request: dict) -> dict:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        run_child(request, write_fd)
    os.close(write_fd)
    chunks = []
    deadline = time.monotonic() + request["wall_seconds"]
    timed_out = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([read_fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    if timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"ok": False, "kind": "timeout", "error": f"The code ran longer than {request['wall_seconds']} s."}
    if chunks:
        return json.loads(b"".join(chunks))
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in (signal.SIGXCPU, signal.SIGKILL):
            return {
                "ok": False,
                "kind": "timeout",
                "error": f"The code used more than {request['cpu_seconds']} s of CPU.",
            }
        if sig == signal.SIGXFSZ:
            return {"ok": False, "kind": "error", "error": "The code tried to write a file, which is not allowed."}
        return {"ok": False, "kind": "killed", "error": f"The code was stopped by signal {sig}."}
    return {"ok": False, "kind": "killed", "error": "The code stopped without a result."}


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    write_frame(stdout, {"ready": True})
    while (request := read_frame(stdin)) is not None:
        write_frame(stdout, serve_one(request))


if __name__ == "__main__":
    main()
