import pytest


@pytest.mark.parametrize(
    ("role", "visible", "hidden"),
    [
        ("student", ["pbl", "tables", "kbqa"], ["lingualens"]),
        ("teacher", ["pbl", "tables", "kbqa"], ["lingualens"]),
        ("researcher", ["lingualens", "tables", "kbqa"], ["pbl"]),
        ("admin", ["pbl", "lingualens", "tables", "kbqa"], []),
    ],
)
def test_navigation_shows_the_areas_of_each_role(client_for, role, visible, hidden, django_user_model):
    user = django_user_model.objects.create_user(username=f"u-{role}", password="pw-12345-abc", role=role)
    page = client_for(user).get("/").content.decode()
    for area in visible:
        assert f'data-area="{area}"' in page
    for area in hidden:
        assert f'data-area="{area}"' not in page


def test_wrong_role_gets_friendly_403(client_for, student):
    response = client_for(student).get("/lingualens/")
    assert response.status_code == 403
    assert "not open to your role" in response.content.decode()


def test_anonymous_is_sent_to_login(client):
    response = client.get("/tables/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_unknown_url_gets_friendly_404(client_for, student):
    response = client_for(student).get("/no/such/page/")
    assert response.status_code == 404
    assert "could not find that page" in response.content.decode()


def test_chinese_ui_via_language_switch(client_for, student):
    client = client_for(student)
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert response.status_code == 302
    page = client.get("/").content.decode()
    assert "欢迎" in page
    assert 'lang="zh-hans"' in page


def test_csrf_is_enforced(student):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(student)
    from apps.jobs.models import Job

    job = Job.objects.create(owner=student, kind="jobs.count", queue="cpu")
    response = client.post(f"/jobs/{job.pk}/cancel/")
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == "queued"  # nothing changed without the token
