import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_secret


def test_env_bool_reads_common_spellings(monkeypatch):
    monkeypatch.setenv("FLAG", "yes")
    assert env_bool("FLAG", False) is True
    monkeypatch.setenv("FLAG", "0")
    assert env_bool("FLAG", True) is False


def test_env_bool_names_the_variable_on_a_bad_value(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        env_bool("FLAG", False)


def test_env_int_checks_type_and_minimum(monkeypatch):
    monkeypatch.setenv("COUNT", "twelve")
    with pytest.raises(ImproperlyConfigured, match="COUNT must be an integer"):
        env_int("COUNT", 1)
    monkeypatch.setenv("COUNT", "3")
    with pytest.raises(ImproperlyConfigured, match="at least 5"):
        env_int("COUNT", 10, minimum=5)
    assert env_int("MISSING_COUNT", 7) == 7


def test_env_list_splits_and_trims(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example , b.example,, ")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]


def test_env_secret_reads_file_variant(monkeypatch, tmp_path):
    secret_file = tmp_path / "key"
    secret_file.write_text("from-file\n")
    monkeypatch.setenv("MY_SECRET_FILE", str(secret_file))
    assert env_secret("MY_SECRET") == "from-file"
    monkeypatch.delenv("MY_SECRET_FILE")
    with pytest.raises(ImproperlyConfigured, match="MY_SECRET must be set"):
        env_secret("MY_SECRET")
