"""LinguaLens progress messages (apps/jobs/progress_text.py): workers save them in English, pages
show them in the reader's language."""

from django.utils.translation import gettext_noop

from apps.jobs.progress_text import template

ACTIVATIONS = template(gettext_noop("Activations: {done}/{total} texts, {tokens} tokens"))
TRAINING_STEP = template(gettext_noop("SAE step {step}/{steps}, normalized MSE {mse}"))
METRICS = template(gettext_noop("Metrics: reconstruction and CE loss recovered"))
STATISTICS = template(gettext_noop("Latent statistics"))
SCORED = template(gettext_noop("Scored {done}/{total}: {feature}"))
EXPLAINED = template(gettext_noop("Explained {done}/{total}: #{latent} {explanation}"))
JUDGED = template(gettext_noop("Judged {done}/{total}: #{latent}"))
READING = template(gettext_noop("Reading the sentence"))
WITHOUT_INTERVENTION = template(gettext_noop("Without intervention: {count} characters"))
WITH_INTERVENTION = template(gettext_noop("With intervention: {count} characters"))
# The default set's chain: a stage's message, then the wait left for the whole set.
WAIT_MARK = " · about "  # status() cuts the wait off at this mark: the notice states it once
WITH_WAIT = template(gettext_noop("{step} · about {minutes} min left"), wraps=True)
# An SAE's explanation runs beside the next SAE's training and scoring: both stages are shown.
ALONGSIDE = template(gettext_noop("{step}; alongside: {other}"), wraps=True)
