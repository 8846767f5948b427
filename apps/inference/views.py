from django.http import Http404
from django.shortcuts import render

from apps.accounts.permissions import area_required
from apps.inference import services
from apps.inference.backends import InferenceError
from apps.inference.forms import PlaygroundForm
from apps.inference.models import Generation
from apps.jobs.services import queue_wait


def recent_generations(user) -> list[Generation]:
    return list(Generation.objects.filter(job__owner=user).select_related("job").order_by("-job__created_at")[:10])


@area_required("playground")
def playground(request):
    form = PlaygroundForm(request.POST or None)
    generation = None
    error = None
    if request.method == "POST" and form.is_valid():
        try:
            job = services.request_generation(request.user, **form.request_kwargs())
        except (InferenceError, ValueError) as exc:
            error = str(exc)
        else:
            generation = job.generation
    context = {
        "form": form,
        "generation": generation,
        "job": generation.job if generation else None,
        "wait": queue_wait(generation.job) if generation else None,
        "error": error,
        "models": services.model_statuses(),
        "history": recent_generations(request.user),
    }
    if request.htmx:
        return render(request, "inference/playground.html#playground-result", context)
    return render(request, "inference/playground.html", context)


@area_required("playground")
def generation_detail(request, job_id: int):
    generation = services.visible_generation(request.user, job_id)
    if generation is None:
        raise Http404("No such generation")
    return render(
        request,
        "inference/generation_detail.html",
        {"generation": generation, "job": generation.job, "wait": queue_wait(generation.job)},
    )


@area_required("models")
def model_list(request):
    return render(request, "inference/models.html", {"models": services.model_statuses()})
