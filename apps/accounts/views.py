from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts import services
from apps.accounts.forms import CohortForm, JoinCohortForm, LoginForm, SignUpForm, TokenForm
from apps.accounts.models import Cohort, Role
from apps.accounts.permissions import area_required, has_role


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.throttled:
            response.status_code = 429  # scripts see the lockout without parsing the page
        return response


def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        messages.success(request, _("Welcome to Atrium, %(name)s.") % {"name": user.username})
        return redirect("home")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
def profile(request):
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        _token, new_token = services.create_api_token(request.user, form.cleaned_data["name"])
        messages.success(request, _("Token created. Copy it now: it is shown only once."))
    return render(
        request,
        "accounts/profile.html",
        {"form": form, "new_token": new_token, "tokens": request.user.api_tokens.all()},
    )


@require_POST
@login_required
def revoke_token(request, token_id: int):
    if services.revoke_api_token(request.user, token_id):
        messages.info(request, _("Token revoked."))
    return redirect("profile")


@area_required("cohorts")
def cohorts(request):
    user = request.user
    create_form = CohortForm(prefix="create")
    join_form = JoinCohortForm(prefix="join")
    if request.method == "POST":
        try:
            if "create-name" in request.POST and has_role(user, Role.TEACHER):
                create_form = CohortForm(request.POST, prefix="create")
                if create_form.is_valid():
                    cohort = services.create_cohort(user, create_form.cleaned_data["name"])
                    messages.success(request, _("Class created. Its code is %(code)s.") % {"code": cohort.join_code})
                    return redirect("cohorts")
            elif "join-code" in request.POST:
                join_form = JoinCohortForm(request.POST, prefix="join")
                if join_form.is_valid():
                    cohort = services.join_cohort(user, join_form.cleaned_data["code"])
                    messages.success(request, _("You joined %(name)s.") % {"name": cohort.name})
                    return redirect("cohorts")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    taught = Cohort.objects.filter(teacher=user).prefetch_related("students") if has_role(user, Role.TEACHER) else []
    return render(
        request,
        "accounts/cohorts.html",
        {
            "taught": taught,
            "joined": user.cohorts.select_related("teacher"),
            "create_form": create_form,
            "join_form": join_form,
            "is_teacher": has_role(user, Role.TEACHER),
            "is_student": user.role == Role.STUDENT,
        },
    )
