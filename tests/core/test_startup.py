"""Settings and start-up behave on good and bad configuration (run in subprocesses,
because settings are read once per process)."""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_deploy_check_is_clean_without_debug():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "DEBUG": "0",
            "SECRET_KEY": "x" * 64 + "-a-long-random-production-key",
            "ALLOWED_HOSTS": "atrium.example.org",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_without_secret_key_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "DEBUG": "0"},
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_run_command_reports_broken_database_url_in_one_line():
    result = run_python(
        "import config.run; config.run.main()",
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/nowhere",
        REDIS_URL="redis://127.0.0.1:6379/1",
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("[atrium] error: cannot connect to DATABASE_URL")
    assert "Traceback" not in result.stderr


def test_run_command_rejects_non_postgres_url():
    result = run_python(
        "import config.run; config.run.main()",
        DATABASE_URL="sqlite:///db.sqlite3",
        REDIS_URL="redis://127.0.0.1:6379/1",
    )
    assert result.returncode == 1
    assert "must be a postgresql:// URL" in result.stderr
    assert "Traceback" not in result.stderr
