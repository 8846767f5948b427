"""Small text tools shared by the boundary policy, the orchestrator, the judge and the
document merge: words, n-gram overlap, similarity, and a line-based three-way merge."""

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

# A Han character counts as a word: Chinese has no spaces, and character n-grams are what
# similarity measures use for it.
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[\u3400-\u9fff]")
HAN_STOPWORDS = frozenset("的了是在和有我你他她它们这那就也都要会能吗呢吧啊把被与及或而之其")
STOPWORDS = frozenset(
    """
    a an the and or but if of to in on at for with by from as is are was were be been it its this that
    these those i you he she we they me my your our their his her them us do does did not no so can
    will would should could what which who how why when where there here than then also just about into
    over more most some any all
    """.split()  # noqa: SIM905  (a word list reads better as words)
)


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def content_words(text: str) -> set[str]:
    return {word for word in words(text) if _is_content(word)}


def _is_content(word: str) -> bool:
    if len(word) == 1 and word >= "\u3400":
        return word not in HAN_STOPWORDS
    return len(word) > 2 and word not in STOPWORDS


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def ngram_containment(part: str, whole: str, n: int = 3) -> float:
    """Share of `part`'s n-grams that also occur in `whole` (0..1)."""
    grams = ngrams(part, n)
    if not grams:
        return 0.0
    return len(grams & ngrams(whole, n)) / len(grams)


def word_overlap(a: str, b: str) -> float:
    """Share of `a`'s content words found in `b`."""
    first = content_words(a)
    return len(first & content_words(b)) / len(first) if first else 0.0


def longest_common_run(a: str, b: str) -> int:
    """Length in words of the longest run of words `a` and `b` share (copy detection)."""
    first, second = words(a), words(b)
    if not first or not second:
        return 0
    match = SequenceMatcher(None, first, second, autojunk=False).find_longest_match(0, len(first), 0, len(second))
    return match.size


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|(?<=[。！？])|\n+", text) if s.strip()]


def keyword_hits(text: str, keywords: list[str]) -> list[str]:
    """Keywords (or word stems such as 'contamin') that occur in the text."""
    lowered = text.lower()
    return [keyword for keyword in keywords if keyword.lower() in lowered]


# ---- three-way merge of line lists ---------------------------------------------------------


@dataclass
class MergeResult:
    text: str
    conflict: bool


def _hunks(base: list[str], other: list[str]) -> list[tuple[int, int, list[str]]]:
    """(base_start, base_end, replacement lines) for each change from base to other."""
    matcher = SequenceMatcher(None, base, other, autojunk=False)
    return [(i1, i2, other[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def merge3(base: str, ours: str, theirs: str, ours_label: str = "yours", theirs_label: str = "theirs") -> MergeResult:
    """Merge two edits of `base`. Edits to different lines combine; edits to the same lines
    (with different results) keep both versions between conflict markers, so nothing is lost."""
    base_lines = base.splitlines()
    tagged = [(s, e, r, "ours") for s, e, r in _hunks(base_lines, ours.splitlines())]
    tagged += [(s, e, r, "theirs") for s, e, r in _hunks(base_lines, theirs.splitlines())]
    tagged.sort(key=lambda hunk: (hunk[0], hunk[1]))
    # Cluster hunks that touch the same base lines (or insert at the same place).
    clusters: list[list[tuple]] = []
    for hunk in tagged:
        if clusters:
            cluster_start = clusters[-1][0][0]
            cluster_end = max(h[1] for h in clusters[-1])
            if hunk[0] < cluster_end or hunk[0] == cluster_start:
                clusters[-1].append(hunk)
                continue
        clusters.append([hunk])
    changes: list[tuple[int, int, list[str]]] = []
    conflict = False
    for cluster in clusters:
        start, end = cluster[0][0], max(h[1] for h in cluster)
        sides = {h[3] for h in cluster}
        if len(sides) == 1:
            changes.extend((s, e, r) for s, e, r, _side in cluster)
            continue
        region = base_lines[start:end]
        our_region = _apply(region, [(s - start, e - start, r) for s, e, r, side in cluster if side == "ours"])
        their_region = _apply(region, [(s - start, e - start, r) for s, e, r, side in cluster if side == "theirs"])
        if our_region == their_region:
            changes.append((start, end, our_region))
        else:
            conflict = True
            marked = [f"<<<<<<< {ours_label}", *our_region, "=======", *their_region, f">>>>>>> {theirs_label}"]
            changes.append((start, end, marked))
    merged = _apply(base_lines, changes)
    trailing = "\n" if (ours.endswith("\n") or theirs.endswith("\n")) and merged else ""
    return MergeResult("\n".join(merged) + trailing, conflict)


def _apply(lines: list[str], changes: list[tuple[int, int, list[str]]]) -> list[str]:
    out: list[str] = []
    position = 0
    for start, end, replacement in sorted(changes, key=lambda change: (change[0], change[1])):
        out.extend(lines[position:start])
        out.extend(replacement)
        position = max(position, end)
    out.extend(lines[position:])
    return out
