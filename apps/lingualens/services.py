"""LinguaLens logic for the web side: the catalogue (import/export, add), corpora, starting
jobs, reading results. Model work lives in pipeline.py and runs only in workers."""

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.text import slugify

from apps.core.errors import Conflict
from apps.inference.backends import ModelNotFound
from apps.inference.registry import get_model, role_model_names
from apps.jobs.models import Job
from apps.jobs.services import create_job
from apps.lingualens.models import (
    SAE,
    ActivationRun,
    Corpus,
    CounterfactualPair,
    Dimension,
    Language,
    Latent,
    LinguisticFeature,
    RunStatus,
    check_pair,
)
from apps.lingualens.pair_split import MAX_PAIRS

TRAIN_KIND = "lingualens.train"
SCORE_KIND = "lingualens.score"
SEARCH_KIND = "lingualens.search"
STEER_KIND = "lingualens.steer"
EXPLAIN_KIND = "lingualens.explain"  # kinds and their queues: apps.py; tasks: tasks.py

# The lens role (MODEL_ROLE_LENS): a model on transformers, whose residual stream can be hooked.
DEFAULT_MODEL = role_model_names()["lens"]
DATA_DIR = Path(__file__).resolve().parent / "data"
# Built from templates by tools/lingualens_catalogue (not part of the running app).
CATALOGUE_PATH = DATA_DIR / "catalogue.jsonl"
DEFAULT_CORPUS_PATH = DATA_DIR / "default_corpus.jsonl"
DEFAULT_CORPUS_NAME = "LinguaLens default (English + Chinese)"
MAX_CORPUS_BYTES = settings.LINGUALENS_MAX_CORPUS_BYTES
MAX_TEXT_CHARS = 400  # longer documents are cut into pieces of about this size
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_RUN_TOKENS = 2_000_000  # 2.6 GB of fp16 activations for a 640-wide model
FEATURE_ID = re.compile(r"^(?P<model>[\w.\-]+)@(?P<sae>[\w\-]+):(?P<index>\d+)$")


class LensInputError(ValueError):
    """Bad input from a user: the message says what and where."""


def storage_root() -> Path:
    return Path(settings.VAR_DIR) / "lingualens"


def run_dir(run: ActivationRun) -> Path:
    return storage_root() / "runs" / run.storage_key


def sae_dir(sae: SAE) -> Path:
    # Under its run's unique folder: a slug reused by another database never meets old files.
    return run_dir(sae.run) / "saes" / sae.slug


# ---- catalogue ----------------------------------------------------------------------------


@dataclass
class ImportReport:
    features_created: int = 0
    features_updated: int = 0
    pairs_created: int = 0
    pairs_skipped: int = 0  # already present
    errors: list[tuple[int, str]] = field(default_factory=list)
    applied: bool = True

    @property
    def summary(self) -> str:
        text = (
            f"{self.features_created} features created, {self.features_updated} updated, "
            f"{self.pairs_created} pairs added ({self.pairs_skipped} already present)"
        )
        if not self.applied:
            text = "Nothing imported (all or nothing, and some lines were bad)"
        return text


def _check_choice(value, choices, name: str) -> str:
    if value not in choices.values:
        raise LensInputError(f"{name} must be one of {', '.join(choices.values)} (got {value!r})")
    return value


def _parse_pair(item, where: str = "") -> tuple[str, str, str]:
    if not isinstance(item, dict):
        raise LensInputError(f"{where}a pair must be an object with sentence, counterfactual and span")
    values = [item.get(key) for key in ("sentence", "counterfactual", "span")]
    if not all(isinstance(value, str) for value in values):
        raise LensInputError(f"{where}sentence, counterfactual and span must be strings")
    sentence, counterfactual, span = (value.strip() for value in values)
    try:
        check_pair(sentence, counterfactual, span)
    except ValidationError as exc:
        raise LensInputError(where + exc.messages[0]) from None
    if len(sentence) > 500 or len(counterfactual) > 500 or len(span) > 200:
        raise LensInputError(f"{where}sentences are limited to 500 characters and spans to 200")
    return sentence, counterfactual, span


