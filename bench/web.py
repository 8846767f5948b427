"""Web load benchmark (issue 18, Measure): pages under load from logged-in clients.

    make bench-web                                   (uvicorn, WEB_PROCESSES processes)
    .venv/bin/python bench/web.py --server daphne    (the one-process server, for comparison)

With DEBUG=0 and the production server command (`python -m config.web`, or daphne), this:
1. prepares the database it is given (migrate, demo users, the PBL and LinguaLens demos; the
   KBQA demo when --kbqa-demo) and signs N clients in (one session each, made directly in the
   session store: password hashing is not part of the timed phase);
2. times every page alone (one client, sequential requests): median and p95 per page;
3. opens W WebSockets (job pages' sockets, each signed in) and keeps them open;
4. runs the N clients with no think time for D seconds, each looping over its role's main pages;
5. prints requests/s, p50/p95/p99 per page, errors, and how many WebSockets were still held.

The load generator runs on the same machine (plain asyncio streams in this process); its own CPU time
is printed so the share it took from the server is visible. Asserts nothing.
"""

import argparse
import asyncio
import io
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The server and this process share these: the session hash depends on SECRET_KEY.
SERVER_ENV = {
    "DEBUG": "0",
    "SECURE_SSL_REDIRECT": "0",  # plain http on loopback
    "SECRET_KEY": "bench-web-" + "k" * 50,
    "WEB_ACCESS_LOG": "0",
}
for _name, _value in SERVER_ENV.items():
    os.environ.setdefault(_name, _value)

import django  # noqa: E402

django.setup()

import logging  # noqa: E402

import httpx  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.core.management import call_command  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.jobs.models import Job  # noqa: E402

ROLE_PAGES = {
    "student": ["/", "/pbl/", "/tables/", "/kbqa/", "/jobs/"],
    "teacher": ["/", "/pbl/", "/accounts/cohorts/", "/tables/", "/kbqa/"],
    "researcher": ["/", "/lingualens/", "/lingualens/catalogue/", "/kbqa/", "/tables/"],
}


def prepare(kbqa_demo: bool) -> None:
    call_command("migrate", verbosity=0)
    commands = ["load_demo_data", "load_pbl_demo", "load_lingualens_demo"] + (["load_kbqa_demo"] if kbqa_demo else [])
    for command in commands:
        call_command(command, stdout=io.StringIO())


def session_cookie(user: User) -> str:
    """A signed-in session, as the log-in view would make it, without hashing the password."""
    from importlib import import_module

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}"


