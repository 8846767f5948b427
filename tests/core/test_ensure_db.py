"""`python -m config.ensure_db` creates the database a fresh machine lacks (what `make bench*` runs first)."""

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from django.conf import settings

from config.ensure_db import ensure_database


@pytest.fixture
def fresh_url():
    db = settings.DATABASES["default"]
    name = f"atrium_ensure_{uuid.uuid4().hex[:10]}"
    url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}"
    yield name, url
    with psycopg.connect(dbname="postgres", user=db["USER"], host=db["HOST"], port=db["PORT"], autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')


def database_exists(name: str) -> bool:
    db = settings.DATABASES["default"]
    with psycopg.connect(dbname="postgres", user=db["USER"], host=db["HOST"], port=db["PORT"]) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def test_creates_a_missing_database_once(fresh_url):
    name, url = fresh_url
    assert not database_exists(name)
    assert ensure_database(url) is True
    assert database_exists(name)
    assert ensure_database(url) is False  # a second run finds it and changes nothing


def test_command_line_creates_it_and_says_so(fresh_url):
    name, url = fresh_url
    env = {**os.environ, "DATABASE_URL": url}
    first = subprocess.run([sys.executable, "-m", "config.ensure_db"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert f"database '{name}' created" in first.stdout
    again = subprocess.run([sys.executable, "-m", "config.ensure_db"], env=env, capture_output=True, text=True)
    assert again.returncode == 0
    assert f"database '{name}' exists" in again.stdout
    # Django then connects to it (what a bench does next).
    db = settings.DATABASES["default"]
    with psycopg.connect(dbname=name, user=db["USER"], host=db["HOST"], port=db["PORT"]) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_unreachable_server_is_a_clear_error():
    env = {**os.environ, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/atrium"}
    result = subprocess.run([sys.executable, "-m", "config.ensure_db"], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "cannot make sure the database exists" in result.stderr
