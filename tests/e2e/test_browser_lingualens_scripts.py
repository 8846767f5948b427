"""Promoted tokens of a latent render as letters, not empty boxes, in every script the
LinguaLens model's vocabulary has in quantity: the latent page is drawn by real Chromium with
the site's stylesheet, and each character is compared with the box Chromium draws for a
character no font has (fonts come from `make chromium`: fonts-noto-cjk and fonts-noto-core)."""

import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from apps.lingualens.models import Latent
from tests.lingualens.conftest import catalogue, lens_dir  # noqa: F401  (fixtures stored_sae needs)
from tests.lingualens.test_views_api import stored_sae  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.django_db]
CSS = Path(__file__).resolve().parents[2] / "static" / "css" / "atrium.css"
MIN_TOKENS = 100  # a script with fewer tokens in the vocabulary is rarely promoted

# Draw each character on a canvas in the element's own font and compare the pixels with the
# .notdef boxes of characters that no font covers (unassigned code points).
MISSING_GLYPHS_JS = r"""
(selector) => {
  const canvas = document.createElement('canvas'); canvas.width = 64; canvas.height = 64;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const missing = [];
  for (const element of document.querySelectorAll(selector)) {
    ctx.font = '32px ' + getComputedStyle(element).fontFamily;
    const draw = (ch) => {
      ctx.clearRect(0, 0, 64, 64); ctx.fillStyle = '#000'; ctx.textBaseline = 'top'; ctx.fillText(ch, 4, 4);
      return Array.from(ctx.getImageData(0, 0, 64, 64).data).join(',');
    };
    const boxes = new Set(['\u0378', '\u0FFF', String.fromCodePoint(0x10FFFD)].map(draw));
    for (const ch of Array.from(element.textContent)) {
      if (!/\s/.test(ch) && boxes.has(draw(ch))) missing.push(element.textContent + ': ' + ch);
    }
  }
  return missing;
}
"""


def script_samples(tokenizer) -> dict[str, str]:
    """One token (the most frequent, i.e. lowest id) per script with MIN_TOKENS tokens or more."""
    counts: Counter = Counter()
    sample: dict[str, tuple[int, str]] = {}
    for token, token_id in tokenizer.get_vocab().items():
        text = tokenizer.convert_tokens_to_string([token]).strip()
        scripts = set()
        for ch in text:
            try:
                scripts.add(unicodedata.name(ch).split()[0])
            except ValueError:
                scripts.add("?")
        if len(text) < 2 or len(scripts) != 1:
            continue
        script = scripts.pop()
        counts[script] += 1
        if script not in sample or token_id < sample[script][0]:
            sample[script] = (token_id, text)
    return {script: sample[script][1] for script, n in counts.items() if n >= MIN_TOKENS and script != "?"}


def test_promoted_tokens_render_in_every_script_of_the_vocabulary(page, client_for, researcher, stored_sae):  # noqa: F811
    from transformers import AutoTokenizer

    from apps.inference.registry import converted_dir, get_model

    tokenizer = AutoTokenizer.from_pretrained(converted_dir(get_model(stored_sae.model_name)))
    samples = script_samples(tokenizer)
    assert {"DEVANAGARI", "THAI", "CJK", "HANGUL", "ARABIC"} <= set(samples)
    tokens = list(samples.values())
    Latent.objects.filter(sae=stored_sae, index=3).update(
        promoted=[[t, 1.0] for t in tokens[: len(tokens) // 2]],
        suppressed=[[t, -1.0] for t in tokens[len(tokens) // 2 :]],
    )
    html = client_for(researcher).get(f"/lingualens/features/{stored_sae.feature_id(3)}/").content.decode()
    page.set_content(html)
    page.add_style_tag(content=CSS.read_text(encoding="utf-8"))
    assert page.locator("#promoted code").count() + page.locator("#suppressed code").count() == len(tokens)
    missing = page.evaluate(MISSING_GLYPHS_JS, "#promoted code, #suppressed code")
    assert not missing, f"drawn as empty boxes: {missing}"
