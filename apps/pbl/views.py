"""PBL studio pages. Thin: services decide; views render, and turn service errors into
messages on the page (nothing the user typed is lost: forms re-render with it)."""

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts import services as account_services
from apps.accounts.models import Cohort, Role
from apps.accounts.permissions import area_required, has_role
from apps.pbl import board, dashboard, deliverable, events, exams, milestones, present, replies, schema, services
from apps.pbl import editor as editor_forms
from apps.pbl.models import ChatMessage, Event, MilestoneSubmission, Project, ProjectRun, Team
from apps.pbl.orchestrator import THRESHOLD_HELP, thresholds_for
from apps.pbl.present import message_state


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _team(request, team_id: int) -> Team:
    team = get_object_or_404(Team.objects.select_related("run__project", "run__cohort"), pk=team_id)
    if not services.can_view_team(request.user, team):
        raise PermissionDenied("This is another team's workspace.")
    return team


def _teacher_run(request, run_id: int) -> ProjectRun:
    run = get_object_or_404(ProjectRun.objects.select_related("project", "cohort"), pk=run_id)
    services.require_run_teacher(request.user, run)
    return run


@area_required("pbl")
def index(request):
    user = request.user
    if request.method == "POST" and "join-code" in request.POST:
        try:
            cohort = account_services.join_cohort(user, request.POST["join-code"])
            messages.success(request, f"You joined {cohort.name}.")
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, _errors(exc) if isinstance(exc, ValidationError) else str(exc))
        return redirect("pbl:index")
    if has_role(user, Role.TEACHER):
        return render(
            request,
            "pbl/teacher_index.html",
            {
                "projects": services.teacher_projects(user),
                "runs": services.teacher_runs(user).prefetch_related("teams"),
                "cohorts": Cohort.objects.all() if user.role == Role.ADMIN else user.taught_cohorts.all(),
            },
        )
    runs = []
    for run in services.student_runs(user):
        runs.append({"run": run, "team": services.learner_team(user, run), "exams": exams.exam_summary(run, user)})
    return render(request, "pbl/student_index.html", {"runs": runs, "cohorts": user.cohorts.all()})


# ---- teacher: projects ---------------------------------------------------------------------


@area_required("pbl")
@require_POST
def project_import(request):
    if not has_role(request.user, Role.TEACHER):
        raise PermissionDenied("Only teachers author projects.")
    upload = request.FILES.get("file")
    raw = upload.read(schema.MAX_PROJECT_BYTES + 1) if upload else request.POST.get("json", "").encode()
    try:
        project = services.create_project(request.user, schema.parse_project_json(raw))
    except ValidationError as exc:
        messages.error(request, f"The project was not imported: {_errors(exc)}")
        return redirect("pbl:index")
    messages.success(request, f"Imported “{project.title}”.")
    return redirect("pbl:project_edit", project_id=project.pk)


SECTIONS = [
    (
        "stages",
        "Stages",
        "Each stage: its key (used in the rubric rows), the deliverable and the task text.",
        "Add a stage",
    ),
    (
        "criteria",
        "Milestones and rubric",
        "One row per criterion. Rows with the same stage and milestone keys form one milestone.",
        "Add a rubric row",
    ),
    ("resources", "Resources", "Texts the agents ground their replies in (and cite).", "Add a resource"),
    (
        "agents",
        "Agents",
        "Role, persona, what each may and must not do, and how strictly it holds back.",
        "Add an agent",
    ),
    (
        "questions",
        "Exams",
        "Pre and post questions: multiple choice, or short answers marked by keywords.",
        "Add a question",
    ),
]


def _editor_page(request, editor: editor_forms.Editor, project: Project | None, **extra):
    sections = [
        {"kind": kind, "formset": editor.formsets[kind], "title": title, "help": help_text, "add": add}
        for kind, title, help_text, add in SECTIONS
    ]
    context = {
        "project": project,
        "editor": editor,
        "sections": sections,
        "error": editor.error,
        "row_url": reverse("pbl:editor_row"),
        **extra,
    }
    if project is not None:
        context.setdefault("json_text", json.dumps(schema.export_project(project), indent=2, ensure_ascii=False))
    return render(request, "pbl/project_edit.html", context, status=422 if editor.error else 200)


