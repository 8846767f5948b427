"""Builds LinguaLens' shipped linguistic feature catalogue (apps/lingualens/data/catalogue.jsonl)
from templates: word lists x frames. Run `python -m tools.lingualens_catalogue.build`."""
