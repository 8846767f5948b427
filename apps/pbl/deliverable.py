"""PBL studio actions on the team's deliverable: the shared document of each stage, saved with
optimistic concurrency (merged or kept with conflict markers), and copying agent text detected."""

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.accounts.models import User
from apps.pbl import textutil
from apps.pbl.events import log_event, publish_team
from apps.pbl.models import ChatMessage, Document, DocumentVersion, MessageKind, Team
from apps.pbl.services import require_member, require_open, trigger_orchestrator

MAX_DOCUMENT_CHARS = 100_000
# A run of this many words shared with a recent agent message counts as copying agent text.
COPY_RUN_WORDS = 12


def get_document(team: Team, stage_key: str | None = None) -> Document:
    stage = team.run.project.stage_by_key(stage_key) if stage_key else team.stage
    if stage is None:
        stage = team.run.project.stages[-1]
    document, _ = Document.objects.get_or_create(
        team=team, stage_key=stage["key"], defaults={"text": stage["deliverable"].get("template", "")}
    )
    return document


def recent_agent_texts(team: Team, limit: int = 20) -> list[ChatMessage]:
    return list(
        team.messages.filter(kind__in=[MessageKind.AGENT, MessageKind.ORCHESTRATOR])
        .exclude(text="")
        .order_by("-created_at")[:limit]
    )


def save_document(user: User, team: Team, text: str, base_version: int, stage_key: str | None = None) -> dict:
    """Save a learner's edit with optimistic concurrency. Edited from an older version, the
    edit is merged with what others saved since (different lines) or kept beside it with
    conflict markers (same lines). Returns {"outcome": saved|merged|conflict|unchanged, ...}."""
    require_member(user, team)
    require_open(team.run)
    if not isinstance(text, str):
        raise ValidationError("The document must be text.")
    if len(text) > MAX_DOCUMENT_CHARS:
        raise ValidationError(f"The document is too long ({len(text)} characters; the limit is {MAX_DOCUMENT_CHARS}).")
    text = text.replace("\r\n", "\n")
    current = team.stage or team.run.project.stages[-1]
    if stage_key and stage_key != current["key"]:
        raise ValidationError("This stage's deliverable is finished; reload to work on the current stage.")
    with transaction.atomic():
        document = Document.objects.select_for_update().get(pk=get_document(team, stage_key).pk)
        if base_version > document.version or base_version < 0:
            raise ValidationError(f"Version {base_version} does not exist (the newest is {document.version}).")
        outcome, merged_text = "saved", text
        if base_version != document.version:
            base_text = _base_text(document, base_version)
            latest = document.versions.order_by("-number").first()
            result = textutil.merge3(
                base_text,
                text,
                document.text,
                ours_label=f"{user.username} (your edit)",
                theirs_label=f"{latest.author.username} (version {document.version})",
            )
            merged_text = result.text
            outcome = "conflict" if result.conflict else "merged"
        if merged_text == document.text:
            return {"outcome": "unchanged", "version": document.version, "text": document.text}
        previous = document.text
        document.version += 1
        document.text = merged_text
        document.save(update_fields=["version", "text"])
        added = _added_text(previous, merged_text)
        version = DocumentVersion.objects.create(
            document=document,
            number=document.version,
            text=merged_text,
            author=user,
            base_number=base_version,
            merged=outcome == "merged",
            conflict=outcome == "conflict",
            chars_added=len(added),
        )
        log_event(
            team.run,
            "edited",
            "document",
            f"{team.pk}:{document.stage_key}",
            team=team,
            actor=user,
            result={
                "version": version.number,
                "outcome": outcome,
                "chars_added": len(added),
                "chars_removed": max(0, len(previous) - len(merged_text) + len(added)),
            },
            context={"stage": document.stage_key},
        )
        copied = detect_copy(team, added)
        if copied is not None:
            log_event(
                team.run,
                "copied",
                "document",
                f"{team.pk}:{document.stage_key}",
                team=team,
                actor=user,
                result=copied,
                context={"stage": document.stage_key},
            )
            trigger_orchestrator(user.pk, team.run_id)
    publish_team(team.pk, {"type": "pbl.document", "version": version.number, "author": user.username})
    return {"outcome": outcome, "version": version.number, "text": merged_text, "copied": copied is not None}


def _base_text(document: Document, number: int) -> str:
    if number == 0:
        stage = document.team.run.project.stage_by_key(document.stage_key)
        return stage["deliverable"].get("template", "") if stage else ""
    version = document.versions.filter(number=number).first()
    return version.text if version else ""


def _added_text(before: str, after: str) -> str:
    """The lines (and words) that are new in `after`."""
    from difflib import SequenceMatcher

    old, new = before.split(), after.split()
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    return " ".join(
        " ".join(new[j1:j2]) for tag, _i1, _i2, j1, j2 in matcher.get_opcodes() if tag in ("insert", "replace")
    )


def detect_copy(team: Team, added: str) -> dict | None:
    """Added text sharing a long run of words with a recent agent message counts as copied."""
    if len(textutil.words(added)) < COPY_RUN_WORDS:
        return None
    for message in recent_agent_texts(team):
        run = textutil.longest_common_run(added, message.text)
        if run >= COPY_RUN_WORDS:
            return {"from": message.speaker, "message": message.pk, "shared_words": run}
    return None


def document_versions(team: Team, stage_key: str | None = None):
    return get_document(team, stage_key).versions.select_related("author")
