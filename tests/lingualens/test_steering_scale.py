"""Steering strength in units of the latent's own scale (its typical top activation): the run
records the scale, the hook adds strength x scale of the decoder direction, a latent that never
fired is refused with a way out, and the run's page says what was added."""

import pytest
import torch

from apps.lingualens import pipeline, services, steering
from apps.lingualens.models import Latent, SteeringRun
from apps.lingualens.sae import TopKSAE
from tests.lingualens.test_views_api import stored_sae  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


def test_scale_is_the_median_peak_of_the_top_contexts():
    latent = Latent(density=0.1, max_activation=9.0, top_contexts=[{"max": 2.0}, {"max": 3.0}, {"max": 7.0}])
    assert steering.latent_scale(latent) == 3.0  # one outlier peak does not set the unit
    assert steering.latent_scale(Latent(density=0.1, max_activation=4.0, top_contexts=[])) == 4.0
    assert steering.latent_scale(Latent(density=0.0)) is None
    assert steering.latent_scale(None) is None


def test_runs_record_the_scale_and_refuse_latents_without_one(researcher, stored_sae):  # noqa: F811
    run = steering.start_steering(researcher, stored_sae, "Hi", "3")
    assert run.interventions == [{"index": 3, "strength": steering.DEFAULT_STRENGTH, "mode": "add", "scale": 3.0}]
    with pytest.raises(services.LensInputError, match="never fired"):
        steering.start_steering(researcher, stored_sae, "Hi", "5:2")  # latent 5 has no statistics
    with pytest.raises(services.LensInputError, match="never fired"):
        steering.start_steering(researcher, stored_sae, "Hi", "5:set=1")
    # Ablation and a raw unit-length direction need no scale.
    assert steering.start_steering(researcher, stored_sae, "Hi", "5:set=0").interventions[0]["scale"] is None
    raw = steering.start_steering(researcher, stored_sae, "Hi", "5:7", normalize=True)
    assert raw.interventions[0]["strength"] == 7
    with pytest.raises(services.LensInputError, match="between -100 and 100"):
        steering.start_steering(researcher, stored_sae, "Hi", "3:500")


def test_run_page_says_what_was_added(client_for, researcher, stored_sae):  # noqa: F811
    run = steering.start_steering(researcher, stored_sae, "Hi", "3:2.5, 3:set=0")
    page = client_for(researcher).get(f"/lingualens/steer/{run.job_id}/").content.decode()
    assert "+2.5 × its typical top activation (3.00) along its decoder direction" in page
    assert "set to 0.0 × 3.00" in page
    form = client_for(researcher).get(f"/lingualens/steer/?sae={stored_sae.pk}&latent=3").content.decode()
    assert 'value="3:2"' in form  # the default strength, in the latent's units


def test_hook_adds_strength_times_scale_of_the_direction():
    torch.manual_seed(0)
    model = TopKSAE(d_in=8, d_sae=4, k=2)
    hidden = torch.randn(1, 5, 8)
    for scale in (0.5, 4.0):
        edit = pipeline.steering_hook(model, [{"index": 1, "strength": 2.0, "mode": "add", "scale": scale}], False)
        added = edit(hidden) - hidden
        assert torch.allclose(added[0, 0], torch.zeros(8))  # BOS (position 0) is left alone
        assert torch.allclose(added[0, 1:], (2.0 * scale * model.W_dec[1]).expand(4, 8), atol=1e-5)
    # A run queued before scales existed keeps its raw meaning (strength x decoder row).
    edit = pipeline.steering_hook(model, [{"index": 1, "strength": 2.0, "mode": "add"}], False)
    assert torch.allclose((edit(hidden) - hidden)[0, 1], 2.0 * model.W_dec[1], atol=1e-5)
    # Setting to 0 removes the latent's own contribution.
    edit = pipeline.steering_hook(model, [{"index": 1, "strength": 0.0, "mode": "set", "scale": None}], False)
    assert torch.allclose(model.encode(edit(hidden))[0, 1:, 1], torch.zeros(4), atol=1e-4)


def test_steering_run_keeps_its_interventions(researcher, stored_sae):  # noqa: F811
    steering.start_steering(researcher, stored_sae, "Hi", [{"index": 3, "strength": -1, "mode": "add"}])
    assert SteeringRun.objects.get().interventions[0] == {"index": 3, "strength": -1.0, "mode": "add", "scale": 3.0}
