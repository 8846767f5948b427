from datetime import datetime
from typing import Any

from ninja import Router, Schema

from apps.accounts.api_area import area_auth
from apps.jobs import services
from apps.jobs.views import get_visible_job

router = Router(tags=["jobs"], auth=area_auth("jobs"))


class JobOut(Schema):
    id: int
    kind: str
    status: str
    progress: float
    progress_message: str
    queue_position: int | None
    estimated_wait_seconds: float | None
    attempts: int
    result: Any | None
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def job_out(job) -> dict:
    wait = services.queue_wait(job)
    return {
        **{
            field: getattr(job, field)
            for field in JobOut.model_fields
            if field not in {"queue_position", "estimated_wait_seconds"}
        },
        "queue_position": wait.position if wait else None,
        "estimated_wait_seconds": wait.estimated_seconds if wait else None,
    }


@router.get("/jobs/{int:job_id}", response=JobOut)
def get_job(request, job_id: int):
    return job_out(get_visible_job(request.auth, job_id))


@router.post("/jobs/{int:job_id}/cancel", response=JobOut)
def cancel_job(request, job_id: int):
    return job_out(services.cancel_job(get_visible_job(request.auth, job_id)))