@area_required("pbl")
def project_new(request):
    """A project built in the form editor, without JSON."""
    if not has_role(request.user, Role.TEACHER):
        raise PermissionDenied("Only teachers author projects.")
    if request.method == "POST":
        editor = editor_forms.Editor(request.POST)
        spec = editor.validated()
        if spec is not None:
            project = services.create_project(request.user, spec)
            messages.success(request, f"Created “{project.title}”.")
            return redirect("pbl:project_edit", project_id=project.pk)
        return _editor_page(request, editor, None)
    return _editor_page(request, editor_forms.Editor(), None)


@area_required("pbl")
def project_edit(request, project_id: int):
    project = get_object_or_404(Project, pk=project_id)
    services.require_project_owner(request.user, project)
    if request.method == "POST" and "editor" in request.POST:
        editor = editor_forms.Editor(request.POST)
        spec = editor.validated()
        if spec is not None:
            services.update_project(request.user, project, spec)
            messages.success(request, "Project saved.")
            return redirect("pbl:project_edit", project_id=project.pk)
        return _editor_page(request, editor, project)
    if request.method == "POST":
        text = request.POST.get("json", "")
        try:
            services.update_project(request.user, project, schema.parse_project_json(text.encode()))
        except ValidationError as exc:
            # The text the teacher typed stays in the editor.
            return _editor_page(
                request,
                editor_forms.Editor(
                    spec=project.spec | {"title": project.title, "driving_question": project.driving_question}
                ),
                project,
                json_text=text,
                json_error=_errors(exc),
            )
        messages.success(request, "Project saved.")
        return redirect("pbl:project_edit", project_id=project.pk)
    spec = project.spec | {"title": project.title, "driving_question": project.driving_question}
    return _editor_page(request, editor_forms.Editor(spec=spec), project)


@area_required("pbl")
def editor_row(request):
    """One more blank row for a formset of the editor (htmx), and its new form count."""
    if not has_role(request.user, Role.TEACHER):
        raise PermissionDenied("Only teachers author projects.")
    kind = request.GET.get("kind", "")
    if kind not in editor_forms.FORMSETS:
        raise Http404("No such part of the editor.")
    try:
        index = max(0, min(200, int(request.GET.get(f"{kind}-TOTAL_FORMS", "0"))))
    except ValueError:
        index = 0
    form = editor_forms.FORMSETS[kind].form(
        prefix=f"{kind}-{index}", empty_permitted=True, use_required_attribute=False
    )
    return render(
        request, "pbl/editor_rows.html#new-row", {"kind": kind, "index": index, "form": form, "total": index + 1}
    )


