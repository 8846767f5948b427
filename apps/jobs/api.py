from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from ninja import Router, Schema, Status
from ninja.errors import HttpError

from apps.accounts.permissions import can_access_area
from apps.jobs import services
from apps.jobs.views import get_visible_job

router = Router(tags=["jobs"])


class JobOut(Schema):
    id: int
    kind: str
    status: str
    progress: float
    progress_message: str
    queue_position: int | None
    attempts: int
    result: Any | None
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class CountIn(Schema):
    n: int = 20
    delay: float = 0.2


def job_out(job) -> dict:
    return {
        **{field: getattr(job, field) for field in JobOut.model_fields if field not in {"queue_position"}},
        "queue_position": services.queue_position(job),
    }


def require_jobs_area(request) -> None:
    if not can_access_area(request.auth, "jobs"):
        raise HttpError(403, "Your role cannot run jobs.")


@router.get("/jobs/{int:job_id}", response=JobOut)
def get_job(request, job_id: int):
    require_jobs_area(request)
    return job_out(get_visible_job(request.auth, job_id))


@router.post("/jobs/count", response={201: JobOut})
def start_count_job(request, payload: CountIn):
    require_jobs_area(request)
    try:
        job = services.create_job(request.auth, "count", payload.dict())
    except ValidationError as exc:
        raise HttpError(422, " ".join(exc.messages)) from None
    return Status(201, job_out(job))


@router.post("/jobs/{int:job_id}/cancel", response=JobOut)
def cancel_job(request, job_id: int):
    require_jobs_area(request)
    return job_out(services.cancel_job(get_visible_job(request.auth, job_id)))
