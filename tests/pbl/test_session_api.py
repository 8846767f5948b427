"""One whole PBL session driven through the JSON API alone, as scripted learners and their
teacher would: tokens from passwords, the teacher imports the project and starts a run, the
learners join the class, take the pre-exam, find and join a team, work the task board, ask an
agent (answered by the real worker with the assistant model), write the deliverable, submit
the milestone (judged by the worker), take the post-exam; the teacher reads the dashboard and
the export. Nothing here touches a page or calls a service directly after the class exists."""

import time

import httpx
import pytest

from tests.factories import TEST_PASSWORD, CohortFactory, UserFactory
from tests.pbl.conftest import demo

pytestmark = [pytest.mark.live, pytest.mark.model, pytest.mark.django_db(transaction=True)]

WAITING = {"queued", "unavailable", "thinking", "pending", "streaming"}
DRAFT = (
    "Who is affected: the students and staff who drink from the school's taps and fountains.\n"
    "Why it matters: old pipes can put lead in the water, and lead harms children's health.\n"
    "A good solution must: fit our budget and pass a water test we repeat every month.\n"
)


def api_client(url: str, user) -> httpx.Client:
    """A script's client: it trades the account's password for a token, then uses only the token."""
    created = httpx.post(f"{url}/api/tokens", json={"name": "session script"}, auth=(user.username, TEST_PASSWORD))
    assert created.status_code == 201, created.text
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {created.json()['token']}"}, timeout=60)


def ok(response: httpx.Response) -> dict | list:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


