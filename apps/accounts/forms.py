from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.accounts import throttle
from apps.accounts.models import Role, User

SIGNUP_ROLES = [
    (Role.STUDENT, Role.STUDENT.label),
    (Role.TEACHER, Role.TEACHER.label),
    (Role.RESEARCHER, Role.RESEARCHER.label),
]


class SignUpForm(UserCreationForm):
    # Admin is never self-chosen; an admin promotes users in the admin site.
    role = forms.ChoiceField(choices=SIGNUP_ROLES, label=_("I am a"))
    email = forms.EmailField(required=False, label=_("Email (optional)"))

    class Meta:
        model = User
        fields = ("username", "email", "role")


class CohortForm(forms.Form):
    name = forms.CharField(max_length=120, label=_("Class name"))


class JoinCohortForm(forms.Form):
    code = forms.CharField(max_length=12, label=_("Class code"))


class TokenForm(forms.Form):
    name = forms.CharField(max_length=80, label=_("Token name"), initial="notebook")


class ThrottledLoginMixin:
    """Refuses a login while the account or the address is locked out (apps.accounts.throttle),
    before the password is checked, and counts each failure against both."""

    throttled = False

    def clean(self):
        username = (self.cleaned_data.get("username") or "").strip()
        address = throttle.request_address(self.request.META) if self.request is not None else ""
        account_wait = throttle.retry_after(throttle.ACCOUNT, username)
        wait = max(account_wait, throttle.retry_after(throttle.ADDRESS, address))
        if wait:
            self.throttled = True
            minutes = throttle.minutes(wait)
            who = _("this account") if account_wait else _("your network address")
            raise ValidationError(
                ngettext(
                    "Too many failed log-in attempts for %(who)s. Try again in %(minutes)d minute, "
                    "or ask an administrator to unlock it.",
                    "Too many failed log-in attempts for %(who)s. Try again in %(minutes)d minutes, "
                    "or ask an administrator to unlock it.",
                    minutes,
                )
                % {"who": who, "minutes": minutes},
                code="throttled",
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            if username and self.cleaned_data.get("password"):
                throttle.record_failure(throttle.ACCOUNT, username)
                throttle.record_failure(throttle.ADDRESS, address)
            raise
        throttle.clear(throttle.ACCOUNT, username)
        return cleaned


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
