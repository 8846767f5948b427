"""What the KB pages show, computed once per KB content instead of on every request.

A KB's JSON is megabytes (geo: 4.6 MB); reading and walking it on each request made `/kbqa/`
take 1.1 s. The schema tables, the example questions and how well they read are stored in the
KB's `summary` column when it is imported (or, for a row imported before the column existed,
on the first page that needs them), and the entity list for the browse page is kept per process.
"""

from __future__ import annotations

import threading

from apps.kbqa.models import KnowledgeBase

SUMMARY_VERSION = 1


def build_summary(kb: KnowledgeBase) -> dict:
    """Schema, example questions and their readability for a KB (loads its content once)."""
    from apps.kbqa.examples import example_questions, readability
    from apps.kbqa.kb_format import kb_schema
    from apps.kbqa.ontology import load_ontology
    from apps.kbqa.services import get_kb

    full = kb if "data" not in kb.get_deferred_fields() else get_kb(kb.name)
    examples = example_questions(load_ontology(full))
    return {
        "version": SUMMARY_VERSION,
        "hash": full.content_hash,
        "schema": kb_schema(full),
        "examples": examples,
        "readability": readability(examples),
    }


def refresh_summary(kb: KnowledgeBase) -> dict:
    kb.summary = build_summary(kb)
    KnowledgeBase.objects.filter(pk=kb.pk).update(summary=kb.summary)
    return kb.summary


def kb_summary(kb: KnowledgeBase) -> dict:
    """The stored summary, rebuilt (and stored) when missing or out of date."""
    summary = kb.summary or {}
    if summary.get("version") != SUMMARY_VERSION or summary.get("hash") != kb.content_hash:
        summary = refresh_summary(kb)
    return summary


def default_kb(kbs: list[KnowledgeBase]) -> KnowledgeBase | None:
    """The KB the ask page opens on: the one whose example questions read best (then by name)."""
    if not kbs:
        return None
    return max(kbs, key=lambda kb: (kb_summary(kb).get("readability", 0.0), -kbs.index(kb)))


_entity_rows: dict[int, tuple[str, list[dict]]] = {}
_entity_lock = threading.Lock()


def entity_rows(kb: KnowledgeBase) -> list[dict]:
    """Every entity as a row of the browse table, built once per process and KB content."""
    cached = _entity_rows.get(kb.pk)
    if cached and cached[0] == kb.content_hash:
        return cached[1]
    from apps.kbqa.services import get_kb

    with _entity_lock:
        full = kb if "data" not in kb.get_deferred_fields() else get_kb(kb.name)
        concepts = full.data["concepts"]
        rows = [
            {
                "id": eid,
                "name": entity["name"],
                "folded": entity["name"].casefold(),
                "concepts": [concepts[c]["name"] for c in entity["instanceOf"]],
                "attributes": len(entity["attributes"]),
                "relations": len(entity["relations"]),
            }
            for eid, entity in full.data["entities"].items()
        ]
        _entity_rows[kb.pk] = (full.content_hash, rows)
        return rows


def search_entities(kb: KnowledgeBase, query: str) -> list[dict]:
    """Entities whose name contains `query` (case-insensitive), exact matches first."""
    needle = query.strip().casefold()
    rows = [row for row in entity_rows(kb) if not needle or needle in row["folded"]]
    rows.sort(key=lambda r: (r["folded"] != needle, r["folded"], r["id"]))
    return rows
