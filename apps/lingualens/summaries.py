"""Read-side summaries of LinguaLens scores for pages and the API: best latents per layer, the
overview by language and dimension, the cross-lingual view, and an SAE's explanations."""

import statistics

from django.db.models import F

from apps.lingualens.models import SAE, FeatureScore, LinguisticFeature


def best_layers(feature: LinguisticFeature) -> list[dict]:
    """The chosen latent per layer for one linguistic feature: [{layer, frc, fic, latent, sae}]
    sorted by layer. Chosen means rank 0, picked on the selection pairs: taking whichever of an
    SAE's top latents scored best on the held-out pairs would pick on them again (and show a
    latent without FIC). Where several SAEs share a layer, the one whose choice scored best."""
    rows = {}
    for score in feature.scores.filter(rank=0).select_related("sae__run").order_by("layer", "-frc"):
        rows.setdefault(score.layer, score)
    return [
        {
            "layer": layer,
            "frc": s.frc,
            "fic": s.fic,
            "latent": s.latent_index,
            "sae": s.sae,
            "score": s,
            "feature_id": s.sae.feature_id(s.latent_index),
        }
        for layer, s in sorted(rows.items())
    ]


def overview_table() -> list[dict]:
    """Per language, dimension and layer: the mean over features of the best latent's FRC (rank 0
    is the best by FRC) and of its FIC where measured."""
    cells: dict[tuple, dict] = {}
    rows = FeatureScore.objects.filter(rank=0).values_list(
        "feature__language", "feature__dimension", "layer", "frc", "fic"
    )
    for language, dimension, layer, frc, fic in rows:
        cell = cells.setdefault((language, dimension, layer), {"frc": [], "fic": []})
        cell["frc"].append(frc)
        if fic is not None:
            cell["fic"].append(fic)
    return [
        {
            "language": lang,
            "dimension": dim,
            "layer": layer,
            "frc": sum(v["frc"]) / len(v["frc"]),
            "fic": sum(v["fic"]) / len(v["fic"]) if v["fic"] else None,
            "n": len(v["frc"]),
        }
        for (lang, dim, layer), v in sorted(cells.items())
    ]


def cross_lingual_table(top: int = 5) -> list[dict]:
    """The paper's cross-lingual view: per layer and dimension, how many English and how many
    Chinese features have one of their `top` latents (ranked on the selection pairs) among the
    top latents of a feature of the same dimension in the other language. Per layer, the SAE
    scored on most features stands for it."""
    groups: dict[tuple, dict] = {}
    rows = FeatureScore.objects.filter(rank__lt=top).values_list(
        "sae_id", "layer", "feature__dimension", "feature__language", "feature_id", "latent_index"
    )
    for sae_id, layer, dimension, language, feature_id, latent in rows:
        group = groups.setdefault((layer, sae_id), {})
        group.setdefault(dimension, {"en": {}, "zh": {}})[language].setdefault(feature_id, set()).add(latent)
    chosen: dict[int, int] = {}
    for layer, sae_id in groups:
        size = sum(len(v["en"]) + len(v["zh"]) for v in groups[(layer, sae_id)].values())
        if layer not in chosen or size > chosen[layer][1]:
            chosen[layer] = (sae_id, size)
    table = []
    for layer, (sae_id, _size) in sorted(chosen.items()):
        for dimension, by_language in sorted(groups[(layer, sae_id)].items()):
            union = {lang: set().union(*feats.values()) if feats else set() for lang, feats in by_language.items()}
            shared = union["en"] & union["zh"]
            table.append(
                {
                    "layer": layer,
                    "dimension": dimension,
                    "en": sum(1 for latents in by_language["en"].values() if latents & union["zh"]),
                    "en_total": len(by_language["en"]),
                    "zh": sum(1 for latents in by_language["zh"].values() if latents & union["en"]),
                    "zh_total": len(by_language["zh"]),
                    "shared_latents": sorted(shared),
                }
            )
    return table


def explanations(sae: SAE) -> dict:
    """The SAE's explained latents, best detection score first (not scored last), with the
    median score against the median of the shuffled-explanation control."""
    latents = list(sae.latents.exclude(explanation="").order_by(F("explanation_score").desc(nulls_last=True), "index"))
    pairs = [
        (latent.explanation_score, latent.explanation_detail["control"])
        for latent in latents
        if latent.explanation_score is not None and latent.explanation_detail.get("control") is not None
    ]
    return {
        "latents": latents,
        "median": statistics.median(own for own, _ in pairs) if pairs else None,
        "control": statistics.median(control for _, control in pairs) if pairs else None,
        "above": sum(1 for own, control in pairs if own > control),
        "judged": len(pairs),
    }
