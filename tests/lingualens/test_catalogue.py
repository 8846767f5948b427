"""The shipped catalogue, JSONL import/export with bad lines, corpora uploads, and the demo command."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from apps.lingualens import services
from apps.lingualens.models import Corpus, CounterfactualPair, LinguisticFeature
from tools.lingualens_catalogue import build as builder

pytestmark = pytest.mark.django_db


def test_builder_catalogue_is_large_and_checked():
    features = builder.build_catalogue()
    assert len(features) >= 48
    for language in ("en", "zh"):
        for dimension in ("morphology", "syntax", "semantics", "pragmatics"):
            assert sum(f["language"] == language and f["dimension"] == dimension for f in features) >= 6
    for feature in features:
        assert len(feature["pairs"]) >= 24, feature["name"]
        assert len(set(feature["pairs"])) == len(feature["pairs"])
        for sentence, counterfactual, span in feature["pairs"]:
            assert span in sentence
            assert sentence != counterfactual
    names = {f["name"] for f in features}
    assert {"Passive voice", "把 construction", "被 passive", "Perfective aspect 了"} <= names
    # The file the app loads is what the builder writes.
    assert builder.CATALOGUE_PATH == services.CATALOGUE_PATH
    assert services.CATALOGUE_PATH.read_text(encoding="utf-8").splitlines() == builder.catalogue_lines(features)


def test_demo_command_is_idempotent():
    call_command("load_lingualens_demo")
    counts = LinguisticFeature.objects.count(), CounterfactualPair.objects.count(), Corpus.objects.count()
    call_command("load_lingualens_demo")
    assert (LinguisticFeature.objects.count(), CounterfactualPair.objects.count(), Corpus.objects.count()) == counts
    assert counts[0] >= 48
    assert counts[1] >= 48 * 24
    corpus = Corpus.objects.get(is_default=True)
    assert "written for Atrium" in corpus.source
    assert any("被" in text for text in corpus.texts)
    assert any("was painted by" in text for text in corpus.texts)


def test_pair_span_must_occur_in_sentence():
    feature = LinguisticFeature.objects.create(language="en", dimension="syntax", name="x")
    with pytest.raises(ValidationError, match="does not occur"):
        CounterfactualPair.objects.create(feature=feature, sentence="A b c.", counterfactual="A c.", span="zz")
    with pytest.raises(services.LensInputError, match="must differ"):
        services.add_pair(feature, "A b c.", "A b c.", "b")
    assert services.add_pair(feature, "A b c.", "A c.", "b").span == "b"


GOOD = json.dumps(
    {
        "language": "en",
        "dimension": "syntax",
        "name": "Topicalization",
        "pairs": [{"sentence": "Beans, I like.", "counterfactual": "I like beans.", "span": "Beans,"}],
    }
)
BAD_SPAN = json.dumps(
    {
        "language": "en",
        "dimension": "syntax",
        "name": "Bad",
        "pairs": [{"sentence": "A b.", "counterfactual": "A.", "span": "q"}],
    }
)
PAIR_LINE = json.dumps(
    {
        "language": "en",
        "feature": "Topicalization",
        "sentence": "Rice, she eats.",
        "counterfactual": "She eats rice.",
        "span": "Rice,",
    }
)


def test_import_keep_good_lines_reports_each_bad_line():
    text = "\n".join(
        [
            GOOD,
            "{not json",
            BAD_SPAN,
            json.dumps({"language": "fr", "dimension": "syntax", "name": "F"}),
            PAIR_LINE,
            json.dumps({"language": "en", "feature": "Nope", "sentence": "a b", "counterfactual": "a", "span": "b"}),
        ]
    )
    report = services.import_catalogue(text, "keep")
    assert [line for line, _ in report.errors] == [2, 3, 4, 6]
    reasons = dict(report.errors)
    assert "not valid JSON" in reasons[2]
    assert "does not occur in the sentence" in reasons[3]
    assert "language must be one of" in reasons[4]
    assert "no feature named 'Nope'" in reasons[6]
    feature = LinguisticFeature.objects.get(name="Topicalization")
    assert feature.pairs.count() == 2
    again = services.import_catalogue(text, "keep")  # idempotent
    assert again.pairs_created == 0
    assert feature.pairs.count() == 2


def test_import_all_or_nothing():
    report = services.import_catalogue(GOOD + "\n" + BAD_SPAN, "all")
    assert not report.applied
    assert report.errors[0][0] == 2
    assert not LinguisticFeature.objects.filter(name="Topicalization").exists()


def test_export_round_trip():
    services.import_catalogue(GOOD + "\n" + PAIR_LINE, "all")
    exported = services.export_catalogue()
    LinguisticFeature.objects.all().delete()
    report = services.import_catalogue(exported, "all")
    assert report.features_created == 1
    assert report.pairs_created == 2


def test_corpus_parsing_and_bad_uploads(settings):
    assert services.parse_corpus("a.txt", "First line.\n\n第二行。\n".encode()) == ["First line.", "第二行。"]
    assert services.parse_corpus("a.jsonl", b'{"text": "Hello there."}\n') == ["Hello there."]
    with pytest.raises(services.LensInputError, match=r"not UTF-8 text: byte 0xd6 at position 0 \(line 1\)"):
        services.parse_corpus("gbk.txt", "中文".encode("gbk"))
    with pytest.raises(services.LensInputError, match="line 2: not valid JSON"):
        services.parse_corpus("a.jsonl", b'{"text": "ok"}\n{oops\n')
    with pytest.raises(services.LensInputError, match="upload a .txt or .jsonl"):
        services.parse_corpus("a.pdf", b"x")
    with pytest.raises(services.LensInputError, match="the limit is"):
        services.parse_corpus("big.txt", b"x" * (services.MAX_CORPUS_BYTES + 1))
    long_text = "This is a sentence. " * 60
    pieces = services.split_text(long_text)
    assert len(pieces) > 1
    assert all(len(p) <= services.MAX_TEXT_CHARS for p in pieces)


def test_training_refused_when_the_disk_is_too_small(researcher, monkeypatch, lens_dir):
    import shutil
    from collections import namedtuple

    corpus = services.ensure_default_corpus()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(services.LensInputError, match=r"would need up to .* GB and only 0.00 GB are free"):
        services.start_training(researcher, corpus, 3)


def test_training_refused_when_the_run_would_not_fit_in_memory(researcher, lens_dir):
    corpus = services.create_corpus(researcher, "big", "test", ["word"] * 50_000)
    with pytest.raises(services.LensInputError, match=r"up to 25,600,000 tokens; the limit is 2,000,000"):
        services.start_training(researcher, corpus, 3, max_texts=50_000, max_tokens_per_text=512)
