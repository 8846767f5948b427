"""Builders of the shipped KBs from data in installed PyPI packages, and the shared steps of
the build commands (store in the database, write the JSON next to the code when small)."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

from apps.kbqa import services
from apps.kbqa.models import KnowledgeBase

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
MAX_SHIPPED_BYTES = 5 * 1024 * 1024  # larger KBs stay in the database only


def string(text: str) -> dict:
    return {"type": "string", "value": str(text)}


def quantity(number: float, unit: str = "1") -> dict:
    number = float(number)
    return {"type": "quantity", "value": int(number) if number.is_integer() else number, "unit": unit}


def year(value: int) -> dict:
    return {"type": "year", "value": int(value)}


def date(iso: str) -> dict:
    return {"type": "date", "value": iso}


class KBBuilder:
    """Collects concepts and entities in KoPL's JSON shape, forward relations only
    (import_kb's normalize_kb adds the backward ends)."""

    def __init__(self) -> None:
        self.concepts: dict[str, dict] = {}
        self.entities: dict[str, dict] = {}

    def concept(self, cid: str, name: str, parents: tuple[str, ...] = ()) -> str:
        self.concepts[cid] = {"name": name, "subclassOf": list(parents)}
        return cid

    def entity(self, eid: str, name: str, concepts: list[str]) -> str:
        self.entities[eid] = {"name": name, "instanceOf": concepts, "attributes": [], "relations": []}
        return eid

    def attr(self, eid: str, key: str, value: dict, qualifiers: dict | None = None) -> None:
        self.entities[eid]["attributes"].append({"key": key, "value": value, "qualifiers": qualifiers or {}})

    def rel(self, eid: str, relation: str, obj: str, qualifiers: dict | None = None) -> None:
        if obj not in self.entities:
            return  # the target was left out of this KB
        item = {"relation": relation, "direction": "forward", "object": obj, "qualifiers": qualifiers or {}}
        if item not in self.entities[eid]["relations"]:
            self.entities[eid]["relations"].append(item)

    def add_concept(self, eid: str, cid: str) -> None:
        if cid not in self.entities[eid]["instanceOf"]:
            self.entities[eid]["instanceOf"].append(cid)

    def data(self) -> dict:
        return {"concepts": self.concepts, "entities": self.entities}


def provenance(*packages: str) -> str:
    return ", ".join(f"{name}=={version(name)}" for name in packages)


def store(name: str, title: str, description: str, source: str, data: dict) -> tuple[KnowledgeBase, Path | None]:
    """Import (replacing the previous build) and write apps/kbqa/data/<name>.json when it is
    small enough to ship; idempotent: an unchanged build rewrites nothing.

    The file holds the build as made, relations on their subject only: importing it (e.g.
    POST /api/kbqa/kbs) adds the backward ends, which would make the file about 40% larger.
    """
    kb = services.import_kb(None, name, data, title=title, description=description, source=source, replace=True)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    path = DATA_DIR / f"{name}.json"
    if len(text.encode()) > MAX_SHIPPED_BYTES:
        return kb, None
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return kb, path
