"""Every LinguaLens page in Chinese: the navigation, headings, forms and explanations come from
the zh-hans catalogue, and no English sentence of the page's own text is left."""

import re

import pytest
from django.conf import settings

from apps.lingualens import services, steering
from tests.lingualens.test_page_states import finish_search
from tests.lingualens.test_views_api import stored_sae  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db

# English the pages must not show in Chinese (their own text, not data such as feature names).
ENGLISH = [
    "Linguistic features",
    "Steering",
    "How it works",
    "Train an SAE",
    "Start training",
    "Upload a corpus",
    "Add a feature",
    "Import JSONL",
    "Counterfactual pairs",
    "Best latents per layer",
    "Top activating contexts",
    "Researcher note",
    "Latents of a sentence",
    "Find latents",
    "Generate both",
    "Latents and strengths",
    "Without intervention",
    "Training loss",
    "Latents by firing density",
    "Top latents per token",
    "Across languages",
    "Shared latents",
    "Explanations",
    "Latents with this in their",
]


def visible_text(html: str) -> str:
    """The page's text without tags, scripts and the language switcher's own names."""
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_every_lingualens_page_reads_in_chinese(client_for, researcher, stored_sae):  # noqa: F811
    client = client_for(researcher)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    search = services.start_search(researcher, stored_sae, "门被汤姆漆了。")
    finish_search(search, stored_sae)
    run = steering.start_steering(researcher, stored_sae, "今天天气", "3")
    feature = stored_sae.scores.first().feature
    pages = {
        "/lingualens/": ["训练 SAE", "稀疏自编码器", "工作方式"],
        "/lingualens/catalogue/": ["语言特征", "添加特征", "导入 JSONL"],
        f"/lingualens/catalogue/{feature.pk}/": ["各层最佳潜变量", "反事实句对", "添加句对"],
        f"/lingualens/saes/{stored_sae.slug}/": ["指标", "训练损失", "匹配的语言特征", "按激活密度排列的潜变量"],
        f"/lingualens/features/{stored_sae.feature_id(3)}/": ["最高激活上下文", "研究者笔记", "对数几率效应"],
        f"/lingualens/search/?job={search.pk}": ["句子的潜变量", "每个词元的最强潜变量"],
        "/lingualens/steer/": ["潜变量和强度", "同时生成"],
        f"/lingualens/steer/{run.job_id}/": ["无干预", "有干预", "典型最高激活"],
    }
    for url, chinese in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        text = visible_text(response.content.decode())
        for phrase in chinese:
            assert phrase in text, (url, phrase)
        for phrase in ENGLISH:
            assert phrase not in text, (url, phrase)
        assert "引导" in text  # the tabs


def test_english_stays_the_default(client_for, researcher, stored_sae):  # noqa: F811
    page = client_for(researcher).get("/lingualens/").content.decode()
    assert "Train an SAE" in page
    assert "训练 SAE" not in page
