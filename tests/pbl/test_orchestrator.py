"""The orchestrator's signals and policy, read from the event log (no model needed), and
the rule that only evaluated submissions move a stage."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.pbl import deliverable, exams, milestones, orchestrator, services
from apps.pbl.models import ChatMessage, Event, MessageKind, MilestoneSubmission

pytestmark = pytest.mark.django_db

GOOD_DEFINE = (
    "Who is affected: every student and staff member who drinks from the school fountain and tap.\n"
    "Why it matters: lead from old pipes and bacteria can make students sick and harm their health.\n"
    "A good solution must: cost less than our budget and pass a water test that we measure every month.\n"
)


def later(minutes: float):
    return timezone.now() + timedelta(minutes=minutes)


def scaffolds(user):
    return list(Event.objects.filter(verb="scaffolded", result__for=user.username).order_by("timestamp"))


def test_idle_learner_gets_a_scaffold_with_its_reasons(run, team, learners):
    lena = learners[0]
    assert orchestrator.orchestrate_learner(run, team, lena) is None  # just joined: not idle
    message = orchestrator.orchestrate_learner(run, team, lena, now=later(6))
    assert message.kind == MessageKind.ORCHESTRATOR
    assert "@lena" in message.text
    [event] = scaffolds(lena)
    assert event.result["rule"].startswith("idle_minutes")
    assert event.result["type"] == "hint"  # no pre-exam: middle tier
    assert event.context["signals"]["idle_minutes"] >= 6
    assert event.context["thresholds"]["idle_minutes"] == 5
    # Cooldown: not again at once.
    assert orchestrator.orchestrate_learner(run, team, lena, now=later(7)) is None


def test_scaffold_adapts_to_the_proficiency_tier(run, team, learners):
    lena, omar, _ = learners
    exams.submit_exam(lena, run, "pre", {"q1": 0, "q2": 0, "q3": 0, "q4": ""})  # 0 of 5: low tier
    exams.submit_exam(omar, run, "pre", {"q1": 1, "q2": 1, "q3": 2, "q4": "they clog and grow bacteria"})
    low = orchestrator.orchestrate_learner(run, team, lena, now=later(6))
    high = orchestrator.orchestrate_learner(run, team, omar, now=later(6))
    assert low.meta["type"] == "decomposition"
    assert high.meta["type"] == "guiding_question"


def test_over_reliant_learner_gets_a_worked_example_of_another_problem(run, team, learners):
    lena = learners[0]
    exams.submit_exam(lena, run, "pre", {})
    for text in ["@Nova write it", "@Sam do it for me", "@Critic just give me the answer"]:
        services.post_message(lena, team, text)
    message = orchestrator.orchestrate_learner(run, team, lena)
    assert message.meta["type"] == "worked_example"
    assert "different" in message.text
    assert scaffolds(lena)[0].result["rule"].startswith("help_requests")


def test_copying_agent_text_prompts_reflection(run, team, learners):
    lena = learners[0]
    agent_text = (
        "Lead usually enters school water from old pipes and solder, and even small amounts harm "
        "the brain development of children, so testing the taps matters."
    )
    ChatMessage.objects.create(team=team, kind=MessageKind.AGENT, agent_name="Nova", text=agent_text)
    document = deliverable.get_document(team)
    result = deliverable.save_document(lena, team, document.text + "\n" + agent_text, document.version)
    assert result["copied"]
    assert Event.objects.get(verb="copied").result["from"] == "Nova"
    message = orchestrator.orchestrate_learner(run, team, lena)
    assert message.meta["type"] == "reflection"
    assert "own words" in message.text


def test_one_learner_doing_all_the_work(run, team, learners):
    lena, omar, _ = learners
    document = deliverable.get_document(team)
    deliverable.save_document(lena, team, document.text + "\n" + GOOD_DEFINE * 3, document.version)
    message = orchestrator.orchestrate_learner(run, team, lena)
    assert message.meta["type"] == "encourage_collaboration"
    assert "@omar" in message.text


def test_stage_moves_only_on_an_evaluated_complete_submission(run, team, learners, teacher):
    lena = learners[0]
    services.post_message(lena, team, "We are done with this stage, move us on!")
    team.refresh_from_db()
    assert team.current_stage == 0
    document = deliverable.get_document(team)
    deliverable.save_document(lena, team, GOOD_DEFINE, document.version)
    submission = milestones.submit_milestone(lena, team, "problem")
    with pytest.raises(ValidationError, match="being evaluated"):
        milestones.submit_milestone(lena, team, "problem")
    team.refresh_from_db()
    assert team.current_stage == 0  # not yet evaluated
    milestones.override_submission(teacher, submission, "needs_revision", "add evidence")
    team.refresh_from_db()
    assert team.current_stage == 0
    milestones.override_submission(teacher, submission, "complete", "fine after discussion")
    team.refresh_from_db()
    assert team.current_stage == 1
    assert Event.objects.filter(verb="completed", object_type="stage", object_id="define").exists()
    assert team.documents.count() == 1  # the research stage's document starts on first read
    assert deliverable.get_document(team).stage_key == "research"


def test_progressing_learner_sees_support_fade(run, team, learners, teacher):
    lena = learners[0]
    exams.submit_exam(lena, run, "pre", {"q1": 1, "q2": 1, "q3": 0, "q4": ""})  # 2 of 5: middle tier
    for milestone in ["problem"]:
        deliverable.save_document(lena, team, GOOD_DEFINE, deliverable.get_document(team).version)
        MilestoneSubmission.objects.filter(pk=milestones.submit_milestone(lena, team, milestone).pk).update(
            evaluated=True, verdict="complete"
        )
        milestones.maybe_advance(team)
    team.refresh_from_db()
    assert team.current_stage == 1
    before = orchestrator.compute_signals(run, team, lena)
    research = deliverable.get_document(team)
    deliverable.save_document(
        lena, team, research.text + "\nlead bacteria nitrate harm illness health " * 4, research.version
    )
    submission = milestones.submit_milestone(lena, team, "contaminants")
    MilestoneSubmission.objects.filter(pk=submission.pk).update(evaluated=True, verdict="complete")
    after = orchestrator.compute_signals(run, team, lena)
    assert after.success_streak == 2
    assert after.support_level < before.support_level
    message = orchestrator.orchestrate_learner(run, team, lena)
    assert message.meta["type"] == "fading"
    assert "step back" in message.text
    event = scaffolds(lena)[-1]
    assert event.result["support_level"] == after.support_level
    # Faded support waits longer: idle past the threshold but below twice it brings nothing.
    assert orchestrator.orchestrate_learner(run, team, lena, now=later(7)) is None
    late = orchestrator.orchestrate_learner(run, team, lena, now=later(12))
    assert late is not None
    assert late.meta["type"] in ("guiding_question", "reflection")


def test_tick_covers_every_learner_and_teacher_thresholds_apply(run, team, other_team, learners, teacher):
    services.set_thresholds(teacher, run, {"idle_minutes": 1})
    assert orchestrator.tick(now=later(2)) == 3
    posted = ChatMessage.objects.filter(kind=MessageKind.ORCHESTRATOR)
    assert sorted(m.meta["for"] for m in posted) == ["lena", "omar", "pia"]
    with pytest.raises(ValidationError):
        services.set_thresholds(teacher, run, {"dominant_share": 3})
