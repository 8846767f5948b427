from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import area_required, can_view_owned
from apps.jobs import services
from apps.jobs.models import Job


def get_visible_job(user, job_id: int) -> Job:
    """Another user's job is a 404, not a 403: its existence is not revealed."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or not can_view_owned(user, job.owner_id):
        raise Http404("No such job")
    return job


@area_required("jobs")
def job_list(request):
    jobs = Job.objects.filter(owner=request.user)[:50]
    return render(request, "jobs/job_list.html", {"jobs": jobs})


@area_required("jobs")
def job_detail(request, job_id: int):
    job = get_visible_job(request.user, job_id)
    return render(request, "jobs/job_detail.html", {"job": job, "wait": services.queue_wait(job)})


@require_POST
@area_required("jobs")
def job_cancel(request, job_id: int):
    job = services.cancel_job(get_visible_job(request.user, job_id))
    if request.htmx:
        return render(request, "jobs/job_detail.html#job-status", {"job": job})
    return redirect("job_detail", job_id=job.pk)
