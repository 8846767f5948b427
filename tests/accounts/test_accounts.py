import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.accounts import services
from apps.accounts.models import Role, User
from apps.accounts.permissions import can_access_area, can_view_owned, has_role


def test_signup_creates_user_with_chosen_role_and_logs_in(client, db):
    response = client.post(
        "/accounts/signup/",
        {"username": "newbie", "role": "teacher", "password1": "a-Strong-pass-91", "password2": "a-Strong-pass-91"},
    )
    assert response.status_code == 302
    user = User.objects.get(username="newbie")
    assert user.role == Role.TEACHER
    assert client.get("/").status_code == 200


def test_signup_cannot_choose_admin(client, db):
    response = client.post(
        "/accounts/signup/",
        {"username": "sneaky", "role": "admin", "password1": "a-Strong-pass-91", "password2": "a-Strong-pass-91"},
    )
    assert response.status_code == 200
    assert not User.objects.filter(username="sneaky").exists()


def test_login_logout_round_trip(client, student, password):
    response = client.post("/accounts/login/", {"username": "alice", "password": password})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert 'id="landing-login"' in client.get("/").content.decode()  # signed out: the landing page
    assert client.get("/jobs/").status_code == 302


def test_password_change(client_for, student, password):
    client = client_for(student)
    response = client.post(
        "/accounts/password/",
        {"old_password": password, "new_password1": "Another-Pass-77", "new_password2": "Another-Pass-77"},
    )
    assert response.status_code == 302
    student.refresh_from_db()
    assert student.check_password("Another-Pass-77")


def test_admin_role_sees_every_area(admin_user):
    assert all(can_access_area(admin_user, area) for area in ("pbl", "lingualens", "tables", "kbqa", "models"))


def test_roles_are_checked(student, researcher):
    assert has_role(student, Role.STUDENT)
    assert not has_role(student, Role.TEACHER)
    assert not can_access_area(student, "lingualens")
    assert can_access_area(researcher, "lingualens")
    assert not can_access_area(researcher, "pbl")


def test_owned_objects_are_private(student, teacher, admin_user):
    assert can_view_owned(student, student.pk)
    assert not can_view_owned(teacher, student.pk)
    assert can_view_owned(admin_user, student.pk)


def test_teacher_creates_cohort_and_student_joins_with_code(teacher, student):
    cohort = services.create_cohort(teacher, "Chemistry 10A")
    assert len(cohort.join_code) == 6
    joined = services.join_cohort(student, f"  {cohort.join_code.lower()} ")
    assert joined == cohort
    assert student in cohort.students.all()


def test_join_with_wrong_code_is_a_clear_error(student, cohort):
    with pytest.raises(ValidationError, match="No class has the code"):
        services.join_cohort(student, "NOPE99")


def test_only_teachers_create_and_only_students_join(student, teacher, cohort):
    with pytest.raises(PermissionDenied):
        services.create_cohort(student, "Mine")
    with pytest.raises(PermissionDenied):
        services.join_cohort(teacher, cohort.join_code)


def test_cohort_page_join_flow(client_for, student, cohort):
    client = client_for(student)
    response = client.post("/accounts/cohorts/", {"join-code": cohort.join_code}, follow=True)
    assert "You joined Physics 9B" in response.content.decode()
    response = client.post("/accounts/cohorts/", {"join-code": "ZZZZZZ"}, follow=True)
    assert "No class has the code ZZZZZZ" in response.content.decode()


def test_researcher_cannot_open_cohorts(client_for, researcher):
    assert client_for(researcher).get("/accounts/cohorts/").status_code == 403


def test_api_token_is_shown_once_and_stored_hashed(client_for, student):
    client = client_for(student)
    page = client.post("/accounts/profile/", {"name": "notebook"}).content.decode()
    token = student.api_tokens.get()
    assert token.prefix in page
    raw = page.split('<code class="token">')[1].split("</code>")[0]
    assert raw.startswith("atr_")
    assert token.key_hash != raw
    assert services.user_for_token(raw) == student
    assert raw not in client.get("/accounts/profile/").content.decode()


def test_revoked_token_no_longer_authenticates(student):
    token, raw = services.create_api_token(student, "t")
    assert services.revoke_api_token(student, token.pk)
    assert services.user_for_token(raw) is None


def test_demo_data_is_idempotent(db):
    from django.core.management import call_command

    call_command("load_demo_data")
    call_command("load_demo_data")
    assert sorted(User.objects.values_list("role", flat=True)) == sorted(["student", "teacher", "researcher", "admin"])
    assert User.objects.get(username="student").cohorts.count() == 1
