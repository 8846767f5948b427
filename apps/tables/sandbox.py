"""Running analysis code safely: a static check first, then a separate, unprivileged
process (see sandbox_server.py). The code may have been steered by the table itself
(a cell saying "ignore your instructions and import os"), so both layers hold
whatever the code says."""

import ast
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ALLOWED_IMPORTS = frozenset({"pandas", "numpy", "math", "datetime", "re", "statistics"})
BLOCKED_NAMES = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "input",
        "breakpoint",
        "help",
        "exit",
        "quit",
        "globals",
        "locals",
        "vars",
        "dir",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "memoryview",
        "super",
        "object",
        "type",
        "classmethod",
        "staticmethod",
        "property",
        "bytearray",
        "bytes",
        "id",
    }
)
# Attributes that reach files, the network, other modules or code evaluation from the
# allowed libraries (pandas readers/writers, numpy file I/O, pandas' own eval).
BLOCKED_ATTRIBUTES = frozenset(
    {
        "eval",
        "query",
        "format",
        "format_map",
        "load",
        "loads",
        "save",
        "savez",
        "savez_compressed",
        "fromfile",
        "tofile",
        "loadtxt",
        "savetxt",
        "genfromtxt",
        "fromregex",
        "memmap",
        "open_memmap",
        "ctypeslib",
        "ctypes",
        "lib",
        "io",
        "api",
        "testing",
        "system",
        "popen",
        "core",
        "compat",
        "util",
        "utils",
        "sys",
        "os",
        "builtins",
        "modules",
        "f2py",
        "distutils",
        "DataSource",
        "style",
        "plot",
        "plotting",
        "hist",
        "boxplot",
        "pipe",
        "subprocess",
        "shutil",
        "socket",
        "importlib",
        "options",
        "set_option",
        "get_option",
        "describe_option",
        "option_context",
        "extensions",
        "errors",
        "arrays",
        "frombuffer",
        "tobytes",
    }
)
ALLOWED_TO_METHODS = frozenset(
    {
        "to_dict",
        "to_list",
        "to_numpy",
        "to_datetime",
        "to_numeric",
        "to_string",
        "to_frame",
        "to_timedelta",
        "to_period",
        "to_timestamp",
        "to_records",
        "to_pydatetime",
        "to_offset",
        "to_markdown",
    }
)


