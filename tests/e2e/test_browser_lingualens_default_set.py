"""The default SAE set's notice as a researcher sees it in Chromium, in English and Chinese, while
the chain runs: its stage, the expected wait and the measured rates (screenshots in
var/screenshots/)."""

import pytest

from apps.jobs.models import Job, JobStatus
from apps.jobs.progress_text import message
from apps.lingualens import default_set
from apps.lingualens.models import SAE, ActivationRun
from apps.lingualens.progress import ACTIVATIONS, WITH_WAIT
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.test_browser_lingualens_scripts import CSS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def test_the_pages_say_what_the_default_set_is_doing_and_how_long_it_needs(page, client_for, researcher):
    job, _ = default_set.ensure_default_set()
    # Halfway through the activations, measured over five minutes of this job.
    ActivationRun.objects.filter(pk=job.params["run_id"]).update(n_tokens=575_000, seconds=300)
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING,
        progress=0.3,
        progress_message=message(
            WITH_WAIT, step=message(ACTIVATIONS, done=7000, total=14500, tokens="575,000"), minutes=171
        ),
    )
    state = default_set.status()
    assert state["collect_measured"]
    assert not state["train_measured"]
    assert state["collect_rate"] == pytest.approx(575_000 / 300)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    client = client_for(researcher)
    minutes = state["minutes_left"]
    steps = {
        "en": "Activations: 7000/14500 texts, 575,000 tokens (30%)",
        "zh-hans": "激活值：7000/14500 篇文本，575,000 个词元 (30%)",  # the worker's English message, translated
    }
    for language, wait in (("en", f"about {minutes} min"), ("zh-hans", f"约 {minutes} 分钟")):
        html = client.get("/lingualens/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
        page.set_content(html)
        page.add_style_tag(content=CSS.read_text(encoding="utf-8"))
        notice = page.locator("#default-set")
        assert notice.is_visible()
        assert wait in notice.inner_text()
        assert "1917" in notice.inner_text()  # the measured collection rate, tokens/s
        # One wait on the notice: the job message's own estimate (from when it was written) is cut.
        assert steps[language] in notice.inner_text()
        assert "171" not in notice.inner_text()
        notice.screenshot(path=str(SCREENSHOTS / f"lingualens-default-set-{language}.png"))
    assert SAE.objects.filter(pk__in=job.params["sae_ids"], status="pending").count() == len(default_set.LAYERS)