def parse_catalogue_line(line: str) -> dict:
    """One JSONL line: a feature {language, dimension, name, description, pairs: [...]}, or one
    pair for an existing feature {language, feature, sentence, counterfactual, span}."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LensInputError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise LensInputError("each line must be a JSON object")
    language = _check_choice(record.get("language"), Language, "language")
    if "feature" in record:  # a single pair
        if not isinstance(record["feature"], str) or not record["feature"].strip():
            raise LensInputError("feature must be the name of a feature")
        return {"language": language, "feature": record["feature"].strip(), "pairs": [_parse_pair(record)]}
    name = record.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        raise LensInputError("name must be a non-empty string of at most 120 characters")
    dimension = _check_choice(record.get("dimension"), Dimension, "dimension")
    description = record.get("description", "")
    if not isinstance(description, str):
        raise LensInputError("description must be a string")
    pairs = record.get("pairs", [])
    if not isinstance(pairs, list):
        raise LensInputError("pairs must be a list")
    parsed = [_parse_pair(item, f"pair {number}: ") for number, item in enumerate(pairs, 1)]
    return {
        "language": language,
        "name": name.strip(),
        "dimension": dimension,
        "description": description,
        "pairs": parsed,
    }


def import_catalogue(text: str, mode: str = "keep", user=None) -> ImportReport:
    """Import JSONL. mode "keep": good lines are imported, bad ones reported; "all": any bad
    line and nothing is imported. Existing features (same language and name) are updated and
    get new pairs; pairs already present are skipped, so importing twice changes nothing."""
    if mode not in ("keep", "all"):
        raise LensInputError('mode must be "keep" (keep good lines) or "all" (all or nothing)')
    report = ImportReport()
    records: list[tuple[int, dict]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append((number, parse_catalogue_line(line)))
        except LensInputError as exc:
            report.errors.append((number, str(exc)))
    # A pair line for a feature that is neither stored nor defined earlier in the file is bad too.
    defined = {(r["language"], r["name"]) for _n, r in records if "name" in r}
    for number, record in list(records):
        key = (record["language"], record.get("feature"))
        known = key in defined or LinguisticFeature.objects.filter(language=key[0], name=key[1]).exists()
        if "feature" in record and not known:
            report.errors.append((number, f"no feature named {key[1]!r} in language {key[0]}"))
            records.remove((number, record))
    report.errors.sort()
    if report.errors and mode == "all":
        report.applied = False
        return report
    with transaction.atomic():
        for _number, record in records:
            if "name" in record:
                feature, created = LinguisticFeature.objects.get_or_create(
                    language=record["language"],
                    name=record["name"],
                    defaults={
                        "dimension": record["dimension"],
                        "description": record["description"],
                        "created_by": user,
                    },
                )
                if created:
                    report.features_created += 1
                elif (feature.dimension, feature.description) != (record["dimension"], record["description"]):
                    feature.dimension, feature.description = record["dimension"], record["description"]
                    feature.save(update_fields=["dimension", "description"])
                    report.features_updated += 1
            else:
                feature = LinguisticFeature.objects.get(language=record["language"], name=record["feature"])
            existing = set(feature.pairs.values_list("sentence", "counterfactual"))
            new = []
            for sentence, counterfactual, span in record["pairs"]:
                if (sentence, counterfactual) in existing:
                    report.pairs_skipped += 1
                    continue
                existing.add((sentence, counterfactual))
                new.append(
                    CounterfactualPair(feature=feature, sentence=sentence, counterfactual=counterfactual, span=span)
                )
            CounterfactualPair.objects.bulk_create(new)  # each was checked by _parse_pair
            report.pairs_created += len(new)
    return report


def export_catalogue(features=None) -> str:
    features = (features if features is not None else LinguisticFeature.objects.all()).prefetch_related("pairs")
    lines = []
    for feature in features:
        record = {
            "language": feature.language,
            "dimension": feature.dimension,
            "name": feature.name,
            "description": feature.description,
            "pairs": [
                {"sentence": p.sentence, "counterfactual": p.counterfactual, "span": p.span}
                for p in feature.pairs.all()
            ],
        }
        lines.append(json.dumps(record, ensure_ascii=False))
    return "\n".join(lines) + ("\n" if lines else "")


def add_feature(user, language: str, dimension: str, name: str, description: str = "") -> LinguisticFeature:
    _check_choice(language, Language, "language")
    _check_choice(dimension, Dimension, "dimension")
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise LensInputError("name must be a non-empty string of at most 120 characters")
    if LinguisticFeature.objects.filter(language=language, name=name).exists():
        raise LensInputError(f"a {language} feature named {name!r} exists already")
    return LinguisticFeature.objects.create(
        language=language, dimension=dimension, name=name, description=description or "", created_by=user
    )


def add_pair(feature: LinguisticFeature, sentence: str, counterfactual: str, span: str) -> CounterfactualPair:
    sentence, counterfactual, span = _parse_pair(
        {"sentence": sentence or "", "counterfactual": counterfactual or "", "span": span or ""}
    )
    return CounterfactualPair.objects.create(
        feature=feature, sentence=sentence, counterfactual=counterfactual, span=span
    )


@transaction.atomic
def create_feature(
    user, language: str, dimension: str, name: str, description: str = "", pairs=()
) -> LinguisticFeature:
    """A feature with its pairs; every pair is checked before anything is stored."""
    parsed = [_parse_pair(pair, f"pair {number}: ") for number, pair in enumerate(pairs, 1)]
    feature = add_feature(user, language, dimension, name, description)
    CounterfactualPair.objects.bulk_create(
        CounterfactualPair(feature=feature, sentence=sentence, counterfactual=counterfactual, span=span)
        for sentence, counterfactual, span in parsed
    )
    return feature


def update_feature(feature: LinguisticFeature, dimension=None, name=None, description=None) -> LinguisticFeature:
    """Change what is given; a name must stay unique within the feature's language (409 if taken)."""
    if dimension is not None:
        feature.dimension = _check_choice(dimension, Dimension, "dimension")
    if name is not None:
        name = name.strip()
        if not name or len(name) > 120:
            raise LensInputError("name must be a non-empty string of at most 120 characters")
        if LinguisticFeature.objects.filter(language=feature.language, name=name).exclude(pk=feature.pk).exists():
            raise Conflict(f"a {feature.language} feature named {name!r} already exists")
        feature.name = name
    if description is not None:
        feature.description = description
    feature.save()
    return feature