def check_code(code: str) -> list[str]:
    """Reasons to refuse `code` before it runs; empty when it may run."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return [f"Syntax error on line {exc.lineno}: {exc.msg}"]
    problems = []

    def refuse(node: ast.AST, reason: str) -> None:
        problems.append(f"line {getattr(node, 'lineno', '?')}: {reason}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in ALLOWED_IMPORTS:
                    refuse(node, f"import of {alias.name} is not allowed (only {', '.join(sorted(ALLOWED_IMPORTS))})")
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module not in ALLOWED_IMPORTS:
                refuse(node, f"import from {node.module or '.'} is not allowed")
            for alias in node.names:
                if alias.name == "*" or alias.name.startswith("_") or alias.name in BLOCKED_ATTRIBUTES:
                    refuse(node, f"importing {alias.name} is not allowed")
        elif isinstance(node, ast.Attribute):
            attr = node.attr
            if attr.startswith("_"):
                refuse(node, f"access to the private attribute {attr} is not allowed")
            elif attr in BLOCKED_ATTRIBUTES or attr.startswith("read_"):
                refuse(node, f"{attr} is not allowed (files, network or code evaluation)")
            elif attr.startswith("to_") and attr not in ALLOWED_TO_METHODS:
                refuse(node, f"{attr} writes outside the sandbox and is not allowed")
        elif isinstance(node, ast.Name):
            if node.id.startswith("__") or node.id in BLOCKED_NAMES:
                refuse(node, f"{node.id} is not allowed")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name.startswith("__"):
                refuse(node, f"defining {node.name} is not allowed")
            if isinstance(node, ast.ClassDef | ast.AsyncFunctionDef):
                refuse(node, "class and async definitions are not allowed")
        elif isinstance(node, ast.keyword) and node.arg and node.arg.startswith("__"):
            refuse(node, f"the keyword {node.arg} is not allowed")
        elif isinstance(node, ast.Global | ast.Nonlocal):
            refuse(node, "global and nonlocal are not allowed")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "__" in node.value:
            refuse(node, "strings naming dunder attributes are not allowed")
    return problems


@dataclass
class SandboxLimits:
    cpu_seconds: int = 10
    wall_seconds: float = 15.0
    memory_mb: int = 1024


@dataclass
class SandboxResult:
    ok: bool
    kind: str = ""  # refused, syntax, error, timeout, memory, killed
    error: str = ""
    result: dict = field(default_factory=dict)  # {"type": "table", "table": json} or {"type": "value", "value": ...}
    new_df: dict | None = None
    df_changed: bool = False
    stdout: str = ""

    def table(self) -> pd.DataFrame | None:
        return table_from_json(self.result["table"]) if self.result.get("type") == "table" else None


def table_to_json(frame: pd.DataFrame) -> str:
    frame = frame.copy()
    frame.columns = [str(column) for column in frame.columns]
    return frame.to_json(orient="table", index=False, date_format="iso")


def table_from_json(text: str) -> pd.DataFrame:
    import io

    return pd.read_json(io.StringIO(text), orient="table")


class SandboxServer:
    """One sandbox parent per worker process, started on first use and restarted if it dies."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.home = tempfile.mkdtemp(prefix="atrium-sandbox-home-")

    def _start(self) -> None:
        script = Path(__file__).with_name("sandbox_server.py")
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": self.home,
            "LANG": "C.UTF-8",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            # Arrow's bundled jemalloc starts a background thread at import; a forked child
            # (no new threads allowed) must not depend on it.
            "JE_ARROW_MALLOC_CONF": "background_thread:false",
            # Read by Arrow when it loads, so no allocator but the system's is ever set up. Setting
            # the pool after import (sandbox_server.py) was not enough: a string comparison
            # (`df[df.city == 'Cairo']`) still reserved mimalloc's 1 GiB arena in the child and
            # failed as "needed more than 1024 MB" on correct code.
            "ARROW_DEFAULT_MEMORY_POOL": "system",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=self.home,
        )
        if self._read() != {"ready": True}:
            raise RuntimeError("the sandbox did not start")

    def _read(self) -> dict:
        header = self.process.stdout.read(4)
        if len(header) < 4:
            raise RuntimeError("the sandbox stopped")
        (size,) = struct.unpack(">I", header)
        return json.loads(self.process.stdout.read(size))

    def request(self, payload: dict) -> dict:
        with self.lock:
            for attempt in (1, 2):
                if self.process is None or self.process.poll() is not None:
                    self._start()
                try:
                    data = json.dumps(payload).encode()
                    self.process.stdin.write(struct.pack(">I", len(data)) + data)
                    self.process.stdin.flush()
                    return self._read()
                except (BrokenPipeError, RuntimeError):
                    self.process = None
                    if attempt == 2:
                        raise
        raise RuntimeError("unreachable")


_server: SandboxServer | None = None
_server_pid: int | None = None


def _sandbox() -> SandboxServer:
    global _server, _server_pid
    if _server is None or _server_pid != os.getpid():
        _server, _server_pid = SandboxServer(), os.getpid()
    return _server


def run_code(
    code: str, tables: dict[str, pd.DataFrame], limits: SandboxLimits | None = None, check: bool = True
) -> SandboxResult:
    """Check, then run `code` with `df` (the first table) and `dfs` (all, by name).
    `check=False` exists only so tests can prove the process layer holds on its own."""
    limits = limits or SandboxLimits()
    if check:
        problems = check_code(code)
        if problems:
            # Broken code is worth a retry with the error; forbidden code is not.
            if problems[0].startswith("Syntax error"):
                return SandboxResult(ok=False, kind="syntax", error=problems[0])
            return SandboxResult(ok=False, kind="refused", error="Refused: " + "; ".join(problems[:5]))
    reply = _sandbox().request(
        {
            "code": code,
            "tables": {name: table_to_json(frame) for name, frame in tables.items()},
            "cpu_seconds": limits.cpu_seconds,
            "wall_seconds": limits.wall_seconds,
            "memory_mb": limits.memory_mb,
        }
    )
    if not reply.get("ok"):
        return SandboxResult(ok=False, kind=reply.get("kind", "error"), error=reply.get("error", "failed"))
    return SandboxResult(
        ok=True,
        result=reply["result"],
        new_df=reply.get("new_df"),
        df_changed=reply.get("df_changed", False),
        stdout=reply.get("stdout", ""),
    )
