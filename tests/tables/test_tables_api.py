from pathlib import Path

import pytest

from apps.accounts.services import create_api_token

DATA = Path(__file__).parent / "data"


@pytest.fixture
def api(client, researcher):
    _token, raw = create_api_token(researcher, "t")
    return client, {"Authorization": f"Bearer {raw}"}


def test_scriptable_upload_preview_versions_download(api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client, headers = api
    response = client.post(
        "/api/tables/workbooks",
        {"file": SimpleUploadedFile("sales.csv", (DATA / "sales.csv").read_bytes())},
        headers=headers,
    )
    assert response.status_code == 201, response.content
    sheet_id = response.json()["sheets"][0]["id"]
    preview = client.get(f"/api/tables/sheets/{sheet_id}", headers=headers).json()
    assert preview["version"]["rows"] == 5
    assert preview["rows"][0][0] == "2026-01"
    versions = client.get(f"/api/tables/sheets/{sheet_id}/versions", headers=headers).json()
    assert len(versions) == 1
    assert versions[0]["current"]
    assert client.post(f"/api/tables/sheets/{sheet_id}/undo", headers=headers).status_code == 409
    download = client.get(f"/api/tables/versions/{versions[0]['id']}/download?format=xlsx", headers=headers)
    assert download.content[:2] == b"PK"


def test_api_errors(api, student):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client, headers = api
    bad = client.post("/api/tables/workbooks", {"file": SimpleUploadedFile("x.odt", b"PK")}, headers=headers)
    assert bad.status_code == 422
    assert "unsupported file type" in bad.json()["detail"]
    ok = client.post(
        "/api/tables/workbooks",
        {"file": SimpleUploadedFile("s.csv", (DATA / "sales.csv").read_bytes())},
        headers=headers,
    )
    sheet_id = ok.json()["sheets"][0]["id"]
    empty = client.post(
        f"/api/tables/sheets/{sheet_id}/ask", {"question": " "}, content_type="application/json", headers=headers
    )
    assert empty.status_code == 422
    _token, other = create_api_token(student, "s")
    assert client.get(f"/api/tables/sheets/{sheet_id}", headers={"Authorization": f"Bearer {other}"}).status_code == 404


def test_ownership_is_the_same_rule_everywhere(api, student, admin_user):
    """Owner and admins see a workbook's versions and messages; other users get 404."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.tables.models import SheetVersion

    client, headers = api
    client.post(
        "/api/tables/workbooks",
        {"file": SimpleUploadedFile("s.csv", (DATA / "sales.csv").read_bytes())},
        headers=headers,
    )
    version = SheetVersion.objects.get()
    url = f"/api/tables/versions/{version.pk}/download"
    _t, admin_token = create_api_token(admin_user, "a")
    _t, student_token = create_api_token(student, "s")
    assert client.get(url, headers={"Authorization": f"Bearer {admin_token}"}).status_code == 200
    assert client.get(url, headers={"Authorization": f"Bearer {student_token}"}).status_code == 404
