import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import area_required, can_view_owned, has_role
from apps.kbqa import kopl, present, services, summary
from apps.kbqa.models import KBImport, ParserEvaluation, ParserModel, Question

ENTITIES_PER_PAGE = 25
HISTORY = 30
MAX_EDITED_STEPS = kopl.MAX_PROGRAM_STEPS
PARSER_ROLES = ("researcher", "admin")


@area_required("kbqa")
def index(request):
    """Ask a question on a KB; the history of the user's questions."""
    kbs = list(services.list_kbs())
    chosen = next((kb for kb in kbs if kb.name == request.GET.get("kb")), None) or summary.default_kb(kbs)
    if request.method == "POST":
        kb = get_object_or_404(services.list_kbs(), name=request.POST.get("kb", ""))
        try:
            question = services.ask(request.user, kb, request.POST.get("question", ""))
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
            return redirect(f"{request.path}?kb={kb.name}")
        return redirect("kbqa:question", question_id=question.pk)
    history = list(
        Question.objects.filter(owner=request.user).select_related("kb", "job").defer("kb__data", "parse")[:HISTORY]
    )
    for item in history:
        item.title = present.question_title(item)
    context = {
        "kbs": kbs,
        "chosen": chosen,
        "history": history,
        "examples": summary.kb_summary(chosen)["examples"] if chosen else [],
        "parser": services.ready_parser(),
    }
    return render(request, "kbqa/ask.html", context)


def owned_question(request, question_id: int) -> Question:
    questions = Question.objects.select_related("kb", "job", "draft_job", "parser__source_kb")
    # The KB's content is only needed to run a program, and the engine cache has it.
    question = get_object_or_404(questions.defer("kb__data", "parser__dataset", "parser__classifier"), pk=question_id)
    if not can_view_owned(request.user, question.owner_id):
        raise Http404("No such question.")
    return question


def question_context(question: Question) -> dict:
    data = services.question_json(question)
    candidates = data["candidates"]
    steps = data["steps"]
    rows = []
    for index, step in enumerate(question.program):
        spec = kopl.FUNCTIONS.get(step.get("function"))
        inputs = list(step.get("inputs", []))
        arity = len(spec.args) if spec else len(inputs)
        rows.append(
            {
                "index": index,
                "step": step,
                "outcome": steps[index] if index < len(steps) else None,
                "candidates": candidates[index] if index < len(candidates) else None,
                "roles": spec.args if spec else (),
                "input_fields": (inputs + [""] * 3)[: max(arity, len(inputs), 1)],
                "dependencies": ",".join(str(d) for d in step.get("dependencies", [])),
            }
        )
    return {
        "question": question,
        "title": present.question_title(question),
        "data": data,
        "rows": rows,
        "graph": present.program_graph(question.program, steps),
        "functions": sorted(kopl.FUNCTIONS),
        "program_json": json.dumps(question.program, ensure_ascii=False, indent=1),
        "cut_pct": round(100 * data["pruning"].get("cut", 0)),
        "answer_items": answer_items(data["answer"]),
        "alternatives": [
            {
                **alt,
                "text": present.program_text(alt.get("program") or []),
                "answer_items": answer_items(alt.get("answer")),
            }
            for alt in data["alternatives"]
        ],
    }


def answer_items(answer) -> list[str] | None:
    """An answer as a list of strings to show: names and values are lists already; a count, a
    verdict or one selected name is a single item."""
    if answer is None:
        return None
    return [str(item) for item in answer] if isinstance(answer, list) else [str(answer)]


@area_required("kbqa")
def question_detail(request, question_id: int):
    question = owned_question(request, question_id)
    # htmx keeps the page as it is and polls again while what it waits for is still coming: the
    # parser's answer (poll=1), or, with the answer shown, the assistant's draft (poll=draft).
    poll = request.GET.get("poll")
    if poll and question.status == Question.Status.PENDING:
        return HttpResponse(status=204)
    if poll == "draft" and question.draft_status == Question.DraftStatus.PENDING:
        return HttpResponse(status=204)
    context = question_context(question)
    if request.htmx:
        return render(request, "kbqa/question.html#question-body", context)
    return render(request, "kbqa/question.html", context)