@area_required("pbl")
def project_export(request, project_id: int):
    project = get_object_or_404(Project, pk=project_id)
    services.require_project_owner(request.user, project)
    response = HttpResponse(
        json.dumps(schema.export_project(project), indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="pbl-project-{project.pk}.json"'
    return response


# ---- teacher: runs --------------------------------------------------------------------------


@area_required("pbl")
@require_POST
def run_create(request):
    project = get_object_or_404(Project, pk=request.POST.get("project") or 0)
    cohort = get_object_or_404(Cohort, pk=request.POST.get("cohort") or 0)
    run = services.create_run(request.user, project, cohort)
    messages.success(request, f"“{project.title}” is ready for {cohort.name}. Form teams, then open it.")
    return redirect("pbl:run_manage", run_id=run.pk)


@area_required("pbl")
def run_manage(request, run_id: int):
    run = _teacher_run(request, run_id)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action in ("open", "closed"):
                services.set_run_status(request.user, run, action)
                messages.success(request, "The project is open." if action == "open" else "The project is closed.")
            elif action == "teams":
                teams = services.form_teams(request.user, run, int(request.POST.get("size") or 3))
                messages.success(request, f"{len(teams)} new team(s) formed.")
            elif action == "thresholds":
                services.set_thresholds(request.user, run, request.POST)
                messages.success(request, "Thresholds saved.")
        except (ValidationError, ValueError) as exc:
            messages.error(request, _errors(exc) if isinstance(exc, ValidationError) else str(exc))
        return redirect("pbl:run_manage", run_id=run.pk)
    thresholds = thresholds_for(run)
    return render(
        request,
        "pbl/run_manage.html",
        {
            "run": run,
            "teams": run.teams.prefetch_related("members"),
            "unplaced": run.cohort.students.exclude(pbl_teams__run=run),
            "thresholds": [(key, value, THRESHOLD_HELP[key]) for key, value in thresholds.items()],
        },
    )


@area_required("pbl")
def run_dashboard(request, run_id: int):
    run = _teacher_run(request, run_id)
    team_id = request.GET.get("team", "")
    filters = {
        "team": int(team_id) if team_id.isdigit() else None,
        "learner": request.GET.get("learner", "")[:150],
        "verb": request.GET.get("verb", "")[:40],
    }
    data = dashboard.dashboard_data(run, filters["team"], filters["learner"], filters["verb"])
    return render(
        request,
        "pbl/dashboard.html",
        {
            **data,
            "plots": dashboard.plots(data),
            "transcripts": dashboard.transcripts(run, filters["team"]),
            "query": request.GET.urlencode(),
        },
    )


@area_required("pbl")
def run_events(request, run_id: int, fmt: str):
    run = _teacher_run(request, run_id)
    if fmt == "csv":
        return present.events_csv_download(run)
    if fmt != "xapi":
        raise Http404
    body = json.dumps([events.xapi_statement(e) for e in present.run_events(run)], indent=1, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="pbl-run-{run.pk}-xapi.json"'
    return response


@area_required("pbl")
@require_POST
def submission_override(request, submission_id: int):
    submission = get_object_or_404(MilestoneSubmission.objects.select_related("team__run__cohort"), pk=submission_id)
    try:
        milestones.override_submission(
            request.user, submission, request.POST.get("verdict", ""), request.POST.get("note", "")
        )
        messages.success(request, "Verdict overridden.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("pbl:run_dashboard", run_id=submission.team.run_id)


# ---- students --------------------------------------------------------------------------------


@area_required("pbl")
def run_student(request, run_id: int):
    run = get_object_or_404(ProjectRun.objects.select_related("project", "cohort"), pk=run_id)
    if not run.cohort.students.filter(pk=request.user.pk).exists():
        raise PermissionDenied("This project belongs to another class.")
    if request.method == "POST":
        try:
            team = services.join_team(request.user, run, request.POST.get("team", ""))
            messages.success(request, f"You are in team {team.name}.")
        except ValidationError as exc:
            messages.error(request, _errors(exc))
        return redirect("pbl:run_student", run_id=run.pk)
    return render(
        request,
        "pbl/run_student.html",
        {
            "run": run,
            "team": services.learner_team(request.user, run),
            "teams": run.teams.prefetch_related("members"),
            "exams": exams.exam_summary(run, request.user),
        },
    )


@area_required("pbl")
def exam(request, run_id: int, kind: str):
    run = get_object_or_404(ProjectRun.objects.select_related("project", "cohort"), pk=run_id)
    if not run.cohort.students.filter(pk=request.user.pk).exists():
        raise PermissionDenied("This exam belongs to another class.")
    if kind not in ("pre", "post"):
        raise Http404
    questions = exams.exam_questions(run, kind)
    answers: dict = {}
    if request.method == "POST":
        answers = {q["key"]: request.POST.get(q["key"], "") for q in questions}
        try:
            attempt = exams.submit_exam(request.user, run, kind, answers)
            messages.success(request, f"{kind.capitalize()}-exam done: {attempt.score:g} of {attempt.max_score:g}.")
            return redirect("pbl:run_student", run_id=run.pk)
        except ValidationError as exc:
            messages.error(request, _errors(exc))
    return render(request, "pbl/exam.html", {"run": run, "kind": kind, "questions": questions, "answers": answers})


@area_required("pbl")
def workspace(request, team_id: int):
    team = _team(request, team_id)
    state = present.workspace_state(request.user, team)
    versions = deliverable.document_versions(team)[:15]
    last_id = state["chat_messages"][-1].pk if state["chat_messages"] else 0
    return render(
        request,
        "pbl/workspace.html",
        {
            **state,
            "versions": versions,
            "last_message_id": last_id,
            "is_member": team.members.filter(pk=request.user.pk).exists(),
        },
    )


@area_required("pbl")
@require_POST
def post_message(request, team_id: int):
    team = _team(request, team_id)
    try:
        services.post_message(request.user, team, request.POST.get("text", ""))
    except ValidationError as exc:
        # The typed text stays in the box (the form is not reset on errors).
        return render(request, "pbl/workspace.html#chat-error", {"error": _errors(exc)}, status=422)
    return render(request, "pbl/workspace.html#chat-error", {"error": ""})


@area_required("pbl")
def message_fragment(request, message_id: int):
    message = get_object_or_404(ChatMessage.objects.select_related("team__run", "author", "job"), pk=message_id)
    _team(request, message.team_id)
    return render(request, "pbl/workspace.html#message", {"m": message, "state": message_state(message)})


MESSAGE_ACTIONS = {
    "cancel": lambda user, message: replies.cancel_reply(user, message),
    "retry": lambda user, message: replies.retry_reply(user, message),
    "helpful": lambda user, message: replies.rate_reply(user, message, True),
    "not-helpful": lambda user, message: replies.rate_reply(user, message, False),
}


@area_required("pbl")
@require_POST
def message_action(request, message_id: int):
    """Cancel, retry or rate an agent's reply; htmx swaps the bubble with the answer."""
    message = get_object_or_404(
        ChatMessage.objects.select_related("team__run__project", "team__run__cohort", "author", "job"), pk=message_id
    )
    _team(request, message.team_id)
    action = MESSAGE_ACTIONS.get(request.POST.get("action", ""))
    if action is None:
        raise Http404
    error = ""
    try:
        message = action(request.user, message)
    except ValidationError as exc:
        error = _errors(exc)
    message = ChatMessage.objects.select_related("team__run", "author", "job").get(pk=message.pk)
    return render(request, "pbl/workspace.html#message", {"m": message, "action_error": error})


@area_required("pbl")
@require_POST
def task_action(request, team_id: int):
    """The task board's one form handler: add, move, edit (title, assignee) or delete. htmx
    swaps the board alone with the result (errors shown on the board); plain posts redirect."""
    team = _team(request, team_id)
    post, user, error = request.POST, request.user, ""
    try:
        task_id = int(post["task"]) if post.get("task") else None
        op = post.get("op") or ("move" if task_id else "add")
        if op == "add":
            board.add_task(user, team, post.get("title", ""))
        elif task_id is None:
            raise ValidationError("Which task?")
        elif op == "move":
            board.move_task(user, team, task_id, post.get("status", ""))
        elif op == "edit":
            board.edit_task(user, team, task_id, title=post.get("title"), assignee=post.get("assignee"))
        elif op == "delete":
            board.delete_task(user, team, task_id)
        else:
            raise ValidationError(f"Unknown task action {op!r}.")
    except (ValidationError, ValueError) as exc:
        error = _errors(exc) if isinstance(exc, ValidationError) else "That task number is not valid."
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("pbl:workspace", team_id=team.pk)
    state = present.workspace_state(user, team)
    state.pop("chat_messages")
    # 200 even for an error: htmx 2 does not swap 4xx answers, and the board shows the error itself.
    return render(request, "pbl/workspace.html#task-board", {**state, "board_error": error})


@area_required("pbl")
@require_POST
def submit_milestone(request, team_id: int):
    team = _team(request, team_id)
    try:
        milestones.submit_milestone(request.user, team, request.POST.get("milestone", ""))
        messages.success(request, "Submitted: the judge is reading your work. Feedback appears in the chat.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    return redirect("pbl:workspace", team_id=team.pk)


@area_required("pbl")
def summary(request, team_id: int):
    team = _team(request, team_id)
    user = request.user
    mine = Event.objects.filter(run=team.run, actor=user)
    scaffolds = Event.objects.filter(run=team.run, verb="scaffolded", result__for=user.username).order_by("timestamp")
    counts = {
        verb: mine.filter(verb=verb).count()
        for verb in ["posted", "requested-help", "edited", "copied", "submitted", "off-task"]
    }
    return render(
        request,
        "pbl/summary.html",
        {
            "team": team,
            "run": team.run,
            "state": {k: v for k, v in present.workspace_state(user, team).items() if k != "chat_messages"},
            "counts": counts,
            "scaffolds": scaffolds,
            "refusals": Event.objects.filter(
                run=team.run, verb__in=["refused", "downgraded"], result__to=user.username
            ).count(),
            "exams": exams.exam_summary(team.run, user),
        },
    )
