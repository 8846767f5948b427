"""Progress messages: saved in English, shown in the reader's language."""

import pytest
from django.utils import translation

from apps.jobs.progress_text import localize, made_from, message
from apps.lingualens.progress import ACTIVATIONS, ALONGSIDE, EXPLAINED, SCORED, TRAINING_STEP, WITH_WAIT


def test_a_message_is_saved_in_english_and_shown_in_chinese():
    saved = message(ACTIVATIONS, done=12, total=340, tokens="1,024")
    assert saved == "Activations: 12/340 texts, 1,024 tokens"
    with translation.override("zh-hans"):
        assert localize(saved) == "激活值：12/340 篇文本，1,024 个词元"
    with translation.override("en"):
        assert localize(saved) == saved


def test_a_message_inside_the_chains_wait_is_translated_too():
    step = message(TRAINING_STEP, step=120, steps=1954, mse="0.083")
    saved = message(WITH_WAIT, step=step, minutes=42)
    assert saved == "SAE step 120/1954, normalized MSE 0.083 · about 42 min left"
    with translation.override("zh-hans"):
        assert localize(saved) == "SAE 第 120/1954 步，归一化均方误差 0.083 · 约剩 42 分钟"
    assert made_from(WITH_WAIT, saved)
    assert made_from(TRAINING_STEP, step)
    assert not made_from(WITH_WAIT, step)


def test_two_stages_at_once_are_both_translated():
    # An SAE's explanation runs beside the next SAE's training: the chain shows both.
    training = message(TRAINING_STEP, step=5, steps=245, mse="0.2")
    explaining = message(EXPLAINED, done=3, total=24, latent=182, explanation="the word 呢")
    saved = message(WITH_WAIT, step=message(ALONGSIDE, step=training, other=explaining), minutes=90)
    assert saved == (
        "SAE step 5/245, normalized MSE 0.2; alongside: Explained 3/24: #182 the word 呢 · about 90 min left"
    )
    with translation.override("zh-hans"):
        shown = localize(saved)
    assert shown == "SAE 第 5/245 步，归一化均方误差 0.2；同时：已解释 3/24：#182 the word 呢 · 约剩 90 分钟"


def test_values_are_kept_as_they_are_even_when_they_look_like_fields():
    # A feature name or a model's explanation is data: braces or a colon in it change nothing.
    saved = message(EXPLAINED, done=3, total=24, latent=182, explanation='the word "{total}": 呢, then #2')
    with translation.override("zh-hans"):
        assert localize(saved) == '已解释 3/24：#182 the word "{total}": 呢, then #2'
    saved = message(SCORED, done=7, total=48, feature="Question particle 吗")
    with translation.override("zh-hans"):
        assert localize(saved) == "已评分 7/48：Question particle 吗"


def test_a_message_from_no_template_is_shown_as_it_is():
    with translation.override("zh-hans"):
        assert localize("Counting 3/10") == "Counting 3/10"
        assert localize("") == ""


def test_an_unregistered_template_is_refused():
    with pytest.raises(KeyError):
        message("Something {new}", new=1)