def start_server(kind: str, port: int, processes: int) -> subprocess.Popen:
    env = {**os.environ, "ATRIUM_PORT": str(port), "WEB_PROCESSES": str(processes)}
    if kind == "daphne":
        command = [
            str(Path(sys.executable).parent / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "config.asgi:application",
        ]
    else:
        command = [sys.executable, "-m", "config.web"]
    process = subprocess.Popen(
        command, cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"the {kind} server exited with {process.returncode}")
        time.sleep(0.5)
    raise SystemExit(f"the {kind} server did not answer /healthz within 120 s")


def stop_server(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


# What a broken or refused connection raises in Browser.get (IncompleteReadError is an EOFError).
CONNECTION_ERRORS = (OSError, EOFError, ValueError, TimeoutError)


class Browser:
    """One keep-alive HTTP/1.1 connection sending what a signed-in browser sends: its session cookie
    and the cookies the server sets (the CSRF cookie, so the server does not make a new CSRF secret
    for every page). Plain asyncio streams, not httpx: the load generator shares the two cores with
    the server, and httpx took about a third of a core at 200 requests/s. Cookies are kept by hand
    because the server marks them Secure (DEBUG=0) while the bench speaks plain http on loopback;
    behind TLS a browser keeps them."""

    def __init__(self, base: str, session_cookie: str) -> None:
        host_port = base.removeprefix("http://")
        self.host, port = host_port.split(":")
        self.port = int(port)
        name, value = session_cookie.split("=", 1)
        self.cookies = {name: value}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, timeout: float = 60) -> int:
        """The page's status; its body is read and dropped. Errors close the connection."""
        try:
            return await asyncio.wait_for(self._get(path), timeout)
        except CONNECTION_ERRORS:
            self.close()
            raise

    async def _get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAccept: text/html\r\n"
            f"Cookie: {cookie}\r\n\r\n".encode("latin1")
        )
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin1").split("\r\n")
        status = int(head[0].split()[1])
        length, chunked, close = 0, False, False
        for line in head[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                close = value.lower() == "close"
            elif name == "set-cookie":
                cookie_name, _, rest = value.partition("=")
                self.cookies[cookie_name.strip()] = rest.split(";", 1)[0]
        if chunked:
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readexactly(2)  # the empty line after the last chunk
        elif length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def ms(values: list[float]) -> list[float]:
    """p50, p95, p99 in milliseconds."""
    return [percentile(values, p) * 1000 for p in (50, 95, 99)]


async def warm_and_time_alone(base: str, cookies: dict[str, str], repeat: int) -> dict[str, list[float]]:
    alone: dict[str, list[float]] = defaultdict(list)
    for role, pages in ROLE_PAGES.items():
        browser = Browser(base, cookies[role])
        for page in pages:
            await browser.get(page)  # warm the process's caches (each process has its own)
            for _ in range(repeat):
                start = time.perf_counter()
                status = await browser.get(page)
                alone[f"{role} {page}"].append(time.perf_counter() - start)
                if status != 200:
                    raise SystemExit(f"{role} {page}: {status} (is the demo data loaded?)")
        browser.close()
    return alone


async def hold_sockets(base: str, count: int, targets: list[tuple[str, int]], opened: list) -> None:
    origin = base
    ws_base = base.replace("http://", "ws://")
    for i in range(count):
        cookie, job_id = targets[i % len(targets)]
        try:
            socket = await connect(
                f"{ws_base}/ws/jobs/{job_id}/",
                additional_headers={"Cookie": cookie, "Origin": origin},
                open_timeout=30,
                ping_interval=None,
            )
        except Exception as exc:  # noqa: BLE001  (counted, not fatal: the figure is how many held)
            opened.append(exc)
            continue
        opened.append(socket)


async def client_loop(base: str, cookie: str, pages: list[str], until: float, results: list, index: int) -> None:
    browser = Browser(base, cookie)
    i = index  # clients start at different pages
    while time.monotonic() < until:
        page = pages[i % len(pages)]
        i += 1
        start = time.perf_counter()
        try:
            status = await browser.get(page)
        except CONNECTION_ERRORS as exc:
            status = type(exc).__name__
        results.append((page, time.perf_counter() - start, status))
    browser.close()


def sign_in(args) -> dict:
    """Sessions for the role pages, one per load client, and an idle job per role for the sockets."""
    users = {role: User.objects.get(username=role) for role in ROLE_PAGES}
    cookies = {role: session_cookie(user) for role, user in users.items()}
    clients = [(role, session_cookie(users[role])) for role in list(ROLE_PAGES) * args.clients][: args.clients]
    jobs = {
        role: Job.objects.create(owner=user, kind="jobs.count", queue="bench-idle", params={"n": 1})
        for role, user in users.items()
    }
    return {
        "cookies": cookies,
        "clients": clients,
        "jobs": [job.pk for job in jobs.values()],
        "socket_targets": [(cookies[role], jobs[role].pk) for role in ROLE_PAGES],
    }


async def run(args, signed: dict) -> None:
    base = f"http://127.0.0.1:{args.port}"
    cookies, clients, socket_targets = signed["cookies"], signed["clients"], signed["socket_targets"]

    alone = await warm_and_time_alone(base, cookies, args.repeat)
    print(f"\n{args.server}, {args.processes if args.server == 'uvicorn' else 1} process(es), DEBUG=0")
    print("\nEach page alone (one client, sequential):")
    print(f"  {'page':42} {'median ms':>10} {'p95 ms':>8}")
    for page, times in alone.items():
        print(f"  {page:42} {statistics.median(times) * 1000:10.1f} {percentile(times, 95) * 1000:8.1f}")

    opened: list = []
    await hold_sockets(base, args.sockets, socket_targets, opened)
    sockets = [s for s in opened if not isinstance(s, Exception)]
    print(
        f"\nWebSockets opened: {len(sockets)} of {args.sockets}"
        + (f" (first error: {opened[0]})" if len(sockets) < args.sockets and opened else "")
    )

    results: list = []
    cpu_before = time.process_time()
    start = time.monotonic()
    until = start + args.duration
    await asyncio.gather(
        *(client_loop(base, cookie, ROLE_PAGES[role], until, results, i) for i, (role, cookie) in enumerate(clients))
    )
    elapsed = time.monotonic() - start
    load_cpu = time.process_time() - cpu_before

    held = 0
    for socket in sockets:
        try:
            await asyncio.wait_for(socket.ping(), timeout=10)
            held += 1
        except Exception:  # noqa: BLE001, S110  (a socket that does not answer is not held)
            pass
        await socket.close()

    by_page: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for page, seconds, status in results:
        by_page[page].append(seconds)
        if status != 200:
            errors[f"{page} {status}"] += 1
    every = [seconds for _page, seconds, _status in results]
    print(f"\nLoad: {args.clients} signed-in clients, no think time, {elapsed:.0f} s")
    print(f"  requests/s: {len(results) / elapsed:.1f}   ({len(results)} requests, {sum(errors.values())} errors)")
    print("  all pages: p50 {:.0f} ms, p95 {:.0f} ms, p99 {:.0f} ms".format(*ms(every)))
    print(f"  {'page':26} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for page, times in sorted(by_page.items()):
        print(f"  {page:26} {len(times):8} " + "{:8.0f} {:8.0f} {:8.0f}".format(*ms(times)))
    for what, count in sorted(errors.items()):
        print(f"  error: {what} x{count}")
    print(f"  WebSockets still held after the load: {held} of {len(sockets)}")
    print(f"  load generator CPU: {load_cpu:.1f} s in {elapsed:.0f} s ({load_cpu / elapsed * 100:.0f}% of one core)")


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--processes", type=int, default=settings.WEB_PROCESSES, help="uvicorn processes")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=10, help="requests per page in the 'alone' phase")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_WEB_PORT", "8765")))
    parser.add_argument("--kbqa-demo", action="store_true", help="also build the KBQA demo KBs (about a minute)")
    parser.add_argument("--skip-prepare", action="store_true")
    args = parser.parse_args()
    if not args.skip_prepare:
        prepare(args.kbqa_demo)
    signed = sign_in(args)
    server = start_server(args.server, args.port, args.processes)
    try:
        asyncio.run(run(args, signed))
    finally:
        stop_server(server)
        Job.objects.filter(pk__in=signed["jobs"]).delete()


if __name__ == "__main__":
    main()