def poll(fetch, done, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fetch()
        if done(value):
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {value}")


def answers_for(questions: list[dict]) -> dict:
    """A learner's answers: the first option of each choice, a sentence for each short one."""
    return {q["key"]: 0 if q["kind"] == "mc" else "Old filters clog and can grow bacteria." for q in questions}


def test_scripted_learners_run_a_whole_session_through_the_api(live_stack):
    teacher = UserFactory(role="teacher")
    cohort = CohortFactory(teacher=teacher)
    lena, omar = UserFactory(role="student"), UserFactory(role="student")
    url = live_stack.url
    teach, first, second = api_client(url, teacher), api_client(url, lena), api_client(url, omar)

    # The teacher brings the project and opens a run for the class.
    project = ok(teach.post("/api/pbl/projects", json=demo()))
    run = ok(teach.post("/api/pbl/runs", json={"project": project["id"], "cohort": cohort.pk, "open": True}))
    assert run["status"] == "open"
    assert first.post("/api/pbl/runs", json={"project": project["id"], "cohort": cohort.pk}).status_code == 403

    # Learners join the class with its code and see the run; the pre-exam comes first.
    for learner in (first, second):
        joined = ok(learner.post("/api/pbl/join", json={"code": cohort.join_code}))
        assert [r["id"] for r in joined["runs"]] == [run["id"]]
        exam = ok(learner.get(f"/api/pbl/runs/{run['id']}/exams/pre"))
        assert exam["questions"]
        assert all("answer" not in q and "rubric" not in q for q in exam["questions"])
        answers = {"answers": answers_for(exam["questions"])}
        pre = ok(learner.post(f"/api/pbl/runs/{run['id']}/exams/pre", json=answers))
        assert pre["pre"] is not None
        assert pre["post"] is None

    # One learner names a team; the other finds it in the list and joins it.
    assert ok(second.get(f"/api/pbl/runs/{run['id']}/teams")) == []
    team = ok(first.post(f"/api/pbl/runs/{run['id']}/team", json={"name": "River"}))
    [listed] = ok(second.get(f"/api/pbl/runs/{run['id']}/teams"))
    assert (listed["name"], listed["members"], listed["places"]) == ("River", [lena.username], 3)
    joined = ok(second.post(f"/api/pbl/runs/{run['id']}/team", json={"name": listed["name"]}))
    assert joined["id"] == team["id"]
    assert set(joined["members"]) == {lena.username, omar.username}
    base = f"/api/pbl/teams/{team['id']}"
    workspace = ok(first.get(f"{base}/workspace"))
    assert {a["name"] for a in workspace["agents"]}
    assert all(a["may"] for a in workspace["agents"])

    # The task board: add, rename and assign, move, delete.
    task = ok(first.post(f"{base}/tasks", json={"title": "Ask the caretaker about the pipes"}))
    ok(first.patch(f"{base}/tasks/{task['id']}", json={"title": "Ask the caretaker how old the pipes are"}))
    ok(first.patch(f"{base}/tasks/{task['id']}", json={"assignee": omar.username}))
    moved = ok(second.patch(f"{base}/tasks/{task['id']}", json={"status": "doing"}))
    assert moved == {
        "id": task["id"],
        "title": "Ask the caretaker how old the pipes are",
        "status": "doing",
        "assignee": omar.username,
    }
    seeded = next(t for t in workspace["tasks"] if t["id"] != task["id"])
    assert ok(second.delete(f"{base}/tasks/{seeded['id']}")) == {"deleted": seeded["id"]}
    tasks = {t["id"]: t for t in ok(first.get(f"{base}/workspace"))["tasks"]}
    assert seeded["id"] not in tasks
    assert tasks[task["id"]]["status"] == "doing"

    # Chat: a fair question to an agent; its reply carries the job the worker answers it in.
    # The learners keep working meanwhile, as a class does.
    agent = workspace["agents"][0]["name"]
    posted = ok(first.post(f"{base}/messages", json={"text": f"@{agent} what should we measure first?"}))
    [reply] = posted["replies"]
    assert reply["agent"] == agent
    assert isinstance(reply["job"], int)

    # The deliverable: one learner drafts it, the other adds to the saved version.
    saved = ok(first.put(f"{base}/document", json={"text": DRAFT, "base_version": workspace["document"]["version"]}))
    added = ok(
        second.put(
            f"{base}/document",
            json={"text": saved["text"] + "Sources: the caretaker.\n", "base_version": saved["version"]},
        )
    )
    assert added["version"] == saved["version"] + 1
    assert ok(first.get(f"{base}/workspace"))["document"]["text"] == DRAFT + "Sources: the caretaker.\n"
    assert {v["author"] for v in ok(first.get(f"{base}/document/versions"))} >= {lena.username, omar.username}

    # The milestone is submitted; a judge job evaluates it.
    milestone = workspace["stages"][0]["milestones"][0]["key"]
    submitted = ok(first.post(f"{base}/milestones/{milestone}/submit"))
    assert isinstance(submitted["job"], int)
    assert not submitted["evaluated"]

    # The post-exam, with a gain for each learner (once only).
    for learner in (first, second):
        exam = ok(learner.get(f"/api/pbl/runs/{run['id']}/exams/post"))
        answers = {"answers": answers_for(exam["questions"])}
        post = ok(learner.post(f"/api/pbl/runs/{run['id']}/exams/post", json=answers))
        assert post["pre"] is not None
        assert post["post"] is not None
        assert learner.post(f"/api/pbl/runs/{run['id']}/exams/post", json={"answers": {}}).status_code == 422

    # The worker's answers arrive: the agent's reply (the assistant model), then the judge's
    # verdict. The waits are long because the assistant model may be shared with other work on
    # a small CPU (a reply once queued for minutes there); they bound the test, they time nothing.
    reply = poll(
        lambda: {m["id"]: m for m in ok(second.get(f"{base}/messages"))}[reply["id"]],
        lambda m: m["status"] not in WAITING,
        timeout=900,
        what="the agent's reply",
    )
    assert reply["status"] in ("done", "guided"), reply
    assert reply["text"].strip()
    assert ok(first.get(f"/api/jobs/{reply['job']}"))["status"] == "succeeded"
    rated = ok(second.post(f"/api/pbl/messages/{reply['id']}/feedback", json={"helpful": True}))
    assert rated["feedback"] == {omar.username: True}
    judged = poll(
        lambda: ok(second.get(f"/api/pbl/submissions/{submitted['id']}")),
        lambda s: s["evaluated"],
        timeout=1800,
        what="the judge",
    )
    assert judged["verdict"] in ("complete", "needs_revision")
    assert judged["criteria"]
    assert all(c["feedback"] for c in judged["criteria"])

    # The teacher sees the session: both learners on the dashboard, every step in the export.
    dashboard = ok(teach.get(f"/api/pbl/runs/{run['id']}/dashboard"))
    assert {r["username"] for r in dashboard["learners"]} == {lena.username, omar.username}
    verbs = {s["verb"]["display"]["en-US"] for s in ok(teach.get(f"/api/pbl/runs/{run['id']}/events"))}
    assert {"joined", "posted", "replied", "edited", "submitted", "completed", "answered"} <= verbs
    assert first.get(f"/api/pbl/runs/{run['id']}/dashboard").status_code == 403
