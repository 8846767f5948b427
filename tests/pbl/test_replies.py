"""Issue 15's workspace defects, without a model: the chat survives a reload (it is not
Django's flash messages), a reply's state follows its job (cancelled, failed, unavailable,
never pending forever), a cancelled reply is never generated, a failed one can be asked
again, learners rate replies, and nothing internal reaches a learner."""

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from apps.jobs.models import Job, JobStatus
from apps.jobs.services import cancel_job, start_job, sweep_stale_jobs
from apps.pbl import orchestrator, services
from apps.pbl.models import ChatMessage, Event, MessageStatus

pytestmark = pytest.mark.django_db


def section(html: str, start: str, end: str) -> str:
    """The page's text between a start marker and the first end marker after it ("" when absent)."""
    at = html.find(start)
    return "" if at < 0 else html[at : html.index(end, at)]


def ask(client, team, user, text: str) -> dict:
    client.force_login(user)
    response = client.post(f"/api/pbl/teams/{team.pk}/messages", data={"text": text}, content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def reply_of(client, team, reply_id: int) -> dict:
    return {m["id"]: m for m in client.get(f"/api/pbl/teams/{team.pk}/messages").json()}[reply_id]


def test_reload_shows_every_chat_message_in_the_chat_panel(client, team, learners):
    lena, omar, _pia = learners
    texts = ["Lead comes from old pipes", "I can test the fountain on Monday", "@Nova what is a nitrate?"]
    ask(client, team, lena, texts[0])
    ask(client, team, omar, texts[1])
    ask(client, team, lena, texts[2])
    client.force_login(lena)
    # A real flash message on the same page (a task added without htmx redirects with none; an error adds one).
    client.post(f"/pbl/teams/{team.pk}/tasks/", {"op": "add", "title": ""})
    html = client.get(f"/pbl/teams/{team.pk}/").content.decode()
    chat = section(html, 'id="chat-log"', "</section>")
    flash = section(html, '<ul class="messages"', "</ul>")
    for text in texts:
        assert text in chat, text
        assert text not in flash, text
    assert "A task needs a title." in flash  # Django's flash messages still work beside the chat
    assert chat.count('class="msg msg-') == ChatMessage.objects.filter(team=team).count()


def test_a_reply_follows_its_job(client, team, learners, settings):
    lena = learners[0]
    reply = ask(client, team, lena, "@Nova what is turbidity?")["replies"][0]
    assert reply["status"] == "queued"
    assert reply["job"] == ChatMessage.objects.get(pk=reply["id"]).job_id  # the API names the job
    message = ChatMessage.objects.select_related("job").get(pk=reply["id"])

    # Still queued after the limit: unavailable, and the bubble keeps asking (it will update when it arrives).
    Job.objects.filter(pk=message.job_id).update(
        created_at=timezone.now() - timedelta(seconds=settings.PBL_AGENT_UNAVAILABLE_AFTER_SECONDS + 1)
    )
    fragment = client.get(f"/pbl/messages/{message.pk}/").content.decode()
    assert 'data-status="unavailable"' in fragment
    assert "hx-trigger" in fragment
    assert 'data-action="cancel"' in fragment

    # The worker takes it: the same bubble shows it thinking, still polling.
    start_job(message.job_id)
    fragment = client.get(f"/pbl/messages/{message.pk}/").content.decode()
    assert 'data-status="thinking"' in fragment
    assert "hx-trigger" in fragment

    # The worker died mid-reply and the sweeper failed the job: failed, with a retry, not an empty bubble.
    ChatMessage.objects.filter(pk=message.pk).update(status=MessageStatus.STREAMING, text="")
    Job.objects.filter(pk=message.job_id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert sweep_stale_jobs() == 1
    fragment = client.get(f"/pbl/messages/{message.pk}/").content.decode()
    assert 'data-status="failed"' in fragment
    assert "hx-trigger" not in fragment
    assert 'data-action="retry"' in fragment
    assert reply_of(client, team, message.pk)["status"] == "failed"


def test_a_job_cancelled_from_the_jobs_page_shows_cancelled(client, team, learners):
    reply = ask(client, team, learners[0], "@Nova how do filters work?")["replies"][0]
    cancel_job(Job.objects.get(pk=reply["job"]))  # the generic jobs page or API, not the chat
    assert reply_of(client, team, reply["id"])["status"] == "cancelled"
    fragment = client.get(f"/pbl/messages/{reply['id']}/").content.decode()
    assert 'data-status="cancelled"' in fragment
    assert "hx-trigger" not in fragment  # no longer waiting


def test_cancel_then_retry_through_the_api(client, team, learners):
    lena, omar, _pia = learners
    reply = ask(client, team, lena, "@Nova where do nitrates come from?")["replies"][0]
    cancelled = client.post(f"/api/pbl/messages/{reply['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["text"]  # says so: never an empty bubble
    assert Job.objects.get(pk=reply["job"]).status == JobStatus.CANCELLED
    assert Event.objects.filter(verb="cancelled", object_id=str(reply["id"]), actor=lena).exists()
    again = client.post(f"/api/pbl/messages/{reply['id']}/cancel")
    assert again.status_code == 422
    assert "nothing to cancel" in again.json()["detail"]

    client.force_login(omar)  # a teammate may ask again
    retried = client.post(f"/api/pbl/messages/{reply['id']}/retry").json()
    assert retried["status"] == "queued"
    assert retried["job"] != reply["job"]
    assert retried["text"] == ""
    assert Event.objects.filter(verb="retried", object_id=str(reply["id"])).count() == 1
    assert client.post(f"/api/pbl/messages/{reply['id']}/retry").status_code == 422  # it is waiting again


def test_a_cancelled_reply_is_never_generated(team, learners):
    """The worker's own task body: a job cancelled after it started (the learner pressed Cancel
    while the worker picked it up) ends cancelled, with no reply text and no 'replied' event."""
    from apps.pbl import replies
    from apps.pbl.tasks import agent_reply

    lena = learners[0]
    result = services.post_message(lena, team, "@Nova write our problem statement")
    message = result["replies"][0]
    start_job(message.job_id)  # the worker has it: cancel can only raise the flag now
    message.refresh_from_db()
    replies.cancel_reply(lena, ChatMessage.objects.select_related("job", "team__run").get(pk=message.pk))
    assert Job.objects.get(pk=message.job_id).cancel_requested
    Job.objects.filter(pk=message.job_id).update(status=JobStatus.QUEUED)  # a redelivery finds it again
    agent_reply(message.job_id)
    message.refresh_from_db()
    assert message.status == MessageStatus.CANCELLED
    assert message.text.startswith("Cancelled")
    assert Job.objects.get(pk=message.job_id).status == JobStatus.CANCELLED
    assert not Event.objects.filter(verb__in=["replied", "refused", "downgraded"], object_id=str(message.pk)).exists()


def test_a_failed_reply_says_so_and_keeps_the_error_for_the_teacher(client, team, learners, teacher):
    from apps.pbl.agents import fail_reply

    reply = ask(client, team, learners[0], "@Nova what is a watershed?")["replies"][0]
    fail_reply(Job.objects.get(pk=reply["job"]), "APIConnectionError: Connection refused")
    seen = reply_of(client, team, reply["id"])
    assert seen["status"] == "failed"
    assert seen["text"] == "Nova could not answer this time."
    assert "Connection refused" not in str(seen)  # the learner gets words, not the exception
    client.force_login(teacher)
    assert "Connection refused" in reply_of(client, team, reply["id"])["policy"]["error"]


def test_learners_rate_replies_and_the_dashboard_and_export_carry_it(client, team, learners, teacher, run):
    lena, omar, _pia = learners
    reply = ask(client, team, lena, "@Nova what is a nitrate?")["replies"][0]
    early = client.post(
        f"/api/pbl/messages/{reply['id']}/feedback", data={"helpful": True}, content_type="application/json"
    )
    assert early.status_code == 422  # not answered yet
    ChatMessage.objects.filter(pk=reply["id"]).update(status=MessageStatus.DONE, text="Nitrates come from fertiliser.")
    client.post(f"/api/pbl/messages/{reply['id']}/feedback", data={"helpful": False}, content_type="application/json")
    rated = client.post(
        f"/api/pbl/messages/{reply['id']}/feedback", data={"helpful": True}, content_type="application/json"
    ).json()
    assert rated["feedback"] == {"lena": True}
    client.force_login(omar)
    page = client.post(f"/pbl/messages/{reply['id']}/action/", {"action": "not-helpful"}).content.decode()
    assert re.search(r'data-action="not-helpful" aria-pressed="true"', page)

    client.force_login(teacher)
    nova = next(a for a in client.get(f"/api/pbl/runs/{run.pk}/dashboard").json()["agents"] if a["name"] == "Nova")
    assert (nova["rated"], nova["helpful"], nova["not_helpful"]) == (2, 1, 1)  # lena's latest counts once
    assert nova["helpful_rate"] == 0.5
    html = client.get(f"/pbl/runs/{run.pk}/dashboard/").content.decode()
    assert 'data-agent="Nova"' in html
    assert 'data-helpful="1" data-rated="2"' in html
    statements = client.get(f"/api/pbl/runs/{run.pk}/events").json()
    rated_statements = [s for s in statements if s["verb"]["display"]["en-US"] == "rated"]
    assert len(rated_statements) == 3
    assert {s["result"]["helpful"] for s in rated_statements} == {True, False}
    csv_text = client.get(f"/api/pbl/runs/{run.pk}/events?format=csv").content.decode()
    assert csv_text.count(",rated,") == 3


def test_learners_never_see_rule_text_and_teachers_read_plain_words(client, team, learners, teacher, run):
    lena = learners[0]
    for text in ["@Nova write it for us", "@Nova write the statement", "@Nova what is lead?"]:
        services.post_message(lena, team, text)
    message = orchestrator.orchestrate_learner(run, team, lena)
    assert message is not None
    event = Event.objects.get(verb="scaffolded")
    assert "≥" in event.result["rule"]  # the exact rule stays in the log and the export
    client.force_login(lena)
    summary = client.get(f"/pbl/teams/{team.pk}/summary/").content.decode()
    assert "≥" not in summary
    assert "help_requests" not in summary
    assert "You asked the agents for a lot of help" in summary
    workspace = client.get(f"/api/pbl/teams/{team.pk}/workspace").json()
    assert all("policy" not in m for m in workspace["messages"])
    assert all({"may", "must_not", "role"} <= set(a) for a in workspace["agents"])

    client.force_login(teacher)
    dashboard = client.get(f"/pbl/runs/{run.pk}/dashboard/").content.decode()
    assert "help_requests+refusals" not in dashboard
    assert "lena asked the agents for help 3 time(s)" in dashboard
    assert "your limit: 3 together" in dashboard


def test_a_downgraded_draft_reads_as_words_for_the_teacher(client, team, learners, teacher, run):
    from apps.pbl.events import log_event

    log_event(
        run,
        "downgraded",
        "message",
        1,
        team=team,
        actor_name="agent:Nova",
        result={
            "reason": "deliverable_ready",
            "ready": True,
            "score": 1.19,
            "words": 131,
            "coverage": 0.5,
            "limits": {"max_words": 110},
            "draft_words": 131,
            "to": "lena",
        },
    )
    client.force_login(teacher)
    html = client.get(f"/pbl/runs/{run.pk}/dashboard/").content.decode()
    assert "deliverable-ready score" not in html
    assert "read like finished work for this stage: 131 words touching 50% of the stage" in html


def test_students_see_the_teams_they_can_join(client, run, team, other_team, cohort):
    from tests.factories import UserFactory

    newcomer = UserFactory(username="nia", role="student")
    cohort.students.add(newcomer)
    client.force_login(newcomer)
    html = client.get(f"/pbl/runs/{run.pk}/").content.decode()
    listed = section(html, 'id="team-list"', "</ul>")
    assert 'data-team="Otters"' in listed
    assert 'data-team="Herons"' in listed
    assert "lena, omar" in listed
    joined = client.post(f"/pbl/runs/{run.pk}/", {"team": "Herons"}, follow=True)
    assert services.learner_team(newcomer, run) == other_team
    assert "You are in team Herons." in [str(m) for m in get_messages(joined.wsgi_request)]


def test_task_board_over_htmx(client, team, learners):
    lena = learners[0]
    client.force_login(lena)
    url = f"/pbl/teams/{team.pk}/tasks/"
    headers = {"HX-Request": "true"}
    board = client.post(url, {"op": "add", "title": "Call the water board"}, headers=headers)
    assert board.status_code == 200
    html = board.content.decode()
    assert html.lstrip().startswith('<section class="panel task-board" id="task-board">')  # the board alone
    task = team.tasks.get(title="Call the water board")
    client.post(
        url, {"task": task.pk, "op": "edit", "title": "Call the water board today", "assignee": "omar"}, headers=headers
    )
    client.post(url, {"task": task.pk, "op": "move", "status": "done"}, headers=headers)
    task.refresh_from_db()
    assert (task.title, task.assignee.username, task.status) == ("Call the water board today", "omar", "done")
    error = client.post(url, {"task": task.pk, "op": "edit", "assignee": "pia"}, headers=headers).content.decode()
    assert 'id="board-error"' in error
    assert "pia is not in team Otters" in error
    gone = client.post(url, {"task": task.pk, "op": "delete"}, headers=headers).content.decode()
    assert f'data-task="{task.pk}"' not in gone
    assert not team.tasks.filter(pk=task.pk).exists()
    verbs = Event.objects.filter(verb="updated", object_type="task", object_id=str(task.pk)).count()
    assert verbs == 4  # added, edited, moved, deleted: each logged


def test_start_a_run_and_import_a_project_have_request_schemas(client, teacher, project, cohort):
    client.force_login(teacher)
    started = client.post(
        "/api/pbl/runs",
        data={"project": project.pk, "cohort": cohort.pk, "open": True},
        content_type="application/json",
    )
    assert started.status_code == 200, started.content
    assert started.json()["status"] == "open"
    missing = client.post(
        "/api/pbl/runs", data={"project": project.pk + 999, "cohort": cohort.pk}, content_type="application/json"
    )
    assert missing.status_code == 404
    spec = client.get("/api/openapi.json").json()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if method in ("post", "put", "patch") and path.startswith("/api/pbl/"):
                body = operation.get("requestBody")
                needs_body = not path.endswith(("/submit", "/cancel", "/retry"))
                assert body or not needs_body, f"{method.upper()} {path} has no request body schema"
    project_body = spec["paths"]["/api/pbl/projects"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "driving_question" in project_body["required"]
