"""The final state of LinguaLens pages after their jobs: a finished search lists its latents
(also when the page is opened after the job ended), a queued search says it is queued, the job
page shows no Python literals, and the training-loss chart's labels do not overlap."""

import re
import warnings
import xml.etree.ElementTree as ET

import pytest

from apps.jobs.models import Job
from apps.lingualens import services
from tests.lingualens.test_views_api import stored_sae  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db
SVG = "{http://www.w3.org/2000/svg}"


def finish_search(job: Job, sae) -> None:
    """What the worker stores for a search (the shape of pipeline.search_sentence)."""
    job.status = "succeeded"
    job.result = {
        "sae": sae.slug,
        "model": sae.model_name,
        "layer": sae.layer,
        "sentence": job.params["sentence"],
        "tokens": [{"token": "The", "latents": [[3, 1.5]]}, {"token": " door", "latents": [[3, 2.4], [5, 0.5]]}],
    }
    job.progress = 1.0
    job.save()


def test_search_page_opened_after_success_lists_the_latents(client_for, researcher, stored_sae):  # noqa: F811
    client = client_for(researcher)
    response = client.post("/lingualens/search/", {"sae": stored_sae.pk, "sentence": "The door was painted."})
    job = Job.objects.get(kind=services.SEARCH_KIND)
    finish_search(job, stored_sae)
    page = client.get(response.url).content.decode()
    assert 'data-status="succeeded"' in page
    assert f"layer {stored_sae.layer} ({stored_sae.slug})" in page
    assert "layer ()" not in page
    assert page.count('class="ll-latent-chip') == 3
    assert "/lingualens/features/gemma3-270m@l6-w16-k4:5/" in page
    assert "#3 <span>2.4</span>" in page  # the activation beside the chip


def test_queued_search_says_queued_with_its_place(client_for, researcher, stored_sae):  # noqa: F811
    client = client_for(researcher)
    ahead = services.start_search(researcher, stored_sae, "first")
    job = services.start_search(researcher, stored_sae, "second")
    for url in (f"/lingualens/search/?job={job.pk}", f"/lingualens/search/{job.pk}/result/"):
        page = client.get(url).content.decode()
        waiting = re.search(r'<p class="muted" id="search-waiting">(.*?)</p>', page, re.S).group(1)
        assert "Queued" in waiting
        assert "number 2 in the queue" in waiting
        assert "Running" not in waiting
    Job.objects.filter(pk=ahead.pk).update(status="running")
    Job.objects.filter(pk=job.pk).update(status="running", progress=0.5)
    page = client.get(f"/lingualens/search/{job.pk}/result/").content.decode()
    assert "Running in the worker… 50%" in page


def test_job_page_of_a_search_has_no_python_literals(client_for, researcher, stored_sae):  # noqa: F811
    client = client_for(researcher)
    job = services.start_search(researcher, stored_sae, "The door was painted.")
    finish_search(job, stored_sae)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    result = re.search(r'<p id="job-result".*?</p>', page, re.S).group(0)
    params = re.search(r'<dd id="job-params">.*?</dd>', page, re.S).group(0)
    for shown in (result, params):
        assert "{&#x27;" not in shown
        assert "[{" not in shown
    assert "2 items" in result  # the token grid is counted; the search page shows it
    assert "The door was painted." in params


def ytick_labels(svg: bytes) -> list[tuple[float, str]]:
    """(y, text) of each labelled y-axis tick of a matplotlib SVG, plain or math text."""
    labels = []
    for tick in ET.fromstring(svg).iter(  # noqa: S314  (our own chart)
        f"{SVG}g"
    ):
        if not (tick.get("id") or "").startswith("ytick_"):
            continue
        text = "".join("".join(t.itertext()) for t in tick.iter(f"{SVG}text")).strip()
        if not text:
            continue  # a minor tick without a label
        y = None
        for element in tick.iter():
            transform = element.get("transform") or ""
            if transform.startswith("translate("):
                y = float(transform[len("translate(") : -1].replace(",", " ").split()[1])
            elif element.tag == f"{SVG}text" and element.get("y") is not None and y is None:
                y = float(element.get("y"))
        labels.append((y, text))
    return sorted(labels)


@pytest.mark.parametrize("low", [0.12, 0.3, 0.02])
def test_training_loss_chart_labels_do_not_overlap(client_for, researcher, stored_sae, low):  # noqa: F811
    # A typical short run: from about 1 down to `low`, less than a decade on a log axis.
    stored_sae.loss_curve = [[step, low + (0.95 - low) * 0.97**step] for step in range(1, 400, 2)]
    stored_sae.save()
    svg = client_for(researcher).get(f"/lingualens/saes/{stored_sae.slug}/loss.svg").content
    labels = ytick_labels(svg)
    assert len(labels) >= 2, labels
    # Plain numbers in one text run: math text ("6x10^-1") is drawn glyph by glyph at positions
    # measured with matplotlib's font, and overlaps in a browser that has another one.
    assert all(re.fullmatch(r"\d+(\.\d+)?", text) for _y, text in labels), labels
    gaps = [b[0] - a[0] for a, b in zip(labels, labels[1:], strict=False)]
    assert min(gaps) >= 11, labels  # 10px labels need at least their height between them


def test_charts_speak_the_pages_language(client_for, researcher, stored_sae):  # noqa: F811
    client = client_for(researcher)
    stored_sae.loss_curve = []
    stored_sae.save()
    loss = f"/lingualens/saes/{stored_sae.slug}/loss.svg"
    assert "No training steps yet." in client.get(loss).content.decode()
    assert "尚无训练步。" in client.get(loss, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    stored_sae.loss_curve = [[step, 1 / step] for step in range(1, 50)]
    stored_sae.save()
    # Measured with the CJK font make test installs, even where matplotlib cached its font list
    # before that font was there (it then warned "Glyph ... missing from font(s) DejaVu Sans").
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drawn = client.get(loss, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert "归一化均方误差" in drawn
    assert "normalized MSE" not in drawn
    overview = client.get("/lingualens/overview.svg", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "英语" in overview
    assert "最佳 FRC（实线），其 FIC（虚线）" in overview
