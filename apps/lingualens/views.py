"""LinguaLens pages (researchers and admins). Thin: services.py holds the logic, the
pipeline runs in workers; these views validate, start jobs and show what is stored."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, F, Max
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from apps.accounts.permissions import area_required, can_view_owned
from apps.jobs.models import Job, JobStatus
from apps.jobs.services import queue_position
from apps.lingualens import plots, services, steering, summaries
from apps.lingualens.models import (
    SAE,
    ActivationRun,
    Corpus,
    Dimension,
    FeatureScore,
    Language,
    LinguisticFeature,
    RunStatus,
    SteeringRun,
)
from apps.lingualens.pair_split import MAX_PAIRS, split_pairs, splits_by_span

AREA = "lingualens"


def svg(content: bytes) -> HttpResponse:
    response = HttpResponse(content, content_type="image/svg+xml")
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


def upload_too_large(request, limit: int) -> str | None:
    """Checked from the header, before the body is read."""
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > limit:
        return _("The upload is %(size).1f MB; the limit is %(limit).0f MB.") % {
            "size": length / 1e6,
            "limit": limit / 1e6,
        }
    return None


def display_token(token: str) -> str:
    return token.replace("\n", "⏎")


def highlighted(context: dict) -> dict:
    """A stored context as tokens with a 0-1 intensity for the highlight."""
    top = max(context["acts"]) or 1.0
    tokens = [
        {"text": display_token(t), "act": a, "alpha": round(max(a, 0) / top, 2), "focus": i == context["focus"]}
        for i, (t, a) in enumerate(zip(context["tokens"], context["acts"], strict=True))
    ]
    return {"tokens": tokens, "max": context["max"]}


def floor_summary() -> dict | None:
    """How many best latents (one per SAE and feature) clearly beat their random floor."""
    best = FeatureScore.objects.filter(rank=0, floor_frc__isnull=False, frc_low__isnull=False)
    total = best.count()
    if not total:
        return None
    return {"beating": best.filter(frc_low__gt=F("floor_frc")).count(), "total": total}


# ---- home -----------------------------------------------------------------------------------


@area_required(AREA)
def index(request):
    saes = SAE.objects.select_related("run__corpus", "job").order_by("layer", "-created_at")
    return render(
        request,
        "lingualens/index.html",
        {
            "saes": saes,
            "corpora": Corpus.objects.all(),
            "runs": ActivationRun.objects.select_related("corpus")[:10],
            "n_features": LinguisticFeature.objects.count(),
            "languages": Language.choices,
            "max_corpus_mb": services.MAX_CORPUS_BYTES // 10**6,
            "has_scores": FeatureScore.objects.exists(),
            "floor": floor_summary(),
            "cross_lingual": summaries.cross_lingual_table(),
        },
    )


@area_required(AREA)
@require_POST
def corpus_upload(request):
    too_large = upload_too_large(request, services.MAX_CORPUS_BYTES + 64 * 1024)
    if too_large:
        messages.error(request, too_large)
        return redirect("lingualens:index")
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, _("Choose a .txt or .jsonl file to upload."))
        return redirect("lingualens:index")
    if upload.size > services.MAX_CORPUS_BYTES:
        messages.error(
            request,
            _("%(name)s is %(size).1f MB; the limit is %(limit).0f MB.")
            % {"name": upload.name, "size": upload.size / 1e6, "limit": services.MAX_CORPUS_BYTES / 1e6},
        )
        return redirect("lingualens:index")
    try:
        texts = services.parse_corpus(upload.name, upload.read())
    except services.LensInputError as exc:
        messages.error(request, str(exc))
        return redirect("lingualens:index")
    name = request.POST.get("name") or upload.name
    source = (request.POST.get("source") or "").strip() or f"Uploaded by {request.user.username} ({upload.name})"
    corpus = services.create_corpus(request.user, name, source[:1000], texts)
    messages.success(request, _("Corpus “%(name)s” saved: %(n)d texts.") % {"name": corpus.name, "n": len(texts)})
    return redirect("lingualens:index")


@area_required(AREA)
@require_POST
def train(request):
    corpus = Corpus.objects.filter(pk=request.POST.get("corpus") or 0).first()
    if corpus is None:
        messages.error(request, _("Pick a corpus."))
        return redirect("lingualens:index")
    post = request.POST
    try:
        sae = services.start_training(
            request.user,
            corpus,
            post.get("layer"),
            width=post.get("width", 1024),
            k=post.get("k", 32),
            training_tokens=post.get("training_tokens", 200_000),
            max_texts=post.get("max_texts", 4000),
            max_tokens_per_text=post.get("max_tokens_per_text", 48),
        )
    except services.LensInputError as exc:
        messages.error(request, _("Not started: %(error)s.") % {"error": exc})
        return redirect("lingualens:index")
    messages.success(request, _("Training %(sae)s queued.") % {"sae": sae.slug})
    return redirect("lingualens:sae", slug=sae.slug)


@area_required(AREA)
def overview_svg(request):
    return svg(plots.overview(summaries.overview_table()))


@area_required(AREA)
def cross_lingual_svg(request):
    return svg(plots.cross_lingual(summaries.cross_lingual_table()))


# ---- catalogue ------------------------------------------------------------------------------


@area_required(AREA)
def catalogue(request):
    if request.method == "POST":
        try:
            feature = services.add_feature(
                request.user,
                request.POST.get("language"),
                request.POST.get("dimension"),
                request.POST.get("name"),
                request.POST.get("description", ""),
            )
        except services.LensInputError as exc:
            messages.error(request, _("Not added: %(error)s.") % {"error": exc})
            return redirect("lingualens:catalogue")
        messages.success(
            request, _("Feature “%(name)s” added; now add its counterfactual pairs.") % {"name": feature.name}
        )
        return redirect("lingualens:feature", feature_id=feature.pk)
    features = LinguisticFeature.objects.all()
    language = request.GET.get("language")
    if language in Language.values:
        features = features.filter(language=language)
    best = dict(FeatureScore.objects.values_list("feature_id").annotate(best=Max("frc")))
    # Counted in the database: loading every pair only to count them made this the slowest page.
    rows = [
        {"feature": feature, "pairs": feature.pair_count, "best": best.get(feature.pk)}
        for feature in features.annotate(pair_count=Count("pairs"))
    ]
    grouped = {}
    for row in rows:
        grouped.setdefault((row["feature"].get_language_display(), row["feature"].get_dimension_display()), []).append(
            row
        )
    return render(
        request,
        "lingualens/catalogue.html",
        {
            "grouped": sorted(grouped.items()),
            "languages": Language.choices,
            "dimensions": Dimension.choices,
            "count": len(rows),
        },
    )


@area_required(AREA)
@require_POST
def catalogue_import(request):
    too_large = upload_too_large(request, services.MAX_IMPORT_BYTES + 64 * 1024)
    upload = request.FILES.get("file")
    if too_large or upload is None:
        messages.error(request, too_large or _("Choose a .jsonl file to import."))
        return redirect("lingualens:catalogue")
    try:
        text = services.decode_utf8(upload.read(), upload.name)
        report = services.import_catalogue(text, request.POST.get("mode", "keep"), request.user)
    except services.LensInputError as exc:
        messages.error(request, str(exc))
        return redirect("lingualens:catalogue")
    level = messages.success if report.applied and not report.errors else messages.warning
    level(request, report.summary)
    for line, reason in report.errors[:20]:
        messages.error(request, _("Line %(line)d: %(reason)s") % {"line": line, "reason": reason})
    if len(report.errors) > 20:
        messages.error(request, _("… and %(n)d more bad lines.") % {"n": len(report.errors) - 20})
    return redirect("lingualens:catalogue")


@area_required(AREA)
def catalogue_export(request):
    features = LinguisticFeature.objects.all()
    if request.GET.get("language") in Language.values:
        features = features.filter(language=request.GET["language"])
    response = HttpResponse(services.export_catalogue(features), content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="lingualens-catalogue.jsonl"'
    return response


@area_required(AREA)
def feature_detail(request, feature_id: int):
    feature = get_object_or_404(LinguisticFeature, pk=feature_id)
    if request.method == "POST":
        try:
            services.add_pair(
                feature, request.POST.get("sentence"), request.POST.get("counterfactual"), request.POST.get("span")
            )
            messages.success(request, _("Pair added."))
        except services.LensInputError as exc:
            messages.error(request, _("Pair not added: %(error)s.") % {"error": exc})
            # What was typed comes back in the form: nothing is lost.
            return render(request, "lingualens/feature.html", feature_context(feature, request.POST), status=400)
        return redirect("lingualens:feature", feature_id=feature.pk)
    return render(request, "lingualens/feature.html", feature_context(feature))


def feature_context(feature: LinguisticFeature, typed=None) -> dict:
    other_language = "zh" if feature.language == "en" else "en"
    others = []
    for other in LinguisticFeature.objects.filter(language=other_language, dimension=feature.dimension):
        layers = summaries.best_layers(other)
        best = max(layers, key=lambda r: r["frc"]) if layers else None
        others.append({"feature": other, "best": best})
    scores = list(FeatureScore.objects.filter(feature=feature).select_related("sae__run").order_by("layer", "rank"))
    for score in scores:
        score.fid = score.sae.feature_id(score.latent_index)
    pairs = list(feature.pairs.all())
    split = pair_split_context(pairs)
    return {
        "feature": feature,
        "pairs": pairs,
        "split": split,
        # Pairs added after scoring change the halves; the scores then describe the old ones.
        "scores_predate_pairs": any(s.n_heldout and s.n_heldout != split["held_out"] for s in scores),
        "layers": summaries.best_layers(feature),
        "scores": scores,
        "others": others,
        "other_language": dict(Language.choices)[other_language],
        "typed": typed or {},
    }


def pair_split_context(pairs: list) -> dict:
    """How scoring splits these pairs (pair_split.py), for the page: each pair gets its `half`."""
    scored = pairs[:MAX_PAIRS]
    selection, held_out = split_pairs(scored)
    held_ids = {pair.pk for pair in held_out}
    for number, pair in enumerate(pairs):
        pair.half = "unscored" if number >= MAX_PAIRS else "held_out" if pair.pk in held_ids else "selection"
    return {
        "by_span": splits_by_span(scored),
        "spans": len({pair.span for pair in scored}),
        "selection": len(selection),
        "held_out": len(held_out),
        "selection_spans": len({pair.span for pair in selection}),
        "held_out_spans": len({pair.span for pair in held_out}),
    }


@area_required(AREA)
def feature_layers_svg(request, feature_id: int):
    feature = get_object_or_404(LinguisticFeature, pk=feature_id)
    return svg(plots.layer_profile(summaries.best_layers(feature), feature.name))


# ---- SAEs and latents ------------------------------------------------------------------------


@area_required(AREA)
def sae_detail(request, slug: str):
    sae = get_object_or_404(SAE.objects.select_related("run__corpus", "job"), slug=slug)
    latents = sae.latents.order_by("-density")
    page = Paginator(latents, 50).get_page(request.GET.get("page"))
    matched = list(FeatureScore.objects.filter(sae=sae, rank=0).select_related("feature").order_by("-frc"))
    score_job = Job.objects.filter(kind=services.SCORE_KIND, params__sae_id=sae.pk).first()
    explain_job = Job.objects.filter(kind=services.EXPLAIN_KIND, params__sae_id=sae.pk).first()
    busy = any(job and not job.is_finished for job in (sae.job, score_job, explain_job))
    # A worker killed for good (the sweeper failed its job) leaves the SAE "running": offer resume.
    stalled = sae.status in (RunStatus.PENDING, RunStatus.RUNNING) and sae.job_stopped
    explanations = summaries.explanations(sae)
    return render(
        request,
        "lingualens/sae.html",
        {
            "sae": sae,
            "page": page,
            "matched": matched,
            "score_job": score_job,
            "explain_job": explain_job,
            "can_explain": services.explain_available(),
            "explained": len(explanations["latents"]),
            "explanations": explanations,
            "metrics": sae.metrics,
            "dead": sae.latents.filter(density=0).count(),
            "busy": busy,
            "stalled": stalled,
            "beating": sum(1 for score in matched if score.beats_floor),
        },
    )


@area_required(AREA)
@require_POST
def sae_action(request, slug: str, action: str):
    if action not in ("score", "explain", "resume", "restart"):
        raise Http404("No such action")
    sae = get_object_or_404(SAE, slug=slug)
    try:
        if action == "score":
            services.start_scoring(request.user, sae)
            messages.success(request, _("Scoring against the catalogue queued."))
        elif action == "explain":
            if not services.explain_available():  # a job no worker can run would wait forever
                raise services.LensInputError(_("Explanations need the workers' explanation task."))
            services.start_explaining(request.user, sae, request.POST.get("limit") or 24)
            messages.success(request, _("Explanations by the assistant model queued."))
        else:
            services.restart_training(request.user, sae, resume=action == "resume")
            messages.success(request, _("Training resumed.") if action == "resume" else _("Training restarted."))
    except services.LensInputError as exc:
        messages.error(request, str(exc))
    return redirect("lingualens:sae", slug=sae.slug)


@area_required(AREA)
def sae_refresh(request, slug: str):
    """Polled by the SAE page while its jobs run: 204 until they end, then htmx reloads the page."""
    sae = get_object_or_404(SAE, slug=slug)
    running = Job.objects.filter(pk=sae.job_id).exclude(status__in=["succeeded", "failed", "cancelled"]).exists()
    running = (
        running
        or Job.objects.filter(
            kind__in=[services.SCORE_KIND, services.EXPLAIN_KIND],
            params__sae_id=sae.pk,
            status__in=["queued", "running"],
        ).exists()
    )
    if running:
        return HttpResponse(status=204)
    return HttpResponseClientRefresh()


@area_required(AREA)
def sae_loss_svg(request, slug: str):
    sae = get_object_or_404(SAE, slug=slug)
    return svg(plots.loss_curve(sae.loss_curve))


def _latent_or_404(feature_id: str):
    found = services.latent_by_id(feature_id)
    if found is None:
        raise Http404("No such SAE feature")
    return found


@area_required(AREA)
def latent_detail(request, feature_id: str):
    sae, latent, index = _latent_or_404(feature_id)
    if request.method == "POST":
        if latent is None:
            raise Http404("Statistics for this latent are not computed yet")
        latent.note = (request.POST.get("note") or "")[:5000]
        latent.note_updated_at = timezone.now()
        latent.save(update_fields=["note", "note_updated_at"])
        messages.success(request, _("Note saved."))
        return redirect("lingualens:latent", feature_id=feature_id)
    scores = FeatureScore.objects.filter(sae=sae, latent_index=index).select_related("feature").order_by("-frc")
    contexts = [highlighted(c) for c in latent.top_contexts] if latent else []
    quantiles = []
    if latent:
        for group in latent.quantile_examples:
            quantiles.append({"range": group["range"], "examples": [highlighted(c) for c in group["examples"]]})
    return render(
        request,
        "lingualens/latent.html",
        {
            "sae": sae,
            "latent": latent,
            "density_percent": percent_text(latent.density) if latent else None,
            "index": index,
            "feature_id": sae.feature_id(index),
            "scores": scores,
            "contexts": contexts,
            "quantiles": quantiles,
            "neighbours": [
                {"index": i, "cosine": c, "id": sae.feature_id(i)} for i, c in (latent.neighbours if latent else [])
            ],
            "prev_id": sae.feature_id(index - 1) if index > 0 else None,
            "next_id": sae.feature_id(index + 1) if index + 1 < sae.width else None,
        },
    )


def percent_text(share: float) -> str:
    """A share as a percentage with two significant digits under 10%: a rare latent (0.033% of
    tokens) does not read as 0%."""
    percent = share * 100
    return f"{percent:.0f}" if percent >= 10 else f"{percent:.2g}"


@area_required(AREA)
def latent_histogram_svg(request, feature_id: str):
    _sae, latent, _index = _latent_or_404(feature_id)
    return svg(plots.histogram(latent.histogram if latent else {}, latent.density if latent else 0))


# ---- search ---------------------------------------------------------------------------------


def ready_saes():
    return SAE.objects.filter(status__in=["complete", "partial"]).select_related("run").order_by("layer")


@area_required(AREA)
def search(request):
    saes = ready_saes()
    if request.method == "POST":
        sae = saes.filter(pk=request.POST.get("sae") or 0).first()
        if sae is None:
            messages.error(request, _("Pick a trained SAE (a layer) to search with."))
            return render(request, "lingualens/search.html", {"saes": saes, "typed": request.POST}, status=400)
        try:
            job = services.start_search(request.user, sae, request.POST.get("sentence"))
        except services.LensInputError as exc:
            messages.error(request, str(exc))
            return render(request, "lingualens/search.html", {"saes": saes, "typed": request.POST}, status=400)
        return redirect(f"{request.path}?job={job.pk}")
    job = None
    job_id = request.GET.get("job")
    if job_id and job_id.isdigit():
        job = Job.objects.filter(pk=job_id, kind=services.SEARCH_KIND).first()
        if job is None or not can_view_owned(request.user, job.owner_id):
            raise Http404("No such search")
    query = request.GET.get("q", "")
    return render(
        request,
        "lingualens/search.html",
        {
            "saes": saes,
            "query": query,
            "found": services.search_notes(query),
            "typed": job.params if job else {},
            # A search that finished before the page loaded is shown at once, with its grid.
            **(search_context(job) if job else {}),
        },
    )


def search_rows(job: Job) -> dict:
    result = job.result or {}
    sae = SAE.objects.filter(slug=result.get("sae")).select_related("run").first()
    # Latents that are among the best for a linguistic feature get its name on their chip.
    matched: dict[int, str] = {}
    if sae is not None:
        for index, name in (
            FeatureScore.objects.filter(sae=sae).order_by("-frc").values_list("latent_index", "feature__name")
        ):
            matched.setdefault(index, name)
    rows = []
    for token in result.get("tokens", []):
        rows.append(
            {
                "token": display_token(token["token"]),
                "latents": [
                    {"index": i, "act": a, "id": sae.feature_id(i) if sae else "", "feature": matched.get(i, "")}
                    for i, a in token["latents"]
                ],
            }
        )
    return {"rows": rows, "sae": sae}


def search_context(job: Job) -> dict:
    """What the search-result fragment needs in every state: the grid once it succeeded, the
    queue position while it waits."""
    context = {"job": job, "position": queue_position(job)}
    if job.status == JobStatus.SUCCEEDED:
        context.update(search_rows(job))
    return context


@area_required(AREA)
def search_result(request, job_id: int):
    job = Job.objects.filter(pk=job_id, kind=services.SEARCH_KIND).first()
    if job is None or not can_view_owned(request.user, job.owner_id):
        raise Http404("No such search")
    return render(request, "lingualens/search.html#search-result", search_context(job))


# ---- steering -------------------------------------------------------------------------------


@area_required(AREA)
def steer(request):
    saes = ready_saes()
    if request.method == "POST":
        sae = saes.filter(pk=request.POST.get("sae") or 0).first()
        try:
            if sae is None:
                raise services.LensInputError("pick a trained SAE")
            run = steering.start_steering(
                request.user,
                sae,
                request.POST.get("prompt"),
                request.POST.get("interventions", ""),
                seed=request.POST.get("seed") or 0,
                max_tokens=request.POST.get("max_tokens") or 40,
                temperature=request.POST.get("temperature") or 0.7,
                normalize=bool(request.POST.get("normalize")),
            )
        except services.LensInputError as exc:
            messages.error(request, _("Not started: %(error)s.") % {"error": exc})
            return render(
                request,
                "lingualens/steer.html",
                {"saes": saes, "typed": request.POST, "default_strength": f"{steering.DEFAULT_STRENGTH:g}"},
                status=400,
            )
        return redirect("lingualens:steer_run", job_id=run.job_id)
    typed = {"interventions": request.GET.get("latent", ""), "sae": request.GET.get("sae", "")}
    if typed["interventions"]:
        typed["interventions"] += f":{steering.DEFAULT_STRENGTH:g}"
    recent = SteeringRun.objects.filter(owner=request.user).select_related("sae")[:10]
    return render(
        request,
        "lingualens/steer.html",
        {"saes": saes, "typed": typed, "recent": recent, "default_strength": f"{steering.DEFAULT_STRENGTH:g}"},
    )


@area_required(AREA)
def steer_run(request, job_id: int):
    run = SteeringRun.objects.select_related("job", "sae__run").filter(job_id=job_id).first()
    if run is None or not can_view_owned(request.user, run.owner_id):
        raise Http404("No such steering run")
    return render(request, "lingualens/steer_run.html", {"run": run, "job": run.job})
