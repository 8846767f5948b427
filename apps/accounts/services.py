"""Account actions: validate, change, then (where others care) publish."""

import secrets

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import ApiToken, Cohort, Role, User, hash_token
from apps.accounts.permissions import has_role

TOKEN_PREFIX = "atr_"  # noqa: S105  (a visible prefix, not a secret)


def create_cohort(teacher: User, name: str) -> Cohort:
    if not has_role(teacher, Role.TEACHER):
        raise PermissionDenied(_("Only teachers can create a class."))
    name = name.strip()
    if not name:
        raise ValidationError(_("A class needs a name."))
    return Cohort.objects.create(teacher=teacher, name=name)


@transaction.atomic
def join_cohort(student: User, code: str) -> Cohort:
    if student.role != Role.STUDENT:
        raise PermissionDenied(_("Only students join a class with a code."))
    cleaned = code.strip().upper()
    cohort = Cohort.objects.filter(join_code=cleaned).first()
    if cohort is None:
        raise ValidationError(_("No class has the code %(code)s. Check it with your teacher.") % {"code": cleaned})
    cohort.students.add(student)
    return cohort


def create_api_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Returns the token row and its raw value, which is never stored and shown once."""
    name = name.strip() or "token"
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name[:80], prefix=raw[:12], key_hash=hash_token(raw))
    return token, raw


def revoke_api_token(user: User, token_id: int) -> bool:
    deleted, _count = ApiToken.objects.filter(user=user, pk=token_id).delete()
    return deleted > 0


def user_for_token(raw: str) -> User | None:
    if not raw or not raw.startswith(TOKEN_PREFIX):
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user
