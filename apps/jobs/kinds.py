"""The job contract: every kind of background work, its queue and its Celery task, in one registry.

Each app registers its kinds in its `AppConfig.ready()` (apps/<app>/apps.py) and writes their
Celery tasks in apps/<app>/tasks.py, which Celery discovers. A kind is named
"<app label>.<action>" and its task carries the same name, so a Job row's kind leads to the
app, to the queue (its apps.py) and to the task (its tasks.py). Celery routes every task to its
queue from here (`route_task`, the CELERY_TASK_ROUTES router), so no caller passes `queue=`.

This module imports no models: apps.py files import it at start-up."""

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

# interactive: answers someone waits for; batch: long research work; cpu: sandbox runs, imports,
# periodic work. Each has its own workers, so interactive work never waits behind batch work.
QUEUES = ("interactive", "batch", "cpu")
NAME_STYLE = re.compile(r"^[a-z][a-z0-9]*\.[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class JobKind:
    name: str  # "<app label>.<action>", also the name of its Celery task
    queue: str
    # Dotted path of the function that checks and normalizes params a user typed (raising
    # ValidationError). None: params built by the app's own service are taken as they are. A path,
    # not the function, so that registering a kind imports nothing heavy at start-up.
    clean_params: str | None = None
    # A job of this kind that works in links (ends after this many seconds and queues the next)
    # holds its worker no longer than that, whatever its whole work takes: queue waits use it.
    runs_at_most: float | None = None
    # What the job list and job pages call it (a lazily translated string); the name otherwise.
    label: str = ""

    def clean(self, params: dict) -> dict:
        if self.clean_params is None:
            return dict(params)
        cleaner: Callable[[dict], dict] = import_string(self.clean_params)
        return cleaner(params)


JOB_KINDS: dict[str, JobKind] = {}
# Every routed Celery task, job kinds and plain tasks (periodic work, triggers) alike: name -> queue.
TASK_QUEUES: dict[str, str] = {}


def _check(name: str, queue: str) -> None:
    if not NAME_STYLE.match(name):
        raise ImproperlyConfigured(f"Task or job kind {name!r} is not named '<app label>.<action>'.")
    if queue not in QUEUES:
        raise ImproperlyConfigured(f"{name!r} names the queue {queue!r}; the queues are {', '.join(QUEUES)}.")
    if TASK_QUEUES.get(name, queue) != queue:
        raise ImproperlyConfigured(f"{name!r} is registered twice, on {TASK_QUEUES[name]!r} and {queue!r}.")


def register_job_kinds(*kinds: JobKind) -> None:
    """Called from an app's AppConfig.ready(); registering the same kind again changes nothing."""
    for kind in kinds:
        _check(kind.name, kind.queue)
        if JOB_KINDS.get(kind.name, kind) != kind:
            raise ImproperlyConfigured(f"Job kind {kind.name!r} is registered twice, differently.")
        JOB_KINDS[kind.name] = kind
        TASK_QUEUES[kind.name] = kind.queue


def register_tasks(queue: str, *names: str) -> None:
    """Celery tasks that are not job kinds (no Job row: periodic work, fire-and-forget triggers)."""
    for name in names:
        _check(name, queue)
        TASK_QUEUES[name] = queue


def route_task(name: str, args, kwargs, options, task=None, **_kw) -> dict | None:
    """Celery router (CELERY_TASK_ROUTES): the queue each registered task was given."""
    queue = TASK_QUEUES.get(name)
    return {"queue": queue} if queue else None
