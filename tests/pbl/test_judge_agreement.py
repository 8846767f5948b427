"""The dashboard shows how often the judge agreed with the teacher's overrides (issue 15)."""

import pytest

from apps.pbl import dashboard, milestones
from apps.pbl.models import MilestoneSubmission, Verdict

pytestmark = pytest.mark.django_db


def submit(team, learner, verdict: str, by: str = "model") -> MilestoneSubmission:
    return MilestoneSubmission.objects.create(
        team=team,
        stage_key="define",
        milestone_key="problem",
        submitted_by=learner,
        text="Who is affected: students.",
        evaluated=True,
        verdict=verdict,
        criteria=[{"key": "who", "verdict": verdict, "decided_by": by}, {"key": "why", "decided_by": "evidence"}],
    )


def test_agreement_counts_only_overridden_verdicts(teacher, run, team, learners, client_for):
    lena = learners[0]
    agreed = submit(team, lena, Verdict.COMPLETE)
    disagreed = submit(team, lena, Verdict.COMPLETE)
    submit(team, lena, Verdict.NEEDS_REVISION)  # never overridden: not part of the agreement
    milestones.override_submission(teacher, agreed, Verdict.COMPLETE, "right")
    milestones.override_submission(teacher, disagreed, Verdict.NEEDS_REVISION, "too generous")

    judge = dashboard.dashboard_data(run)["judge"]
    assert (judge["evaluated"], judge["overridden"], judge["agreed"]) == (3, 2, 1)
    assert judge["agreement"] == 0.5
    assert (judge["criteria_by_model"], judge["criteria"]) == (3, 6)
    assert dashboard.api_payload(dashboard.dashboard_data(run))["judge"]["agreement"] == 0.5

    page = client_for(teacher).get(f"/pbl/runs/{run.pk}/dashboard/").content.decode()
    assert 'id="judge-agreement" data-overridden="2" data-agreed="1"' in page
    assert "The judge agreed with 1 of the 2 verdicts you overrode (50%)." in page


def test_no_override_yet_says_so(teacher, run, team, learners, client_for):
    submit(team, learners[0], Verdict.COMPLETE)
    assert dashboard.dashboard_data(run)["judge"]["agreement"] is None
    page = client_for(teacher).get(f"/pbl/runs/{run.pk}/dashboard/").content.decode()
    assert "No verdict overridden yet" in page