def edited_program(post) -> list:
    """The program from the edit form: either the JSON box or one row of fields per step."""
    if post.get("mode") == "json":
        try:
            program = json.loads(post.get("program_json", ""))
        except json.JSONDecodeError as exc:
            raise ValidationError(f"The program is not valid JSON: {exc.msg} (line {exc.lineno}).") from None
        if not isinstance(program, list):
            raise ValidationError("The program must be a JSON list of steps.")
        return program
    program = []
    for index in range(MAX_EDITED_STEPS):
        function = post.get(f"function_{index}")
        if function is None:
            break
        if post.get(f"delete_{index}"):
            continue
        deps_text = post.get(f"dependencies_{index}", "").replace(" ", "")
        try:
            dependencies = [int(d) for d in deps_text.split(",") if d]
        except ValueError:
            raise ValidationError(f"Step {index}: dependencies must be step numbers separated by commas.") from None
        inputs = [value.strip() for value in post.getlist(f"inputs_{index}") if value.strip()]
        program.append({"function": function, "dependencies": dependencies, "inputs": inputs})
    if not program:
        raise ValidationError("The program has no steps.")
    return program


@area_required("kbqa")
@require_POST
def question_rerun(request, question_id: int):
    question = owned_question(request, question_id)
    try:
        program = edited_program(request.POST)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("kbqa:question", question_id=question.pk)
    edited = services.rerun(request.user, question, program)
    if edited.error:
        messages.error(request, edited.error)
    return redirect("kbqa:question", question_id=edited.pk)


@area_required("kbqa")
def parsers(request):
    """Trained sketch parsers, their training metrics and in-KB / transfer evaluations."""
    may_train = has_role(request.user, *PARSER_ROLES)
    if request.method == "POST":
        if not may_train:
            raise PermissionDenied("Only researchers and admins can train or evaluate parsers.")
        try:
            if request.POST.get("action") == "train":
                kb = get_object_or_404(services.list_kbs(), name=request.POST.get("source", ""))
                services.request_training(request.user, kb, int(request.POST.get("pairs") or 2400))
                messages.success(request, f"Training a sketch parser on {kb.name}.")
            else:
                parser = get_object_or_404(ParserModel.objects.ready(), pk=request.POST.get("parser") or 0)
                targets = request.POST.getlist("targets")
                services.request_evaluation(request.user, parser, targets, int(request.POST.get("pairs") or 200))
                messages.success(request, "Evaluation started.")
        except (ValidationError, ValueError) as exc:
            messages.error(request, exc.messages[0] if isinstance(exc, ValidationError) else str(exc))
        return redirect("kbqa:parsers")
    # Neither the training set, the classifier nor the KB's content is shown: a KB is megabytes.
    parser_list = ParserModel.objects.select_related("source_kb", "job").defer(
        "dataset", "classifier", "source_kb__data"
    )[:20]
    evaluations = ParserEvaluation.objects.select_related("parser__source_kb", "job").defer(
        "parser__dataset", "parser__classifier", "parser__source_kb__data"
    )[:10]
    context = {
        "parsers": parser_list,
        "evaluations": [{"evaluation": e, "rows": present.evaluation_rows(e.results)} for e in evaluations],
        "kbs": services.list_kbs(),
        "may_train": may_train,
    }
    return render(request, "kbqa/parsers.html", context)


@area_required("kbqa")
def kb_list(request):
    """The KBs, and uploading one (imported by a worker job, so a big KB shows progress)."""
    limit = settings.KBQA_MAX_UPLOAD_BYTES
    if request.method == "POST":
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        upload = request.FILES.get("file")
        if length > limit:  # checked from the header, before the body is read
            messages.error(request, f"The upload is {length / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB.")
        elif upload is None:
            messages.error(request, "Choose a KoPL JSON file to import.")
        elif not upload.name.lower().endswith(".json"):
            messages.error(request, "A knowledge base is imported from a .json file in KoPL's format.")
        else:
            try:
                services.request_import(
                    request.user,
                    request.POST.get("name", ""),
                    request.POST.get("title", ""),
                    upload.name,
                    upload.read(),
                )
                messages.success(request, "Importing: the list below shows its progress and any problems found.")
            except ValidationError as exc:
                messages.error(request, exc.messages[0])
        return redirect("kbqa:kb_list")
    imports = KBImport.objects.filter(owner=request.user).select_related("job").defer("raw")[:10]
    context = {"kbs": services.list_kbs(), "imports": imports, "limit_mb": limit // (1024 * 1024)}
    return render(request, "kbqa/kb_list.html", context)


@area_required("kbqa")
def kb_detail(request, name: str):
    kb = services.list_kbs().filter(name=name).first()
    if kb is None:
        raise Http404("No such knowledge base.")
    query = request.GET.get("q", "")[:200]
    page = Paginator(summary.search_entities(kb, query), ENTITIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {"kb": kb, "query": query, "page": page}
    if request.htmx:  # the search box swaps in the entity table only
        return render(request, "kbqa/kb_detail.html#entities", context)
    return render(request, "kbqa/kb_detail.html", {**context, "schema": summary.kb_summary(kb)["schema"]})
