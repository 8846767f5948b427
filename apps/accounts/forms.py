from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

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
