import pytest

from apps.accounts.models import Role
from apps.accounts.permissions import AREA_ROLES
from apps.accounts.services import create_api_token
from tests.kbqa.conftest import step


@pytest.fixture
def api(client, researcher):
    _token, raw = create_api_token(researcher, "t")
    return client, {"Authorization": f"Bearer {raw}"}


def test_import_list_and_execute(api, tiny_data):
    client, headers = api
    created = client.post(
        "/api/kbqa/kbs",
        {"name": "mini", "title": "Mini", "source": "hand-made", "data": tiny_data},
        content_type="application/json",
        headers=headers,
    )
    assert created.status_code == 201, created.content
    assert created.json()["stats"]["entities"] == 5
    listed = client.get("/api/kbqa/kbs", headers=headers).json()
    assert [kb["name"] for kb in listed if kb["name"] == "mini"] == ["mini"]
    again = client.post(
        "/api/kbqa/kbs", {"name": "mini", "data": tiny_data}, content_type="application/json", headers=headers
    )
    assert again.status_code == 409
    program = [step("Find", [], "Germany"), step("Relate", [0], "capital", "forward"), step("QueryName", [1])]
    ran = client.post(
        "/api/kbqa/execute", {"kb": "mini", "program": program}, content_type="application/json", headers=headers
    )
    assert ran.status_code == 200
    assert ran.json()["answer"] == ["Berlin"]
    assert [s["output"]["kind"] for s in ran.json()["steps"]] == ["entities", "entities", "names"]


def test_import_errors_are_422_with_paths(api, tiny_data):
    client, headers = api
    tiny_data["entities"]["FR"]["relations"][1]["object"] = "Q999"
    tiny_data["entities"]["DE"]["attributes"][0]["value"] = {"type": "quantity", "value": 1}
    response = client.post(
        "/api/kbqa/kbs", {"name": "bad", "data": tiny_data}, content_type="application/json", headers=headers
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        "entities.FR.relations[1].object: unknown entity 'Q999'",
        "entities.DE.attributes[0].value: missing key 'unit' (use \"1\" for a plain number)",
    ]
    bad_name = client.post(
        "/api/kbqa/kbs", {"name": "Not A Slug", "data": {}}, content_type="application/json", headers=headers
    )
    assert bad_name.status_code == 422


def test_execute_errors(api, tiny_kb):
    client, headers = api
    program = [step("Find", [], "France"), step("Relate", [0], "capitol", "forward")]
    ran = client.post(
        "/api/kbqa/execute", {"kb": "tiny", "program": program}, content_type="application/json", headers=headers
    )
    assert ran.status_code == 200
    assert ran.json()["steps"][1]["error"] == "no relation 'capitol' (did you mean 'capital'?)"
    assert ran.json()["answer"] is None
    missing = client.post(
        "/api/kbqa/execute", {"kb": "nope", "program": program}, content_type="application/json", headers=headers
    )
    assert missing.status_code == 404


def test_api_needs_auth_and_the_area(client, student, tiny_kb, monkeypatch):
    assert client.get("/api/kbqa/kbs").status_code == 401
    _token, raw = create_api_token(student, "s")
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/kbqa/kbs", headers=headers).status_code == 200
    monkeypatch.setitem(AREA_ROLES, "kbqa", frozenset({Role.ADMIN}))
    assert client.get("/api/kbqa/kbs", headers=headers).status_code == 403
    body = {"kb": "tiny", "program": [step("FindAll")]}
    assert client.post("/api/kbqa/execute", body, content_type="application/json", headers=headers).status_code == 403


def test_browse_pages(client_for, student, tiny_kb):
    client = client_for(student)
    listing = client.get("/kbqa/kbs/")
    assert listing.status_code == 200
    assert b"/kbqa/kbs/tiny/" in listing.content
    detail = client.get("/kbqa/kbs/tiny/")
    assert detail.status_code == 200
    page = detail.content.decode()
    assert "capital city" in page
    assert "shares border with" in page
    assert "square kilometre" in page
    found = client.get("/kbqa/kbs/tiny/?q=par", headers={"HX-Request": "true"}).content.decode()
    assert "Paris" in found
    assert "Lyon" not in found
    assert "<h1>" not in found
    assert client.get("/kbqa/kbs/missing/").status_code == 404


def test_browse_pagination(client_for, student, db):
    from apps.kbqa import services

    data = {"concepts": {}, "entities": {f"e{i}": {"name": f"Item {i:02d}"} for i in range(30)}}
    services.import_kb(None, "many", data)
    client = client_for(student)
    second = client.get("/kbqa/kbs/many/?page=2").content.decode()
    assert "Item 29" in second
    assert "Item 00" not in second
    assert "Page 2 of 2" in second


def test_pages_need_login_and_the_area(client, client_for, student, tiny_kb, monkeypatch):
    assert client.get("/kbqa/kbs/").status_code == 302
    monkeypatch.setitem(AREA_ROLES, "kbqa", frozenset({Role.ADMIN}))
    assert client_for(student).get("/kbqa/kbs/tiny/").status_code == 403


def test_the_parsers_page_never_reads_a_kbs_content_or_a_parsers_training_set(client, researcher, geo_parser):
    """A KB is megabytes of JSON: selecting it with each parser and evaluation took the page to
    half a second (the list shows names and metrics only)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.kbqa.models import ParserEvaluation

    ParserEvaluation.objects.create(parser=geo_parser, results=[])
    client.force_login(researcher)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/kbqa/parsers/")
    assert page.status_code == 200
    assert f"#{geo_parser.pk}" in page.text
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    for column in ('"kbqa_knowledgebase"."data"', '"kbqa_parsermodel"."dataset"', '"kbqa_parsermodel"."classifier"'):
        assert column not in sql
