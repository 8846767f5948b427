"""JSON API for LinguaLens (mounted under /api/ by config/api.py): the catalogue (CRUD,
import/export), corpora, SAEs (start, status, metrics), latent page data, search and
steering, so a researcher can script an analysis. Jobs are followed with GET /api/jobs/{id}."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from ninja import File, Form, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from apps.accounts.api_area import area_auth
from apps.accounts.permissions import can_view_owned
from apps.lingualens import services, steering, summaries
from apps.lingualens.models import SAE, Corpus, CounterfactualPair, FeatureScore, LinguisticFeature, SteeringRun
from apps.lingualens.steering import DEFAULT_STRENGTH

router = Router(tags=["lingualens"], auth=area_auth("lingualens"))


class PairIn(Schema):
    sentence: str
    counterfactual: str
    span: str


class FeatureIn(Schema):
    language: str
    dimension: str
    name: str
    description: str = ""
    pairs: list[PairIn] = []


class FeatureUpdate(Schema):
    dimension: str | None = None
    name: str | None = None
    description: str | None = None


class TrainIn(Schema):
    corpus_id: int | None = None
    layer: int
    width: int = 1024
    k: int = 32
    training_tokens: int = 200_000
    max_texts: int = 4000
    max_tokens_per_text: int = 48
    model: str = services.DEFAULT_MODEL


class ScoreIn(Schema):
    feature_ids: list[int] | None = None
    max_pairs: int = 24
    fic_latents: int = 1
    fic_pairs: int = 8


class SearchIn(Schema):
    sae: str
    sentence: str


class Intervention(Schema):
    index: int
    strength: float = DEFAULT_STRENGTH  # multiples of the latent's typical top activation
    mode: str = "add"


class SteerIn(Schema):
    sae: str
    prompt: str
    interventions: list[Intervention]
    seed: int = 0
    max_tokens: int = 40
    temperature: float = 0.7
    normalize: bool = False  # on: a unit-length direction and a raw strength (no latent scale)


def pair_out(pair: CounterfactualPair) -> dict:
    return {"id": pair.pk, "sentence": pair.sentence, "counterfactual": pair.counterfactual, "span": pair.span}


def feature_out(feature: LinguisticFeature, with_pairs: bool = False) -> dict:
    out = {
        "id": feature.pk,
        "language": feature.language,
        "dimension": feature.dimension,
        "name": feature.name,
        "description": feature.description,
    }
    if with_pairs:
        out["pairs"] = [pair_out(p) for p in feature.pairs.all()]
        out["best_layers"] = [
            {k: v for k, v in row.items() if k not in ("sae", "score")} | {"sae": row["sae"].slug}
            for row in summaries.best_layers(feature)
        ]
    return out


def sae_out(sae: SAE) -> dict:
    return {
        "slug": sae.slug,
        "model": sae.run.model_name,
        "layer": sae.layer,
        "width": sae.width,
        "k": sae.k,
        "status": sae.status,
        "steps_done": sae.steps_done,
        "steps_total": sae.steps_total,
        "metrics": sae.metrics,
        "scored": sae.scored,
        "job_id": sae.job_id,
        "run_id": sae.run_id,
        "corpus_id": sae.run.corpus_id,
    }


def get_sae(slug: str) -> SAE:
    sae = SAE.objects.select_related("run").filter(slug=slug).first()
    if sae is None:
        raise HttpError(404, f"No SAE {slug!r}")
    return sae


# ---- catalogue ----------------------------------------------------------------------------


@router.get("/lingualens/catalogue/features")
def list_features(request, language: str | None = None, dimension: str | None = None):
    features = LinguisticFeature.objects.all()
    if language:
        features = features.filter(language=language)
    if dimension:
        features = features.filter(dimension=dimension)
    return [feature_out(f) | {"pairs": f.pairs.count()} for f in features]


@router.post("/lingualens/catalogue/features", response={201: dict})
def create_feature(request, data: FeatureIn):
    feature = services.create_feature(
        request.auth, data.language, data.dimension, data.name, data.description, [p.dict() for p in data.pairs]
    )
    return Status(201, feature_out(feature, with_pairs=True))


@router.get("/lingualens/catalogue/features/{feature_id}")
def get_feature(request, feature_id: int):
    return feature_out(get_object_or_404(LinguisticFeature, pk=feature_id), with_pairs=True)


@router.patch("/lingualens/catalogue/features/{feature_id}")
def update_feature(request, feature_id: int, data: FeatureUpdate):
    feature = get_object_or_404(LinguisticFeature, pk=feature_id)
    services.update_feature(feature, data.dimension, data.name, data.description)
    return feature_out(feature, with_pairs=True)


@router.delete("/lingualens/catalogue/features/{feature_id}", response={204: None})
def delete_feature(request, feature_id: int):
    get_object_or_404(LinguisticFeature, pk=feature_id).delete()
    return Status(204, None)


@router.post("/lingualens/catalogue/features/{feature_id}/pairs", response={201: dict})
def create_pair(request, feature_id: int, data: PairIn):
    feature = get_object_or_404(LinguisticFeature, pk=feature_id)
    return Status(201, pair_out(services.add_pair(feature, data.sentence, data.counterfactual, data.span)))


@router.delete("/lingualens/catalogue/pairs/{pair_id}", response={204: None})
def delete_pair(request, pair_id: int):
    get_object_or_404(CounterfactualPair, pk=pair_id).delete()
    return Status(204, None)


@router.post("/lingualens/catalogue/import")
def import_catalogue(request, file: File[UploadedFile], mode: Form[str] = "keep"):
    if file.size > services.MAX_IMPORT_BYTES:
        raise HttpError(
            413, f"The file is {file.size / 1e6:.1f} MB; the limit is {services.MAX_IMPORT_BYTES / 1e6:.0f} MB"
        )
    report = services.import_catalogue(services.decode_utf8(file.read(), file.name), mode, request.auth)
    return {
        "applied": report.applied,
        "features_created": report.features_created,
        "features_updated": report.features_updated,
        "pairs_created": report.pairs_created,
        "pairs_skipped": report.pairs_skipped,
        "errors": [{"line": line, "reason": reason} for line, reason in report.errors],
    }


@router.get("/lingualens/catalogue/export")
def export_catalogue(request, language: str | None = None):
    features = LinguisticFeature.objects.all()
    if language:
        features = features.filter(language=language)
    return HttpResponse(services.export_catalogue(features), content_type="application/x-ndjson; charset=utf-8")


# ---- corpora and SAEs -----------------------------------------------------------------------


@router.get("/lingualens/corpora")
def list_corpora(request):
    return [
        {"id": c.pk, "name": c.name, "source": c.source, "texts": len(c.texts), "default": c.is_default}
        for c in Corpus.objects.all()
    ]


@router.post("/lingualens/corpora", response={201: dict})
def upload_corpus(request, file: File[UploadedFile], name: Form[str] = "", source: Form[str] = ""):
    if file.size > services.MAX_CORPUS_BYTES:
        raise HttpError(
            413, f"{file.name} is {file.size / 1e6:.1f} MB; the limit is {services.MAX_CORPUS_BYTES / 1e6:.0f} MB"
        )
    texts = services.parse_corpus(file.name, file.read())
    corpus = services.create_corpus(request.auth, name or file.name, source or f"Uploaded ({file.name})", texts)
    return Status(201, {"id": corpus.pk, "name": corpus.name, "texts": len(texts)})


@router.get("/lingualens/saes")
def list_saes(request):
    return [sae_out(s) for s in SAE.objects.select_related("run")]


@router.post("/lingualens/saes", response={202: dict})
def start_training(request, data: TrainIn):
    corpus = Corpus.objects.filter(pk=data.corpus_id).first() if data.corpus_id else services.ensure_default_corpus()
    if corpus is None:
        raise HttpError(404, "No such corpus")
    sae = services.start_training(
        request.auth,
        corpus,
        data.layer,
        data.width,
        data.k,
        data.training_tokens,
        data.max_texts,
        data.max_tokens_per_text,
        data.model,
    )
    return Status(202, sae_out(sae))


@router.get("/lingualens/saes/{slug}")
def get_sae_status(request, slug: str):
    sae = get_sae(slug)
    out = sae_out(sae)
    out["loss_curve"] = sae.loss_curve
    return out


@router.post("/lingualens/saes/{slug}/restart", response={202: dict})
def restart(request, slug: str, resume: bool = True):
    return Status(202, sae_out(services.restart_training(request.auth, get_sae(slug), resume=resume)))


@router.post("/lingualens/saes/{slug}/score", response={202: dict})
def score(request, slug: str, data: ScoreIn):
    job = services.start_scoring(
        request.auth, get_sae(slug), data.feature_ids, data.max_pairs, data.fic_latents, data.fic_pairs
    )
    return Status(202, {"job_id": job.pk})


@router.get("/lingualens/saes/{slug}/scores")
def sae_scores(request, slug: str):
    sae = get_sae(slug)
    return [
        {
            "feature": s.feature.name,
            "feature_id": s.feature_id,
            "language": s.feature.language,
            "dimension": s.feature.dimension,
            "latent": s.latent_index,
            "rank": s.rank,
            "ps": s.ps,
            "pn": s.pn,
            "frc": s.frc,  # held-out, like ps and pn
            "frc_interval": [s.frc_low, s.frc_high],
            "frc_select": s.frc_select,
            "threshold": s.threshold,
            "pairs": {"selection": s.n_select, "held_out": s.n_heldout},
            "floor_frc": s.floor_frc,
            "beats_floor": s.beats_floor,
            "fic": s.fic,
        }
        for s in FeatureScore.objects.filter(sae=sae).select_related("feature")
    ]


# ---- latents, search, steering --------------------------------------------------------------


@router.get("/lingualens/latents/{feature_id}")
def latent_data(request, feature_id: str):
    """Feature page data for <model>@<sae>:<index>."""
    found = services.latent_by_id(feature_id)
    if found is None:
        raise HttpError(404, "No such SAE feature")
    sae, latent, index = found
    out = {"id": sae.feature_id(index), "sae": sae.slug, "layer": sae.layer, "index": index}
    if latent is not None:
        out |= {
            key: getattr(latent, key)
            for key in (
                "density",
                "max_activation",
                "mean_activation",
                "histogram",
                "top_contexts",
                "quantile_examples",
                "promoted",
                "suppressed",
                "neighbours",
                "note",
            )
        }
    out["linguistic_features"] = [
        {"feature": s.feature.name, "feature_id": s.feature_id, "ps": s.ps, "pn": s.pn, "frc": s.frc, "fic": s.fic}
        for s in FeatureScore.objects.filter(sae=sae, latent_index=index).select_related("feature")
    ]
    return out


class NoteIn(Schema):
    note: str


@router.put("/lingualens/latents/{feature_id}/note")
def set_note(request, feature_id: str, data: NoteIn):
    from django.utils import timezone

    found = services.latent_by_id(feature_id)
    if found is None or found[1] is None:
        raise HttpError(404, "No such SAE feature (or its statistics are not computed yet)")
    latent = found[1]
    latent.note, latent.note_updated_at = data.note[:5000], timezone.now()
    latent.save(update_fields=["note", "note_updated_at"])
    return {"id": latent.feature_id, "note": latent.note}


@router.get("/lingualens/search/notes")
def search_notes(request, q: str = ""):
    found = services.search_notes(q)
    return {
        "latents": [{"id": l.feature_id, "note": l.note} for l in found["latents"]],  # noqa: E741
        "features": [feature_out(f) for f in found["features"]],
    }


@router.post("/lingualens/search", response={202: dict})
def search(request, data: SearchIn):
    """Per-token top latents of a sentence; the result is the job's result (GET /api/jobs/{id})."""
    job = services.start_search(request.auth, get_sae(data.sae), data.sentence)
    return Status(202, {"job_id": job.pk})


@router.post("/lingualens/steer", response={202: dict})
def steer(request, data: SteerIn):
    run = steering.start_steering(
        request.auth,
        get_sae(data.sae),
        data.prompt,
        [i.dict() for i in data.interventions],
        data.seed,
        data.max_tokens,
        data.temperature,
        data.normalize,
    )
    return Status(202, {"job_id": run.job_id, "stream": f"/ws/lingualens/steering/{run.job_id}/"})


@router.get("/lingualens/steer/{job_id}")
def steer_result(request, job_id: int):
    run = SteeringRun.objects.select_related("job").filter(job_id=job_id).first()
    if run is None or not can_view_owned(request.auth, run.owner_id):
        raise HttpError(404, "No such steering run")
    return {
        "job_id": job_id,
        "status": run.job.status,
        "prompt": run.prompt,
        "interventions": run.interventions,
        "seed": run.seed,
        "plain": run.output_plain,
        "steered": run.output_steered,
    }
