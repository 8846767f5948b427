"""Server-side plots as SVG (matplotlib, Agg). Served as image/svg+xml from their own URLs and
shown with <img>, so text from the database inside them can never run as script. Their words are
in the request's language (the views run under LocaleMiddleware)."""

import io
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from django.utils.translation import gettext as _  # noqa: E402
from django.utils.translation import pgettext  # noqa: E402
from matplotlib import font_manager, ticker  # noqa: E402

from apps.lingualens.models import Dimension  # noqa: E402

# Text stays text in the SVG (not paths), so the browser draws Chinese feature names with its fonts.
matplotlib.rcParams["svg.fonttype"] = "none"
# Chinese is measured with a CJK font where one is installed (make up/make test install Noto CJK):
# DejaVu has no CJK glyphs, so titles were sized wrongly and every chart logged "Glyph missing".
matplotlib.rcParams["font.family"] = ["DejaVu Sans", "Noto Sans CJK SC", "sans-serif"]
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # no CJK font: DejaVu alone, quietly


def _add_cjk_fonts() -> None:
    """Matplotlib caches the fonts it found on its first run and never looks again: after a
    `make up` that ran before the CJK fonts were installed, every chart was still measured with
    DejaVu alone (and logged "Glyph missing"). Add the installed Noto CJK faces it did not see."""
    if any(font.name.startswith("Noto Sans CJK") for font in font_manager.fontManager.ttflist):
        return
    for path in font_manager.findSystemFonts():
        if "NotoSansCJK" in Path(path).name:
            font_manager.fontManager.addfont(path)


_add_cjk_fonts()
ACCENT = "#3657d6"
COLORS = {"morphology": "#3657d6", "syntax": "#d6365f", "semantics": "#2a9d6b", "pragmatics": "#d68b36"}


def _svg(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _empty(message: str, size=(5, 1.2)) -> bytes:
    fig, ax = plt.subplots(figsize=size)
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#6b7280")
    return _svg(fig)


def histogram(hist: dict, density: float) -> bytes:
    if not hist or not hist.get("counts"):
        return _empty(_("This latent never fired on the corpus."))
    edges, counts = hist["edges"], hist["counts"]
    fig, ax = plt.subplots(figsize=(5.5, 2.2))
    widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
    ax.bar(edges[:-1], counts, width=widths, align="edge", color=ACCENT, alpha=0.85)
    ax.set_xlabel(_("activation"))
    ax.set_ylabel(_("tokens"))
    ax.set_title(_("Activations when firing (density %(density)s)") % {"density": f"{density:.3%}"}, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def loss_curve(points: list) -> bytes:
    if not points:
        return _empty(_("No training steps yet."))
    fig, ax = plt.subplots(figsize=(5.5, 2.2))
    ax.plot([p[0] for p in points], [p[1] for p in points], color=ACCENT)
    ax.set_xlabel(_("step"))
    ax.set_ylabel(_("normalized MSE"))
    # Labels are plain numbers, never math text: matplotlib places each glyph of "6x10^-1"
    # itself, so in a browser with other fonts they run into each other. A log axis only when
    # the loss spans a decade or more (then 1, 2, 5 per decade); under a decade it would label
    # every minor tick.
    values = [p[1] for p in points if p[1] > 0]
    if values and max(values) / min(values) >= 10:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=6))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    else:
        ax.yaxis.set_major_locator(ticker.MaxNLocator(5))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def layer_profile(rows: list[dict], title: str) -> bytes:
    """Best FRC (and FIC where measured) of one linguistic feature at each layer."""
    if not rows:
        return _empty(_("Not scored yet: score an SAE to see which layers represent this feature."))
    fig, ax = plt.subplots(figsize=(5.5, 2.4))
    layers = [r["layer"] for r in rows]
    ax.plot(layers, [r["frc"] for r in rows], marker="o", color=ACCENT, label=_("best FRC"))
    fic = [(r["layer"], r["fic"]) for r in rows if r["fic"] is not None]
    if fic:
        ax.plot([f[0] for f in fic], [f[1] for f in fic], marker="s", ls="--", color="#d68b36", label=_("its FIC"))
    for r in rows:
        ax.annotate(
            f"#{r['latent']}",
            (r["layer"], r["frc"]),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=7,
        )
    ax.set_xlabel(_("layer"))
    ax.set_ylim(0, 1.1)
    ax.set_xticks(layers)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def overview(cells: list[dict]) -> bytes:
    """Per language and dimension, mean best FRC by layer: where the best latents live."""
    if not cells:
        return _empty(_("No scores yet: train and score SAEs at a few layers."), size=(8, 1.2))
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8), sharey=True)
    all_layers = sorted({c["layer"] for c in cells})
    for ax, language, label in zip(
        axes, ("en", "zh"), (pgettext("language name", "English"), _("Chinese")), strict=True
    ):
        for dimension, color in COLORS.items():
            points = sorted(
                (c["layer"], c["frc"]) for c in cells if c["language"] == language and c["dimension"] == dimension
            )
            if points:
                ax.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    marker="o",
                    color=color,
                    label=str(Dimension(dimension).label),
                )
            fic = sorted(
                (c["layer"], c["fic"])
                for c in cells
                if c["language"] == language and c["dimension"] == dimension and c.get("fic") is not None
            )
            if fic:
                ax.plot([p[0] for p in fic], [p[1] for p in fic], ls="--", marker=".", color=color, alpha=0.6)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(_("layer"))
        ax.set_xticks(all_layers)
        ax.set_ylim(0, 1.05)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel(_("best FRC (solid), its FIC (dashed)"))
    handles = {label: h for ax in axes for h, label in zip(*ax.get_legend_handles_labels(), strict=True)}
    if handles:
        axes[1].legend(handles.values(), handles.keys(), fontsize=8, frameon=False, loc="lower right")
    return _svg(fig)


def cross_lingual(rows: list[dict]) -> bytes:
    """Per dimension and layer: English (solid) and Chinese (dashed) features that share a top
    latent with a feature of the other language."""
    if not rows:
        return _empty(_("No scores yet: score SAEs to compare English and Chinese features."), size=(8, 1.2))
    fig, ax = plt.subplots(figsize=(7, 2.6))
    layers = sorted({r["layer"] for r in rows})
    for dimension, color in COLORS.items():
        points = sorted((r["layer"], r["en"], r["zh"]) for r in rows if r["dimension"] == dimension)
        if not points:
            continue
        ax.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            marker="o",
            color=color,
            label=f"{Dimension(dimension).label} (en)",
        )
        ax.plot([p[0] for p in points], [p[2] for p in points], marker="s", ls="--", color=color, alpha=0.7)
    ax.set_xlabel(_("layer"))
    ax.set_ylabel(_("features sharing a top latent"))
    ax.set_xticks(layers)
    ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_title(_("English (solid) and Chinese (dashed) features with a shared top latent"), fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)