def load_default_catalogue() -> ImportReport:
    return import_catalogue(CATALOGUE_PATH.read_text(encoding="utf-8"), mode="all")


# ---- corpora ------------------------------------------------------------------------------


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """Cut a long document at sentence ends into pieces of at most about `limit` characters."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    pieces, current = [], ""
    for sentence in re.split(r"(?<=[.!?。！？])\s*", text):
        if current and len(current) + len(sentence) > limit:
            pieces.append(current.strip())
            current = ""
        current += sentence if not current or re.match(r"[\u3000-\u9fff]", sentence[:1]) else " " + sentence
        while len(current) > limit:  # one sentence longer than the limit
            pieces.append(current[:limit])
            current = current[limit:]
    if current.strip():
        pieces.append(current.strip())
    return pieces


def decode_utf8(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LensInputError(
            f"{name} is not UTF-8 text: byte 0x{data[exc.start]:02x} at position {exc.start} (line {line}). "
            "Save the file as UTF-8 and upload it again."
        ) from None


def parse_corpus(name: str, data: bytes) -> list[str]:
    """Texts from a .txt (one document per line or paragraph) or .jsonl ({"text": ...} per line)."""
    if len(data) > MAX_CORPUS_BYTES:
        raise LensInputError(f"{name} is {len(data) / 1e6:.1f} MB; the limit is {MAX_CORPUS_BYTES / 1e6:.0f} MB")
    text = decode_utf8(data, name)
    suffix = Path(name).suffix.lower()
    documents: list[str] = []
    if suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LensInputError(f"line {number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise LensInputError(f'line {number}: each line must be an object with a "text" string')
            documents.append(record["text"])
    elif suffix == ".txt":
        documents = [line for line in text.splitlines() if line.strip()]
    else:
        raise LensInputError(f"{name}: upload a .txt or .jsonl file")
    texts = [piece for document in documents for piece in split_text(document)]
    if not texts:
        raise LensInputError(f"{name} has no text")
    return texts


def create_corpus(user, name: str, source: str, texts: list[str]) -> Corpus:
    return Corpus.objects.create(
        name=(name or "Uploaded corpus")[:120],
        source=source,
        owner=user,
        texts=texts,
        n_chars=sum(len(text) for text in texts),
    )


def ensure_default_corpus() -> Corpus:
    """The shipped corpus: the catalogue's sentences and counterfactuals plus short passages in
    both languages. Rebuilt only when missing (idempotent)."""
    corpus = Corpus.objects.filter(is_default=True).first()
    if corpus is not None:
        return corpus
    passages = [
        json.loads(line)["text"]
        for line in DEFAULT_CORPUS_PATH.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    sentences = []
    for line in CATALOGUE_PATH.read_text(encoding="utf-8").splitlines():
        for pair in json.loads(line)["pairs"]:
            sentences += [pair["sentence"], pair["counterfactual"]]
    # Interleaved so a run over the first N texts still sees both languages and every feature.
    texts = passages + sentences[::2] + sentences[1::2]
    source = (
        f"{len(passages)} short English and Chinese passages written for Atrium "
        f"(apps/lingualens/data/default_corpus.jsonl) and the {len(sentences)} feature and counterfactual sentences "
        "of the shipped catalogue (generated from templates by tools/lingualens_catalogue)."
    )
    return Corpus.objects.create(
        name=DEFAULT_CORPUS_NAME, source=source, is_default=True, texts=texts, n_chars=sum(len(text) for text in texts)
    )


# ---- runs and SAEs ------------------------------------------------------------------------


def check_model(model_name: str) -> str:
    try:
        spec = get_model(model_name)
    except ModelNotFound:
        raise LensInputError(f"unknown model {model_name!r}") from None
    if spec.backend != "transformers":
        raise LensInputError(f"{model_name} is served by the {spec.backend} backend; activations need transformers")
    return spec.name


def model_dims(model_name: str) -> tuple[int, int] | None:
    """(decoder layers, residual width) from the prepared model's config.json; None when the
    model is not converted yet (the worker then checks the layer itself)."""
    import json

    from apps.inference.registry import converted_dir

    try:
        config = json.loads((converted_dir(get_model(model_name)) / "config.json").read_text())
    except (OSError, ValueError, ModelNotFound):
        return None
    config = config.get("text_config", config)
    layers, width = config.get("num_hidden_layers"), config.get("hidden_size")
    return (int(layers), int(width)) if layers and width else None


def int_in_range(value, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise LensInputError(f"{name} must be a whole number") from None
    if not low <= number <= high:
        raise LensInputError(f"{name} must be between {low} and {high}")
    return number


def estimate_run_bytes(n_texts: int, max_tokens: int, n_layers: int, d_model: int = 640) -> int:
    return n_texts * max_tokens * n_layers * d_model * 2  # fp16


def start_training(
    user,
    corpus: Corpus,
    layer,
    width=1024,
    k=32,
    training_tokens=200_000,
    max_texts=4000,
    max_tokens_per_text=48,
    model_name: str = DEFAULT_MODEL,
    run: ActivationRun | None = None,
) -> SAE:
    """Validate, create (or reuse) an activation run and an SAE, and queue the training job:
    activations first if the run lacks them, then the SAE, its metrics and latent statistics."""
    model_name = check_model(model_name)
    dims = model_dims(model_name)
    n_layers, d_model = dims or (64, 640)
    layer = int_in_range(layer, "layer", 0, n_layers - 1)
    width = int_in_range(width, "width", 16, 16384)
    k = int_in_range(k, "k", 1, 256)
    if k >= width:
        raise LensInputError("k must be smaller than the width")
    training_tokens = int_in_range(training_tokens, "training tokens", 1000, 5_000_000)
    max_texts = int_in_range(max_texts, "texts", 1, 100_000)
    max_tokens_per_text = int_in_range(max_tokens_per_text, "tokens per text", 4, 512)
    tokens = min(max_texts, len(corpus.texts)) * max_tokens_per_text
    if tokens > MAX_RUN_TOKENS:
        # The worker holds a run's activations in memory while collecting and training.
        raise LensInputError(
            f"texts x tokens per text is up to {tokens:,} tokens; the limit is {MAX_RUN_TOKENS:,} per run"
        )
    needed = estimate_run_bytes(min(max_texts, len(corpus.texts)), max_tokens_per_text, 1, d_model)
    storage_root().mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(storage_root()).free
    if needed > free * 0.8:
        raise LensInputError(
            f"the activations would need up to {needed / 1e9:.2f} GB and only {free / 1e9:.2f} GB are free: "
            "use fewer texts or tokens per text"
        )
    with transaction.atomic():
        if run is None:
            run = ActivationRun.objects.filter(
                corpus=corpus,
                model_name=model_name,
                layers=[layer],
                max_texts=max_texts,
                max_tokens_per_text=max_tokens_per_text,
                status=RunStatus.COMPLETE,
            ).first() or ActivationRun.objects.create(
                owner=user,
                model_name=model_name,
                corpus=corpus,
                layers=[layer],
                max_texts=max_texts,
                max_tokens_per_text=max_tokens_per_text,
            )
        elif layer not in run.layers:
            raise LensInputError(f"run {run.pk} has no activations for layer {layer}")
        base = slugify(f"l{layer}-w{width}-k{k}")
        slug, n = base, SAE.objects.filter(slug__startswith=base).count()
        while SAE.objects.filter(slug=slug).exists():
            n += 1
            slug = f"{base}-{n}"
        sae = SAE.objects.create(
            owner=user, run=run, slug=slug, layer=layer, width=width, k=k, training_tokens=training_tokens
        )
        sae.job = create_job(user, TRAIN_KIND, {"sae_id": sae.pk})
        sae.save(update_fields=["job"])
    return sae


def restart_training(user, sae: SAE, resume: bool = True) -> SAE:
    """Resume a partial SAE from its checkpoint, or restart it from step 0."""
    job = Job.objects.filter(pk=sae.job_id).first()  # fresh: the cached one may predate a cancel
    if job is not None and not job.is_finished:
        raise LensInputError("this SAE is still being trained")
    if not resume:
        checkpoint = sae_dir(sae) / "checkpoint.pt"
        checkpoint.unlink(missing_ok=True)
        sae.steps_done = 0
        sae.loss_curve = []
        sae.metrics = {}
    sae.status = RunStatus.PENDING
    sae.job = create_job(user, TRAIN_KIND, {"sae_id": sae.pk})
    sae.save()
    return sae


def start_scoring(
    user,
    sae: SAE,
    feature_ids: list[int] | None = None,
    max_pairs: int = MAX_PAIRS,
    fic_latents: int = 1,
    fic_pairs: int = 8,
) -> Job:
    if sae.status not in (RunStatus.COMPLETE, RunStatus.PARTIAL) or not sae_dir(sae).joinpath("cfg.json").exists():
        raise LensInputError("train the SAE before scoring it")
    params = {
        "sae_id": sae.pk,
        "feature_ids": feature_ids,
        "max_pairs": int_in_range(max_pairs, "pairs", 1, MAX_PAIRS),
        "fic_latents": int_in_range(fic_latents, "FIC latents", 0, 10),
        "fic_pairs": int_in_range(fic_pairs, "FIC pairs", 1, 100),
    }
    return create_job(user, SCORE_KIND, params)


def explain_available() -> bool:
    """Whether the explanation kind is registered (apps.py), with its task in tasks.py."""
    from apps.jobs.kinds import JOB_KINDS

    return EXPLAIN_KIND in JOB_KINDS


def start_explaining(user, sae: SAE, limit=24, latents: list[int] | None = None) -> Job:
    """Queue explanations by the assistant model for `latents`, or for the best latents of the
    linguistic features and then the densest ones, `limit` in all."""
    if sae.status not in (RunStatus.COMPLETE, RunStatus.PARTIAL) or not sae.latents.exists():
        raise LensInputError("train the SAE (with its latent statistics) before explaining it")
    params = {"sae_id": sae.pk, "limit": int_in_range(limit, "latents to explain", 1, 500)}
    if latents:
        params["latents"] = [int_in_range(i, "latent", 0, sae.width - 1) for i in latents][:500]
    return create_job(user, EXPLAIN_KIND, params)


def start_search(user, sae: SAE, sentence: str) -> Job:
    sentence = (sentence or "").strip()
    if not sentence:
        raise LensInputError("type a sentence to search")
    if len(sentence) > 1000:
        raise LensInputError("the sentence is limited to 1000 characters")
    if not sae_dir(sae).joinpath("cfg.json").exists():
        raise LensInputError("this SAE has no trained weights yet")
    return create_job(user, SEARCH_KIND, {"sae_id": sae.pk, "sentence": sentence})


# ---- reading ------------------------------------------------------------------------------


def parse_feature_id(text: str) -> tuple[str, str, int] | None:
    match = FEATURE_ID.match(text)
    return (match["model"], match["sae"], int(match["index"])) if match else None


def latent_by_id(feature_id: str) -> tuple[SAE, Latent | None, int] | None:
    parsed = parse_feature_id(feature_id)
    if parsed is None:
        return None
    model, slug, index = parsed
    sae = SAE.objects.select_related("run").filter(slug=slug, run__model_name=model).first()
    if sae is None or index >= sae.width:
        return None
    return sae, sae.latents.filter(index=index).first(), index


def search_notes(query: str, limit: int = 50) -> dict:
    """Latents whose note or explanation mentions `query`, and linguistic features whose name or
    description does."""
    query = (query or "").strip()
    if not query:
        return {"latents": [], "features": []}
    latents = (
        Latent.objects.filter(Q(note__icontains=query) | Q(explanation__icontains=query))
        .select_related("sae__run")
        .order_by("-note_updated_at", "-explanation_score")[:limit]
    )
    features = LinguisticFeature.objects.filter(Q(name__icontains=query) | Q(description__icontains=query))[:limit]
    return {"latents": list(latents), "features": list(features)}
