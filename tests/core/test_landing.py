"""First contact: `/` says what Atrium is to someone signed out, demo accounts only where they
are safe to show, and a favicon."""

import io

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_signed_out_home_explains_the_four_systems_and_who_they_are_for(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    for system in ("pbl", "lingualens", "tables", "kbqa"):
        assert f'data-system="{system}"' in page
    assert page.count('class="for"') == 4  # each says who it is for
    assert "/accounts/login/" in page
    assert "/accounts/signup/" in page
    assert "/api/docs" in page
    assert 'id="demo-accounts"' not in page  # no demo data loaded


def test_demo_accounts_only_with_debug_and_demo_data(client, settings):
    settings.DEBUG = True
    assert 'id="demo-accounts"' not in client.get("/").content.decode()  # DEBUG alone is not enough
    call_command("load_demo_data", stdout=io.StringIO())
    page = client.get("/").content.decode()
    assert 'id="demo-accounts"' in page
    for username in ("student", "teacher", "researcher", "admin"):
        assert f"<code>{username}</code>" in page
    assert "atrium-demo" in page
    assert "DEMO42" in page
    settings.DEBUG = False
    page = client.get("/").content.decode()
    assert 'id="demo-accounts"' not in page
    assert "atrium-demo" not in page  # a production server never prints the password


def test_signed_in_home_is_the_areas(client_for, teacher):
    page = client_for(teacher).get("/").content.decode()
    assert 'id="area-cards"' in page
    assert 'id="systems"' not in page


def test_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO directory
    assert "max-age=86400" in response["Cache-Control"]
    page = client.get("/").content.decode()
    assert 'rel="icon" href="/favicon.ico"' in page
    assert client.get("/static/favicon.svg").status_code == 200
