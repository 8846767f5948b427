"""Atrium settings. Everything that varies between machines comes from the environment, here."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.env import env_bool, env_float, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ATRIUM_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)
# The fallback key is only for local development; production must set SECRET_KEY.
SECRET_KEY = env_secret("SECRET_KEY", "dev-insecure-atrium-key-change-me" if DEBUG else None)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "template_partials",
    "channels",
    "apps.core",
    "apps.accounts",
    "apps.jobs",
    "apps.inference",
    "apps.tables",
    "apps.kbqa",
    "apps.pbl",
    "apps.lingualens",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",  # request.htmx: is this an htmx request, which target
]

ROOT_URLCONF = "config.urls"
FORM_RENDERER = "apps.core.form_renderer.FastWidgetRenderer"  # plain widgets written out in Python
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.context_processors.navigation",
            ],
        },
    },
]

# Database: PostgreSQL only. `python -m config.run` sets DATABASE_URL to an
# embedded server when none is given.
DATABASE_URL = env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/atrium")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
except (ValueError, KeyError) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must be a postgresql:// URL (Atrium runs on PostgreSQL only)")
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME", "test_atrium")}
# A pool of connections per process (psycopg_pool). Under ASGI each request runs its view in a
# thread of its own, so Django's persistent connections (CONN_MAX_AGE) cannot be reused there and
# each request would open a new PostgreSQL connection (a server process fork: a few ms of CPU
# per page). The web server (config/web.py) turns it on; workers and tests keep plain connections.
DB_POOL_SIZE = env_int("DB_POOL_SIZE", 0, minimum=0)
if DB_POOL_SIZE:
    if DATABASES["default"].get("CONN_MAX_AGE"):
        raise ImproperlyConfigured("DB_POOL_SIZE and DB_CONN_MAX_AGE cannot both be set")
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": DB_POOL_SIZE, "timeout": 10}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: Celery broker, results and the Channels layer. A unix:// URL is what the
# embedded Redis gives.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://")


def _celery_redis_url(url: str) -> str:
    # kombu spells a unix socket "redis+socket://"; redis-py and channels-redis spell it "unix://".
    return "redis+socket://" + url.removeprefix("unix://") if url.startswith("unix://") else url


CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 times reads out after 5 s by default, exactly channels-redis' blocking-pop
            # wait: an idle socket would die. Reads may wait longer than that pop.
            "hosts": [{"address": REDIS_URL, "socket_timeout": env_int("REDIS_SOCKET_TIMEOUT", 30, minimum=10)}],
            # Tokens are batched, but a slow browser must still not lose messages
            # (channels-redis drops them silently past capacity).
            "capacity": env_int("CHANNEL_CAPACITY", 1000, minimum=100),
            "expiry": 60,
            "prefix": env_str("CHANNEL_PREFIX", "atrium"),
        },
    }
}

CELERY_BROKER_URL = _celery_redis_url(REDIS_URL)
CELERY_RESULT_BACKEND = None  # Job rows in Postgres hold results; Celery's own results are not used.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# Queues: `interactive` (answers someone waits for: chat, table answers, agent replies, judge,
# search, steering), `batch` (SAE training, scoring, parser training, evaluations) and `cpu`
# (sandbox runs, imports, the sweeper), each with its own workers, so interactive work never
# waits behind batch work. Each job kind states its queue once, in its app's AppConfig.ready()
# (apps.jobs.kinds); this router sends every task there.
CELERY_TASK_ROUTES = ("apps.jobs.kinds.route_task",)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # How long an unacknowledged task waits before Redis hands it to another worker
    # when its worker vanished entirely.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    "global_keyprefix": env_str("CELERY_KEY_PREFIX", ""),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Worker processes per queue (the Procfile's -c): queue wait estimates divide by them.
QUEUE_WORKERS = {
    "interactive": env_int("INTERACTIVE_WORKERS", 3, minimum=1),
    "batch": env_int("BATCH_WORKERS", 1, minimum=1),
    "cpu": env_int("CPU_WORKERS", 2, minimum=1),
}
JOB_STALE_AFTER_SECONDS = env_int("JOB_STALE_AFTER_SECONDS", 300, minimum=10)
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3, minimum=1)

CACHES = {"default": {"BACKEND": "config.cache.SharedClientRedisCache", "LOCATION": REDIS_URL}}

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("简体中文"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Serve straight from the source folders so no collectstatic step is needed to run.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = VAR_DIR / "media"
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("UPLOAD_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

SESSION_COOKIE_HTTPONLY = True
# Sessions are read from Redis on each request and written through to PostgreSQL (one query less per page).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie; kept default-compatible.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Models (see apps.inference): where converted weights live and which device workers use.
MODELS_DIR = Path(env_str("ATRIUM_MODELS_DIR", str(VAR_DIR / "models")))
MODEL_DEVICE = env_str("MODEL_DEVICE", "cpu")
# torch's CPU threads in a model worker; 0 = torch's default (one per core).
MODEL_THREADS = env_int("MODEL_THREADS", 0, minimum=0)
# The assistant model (apps.inference.registry): served by llama.cpp on loopback (`make up` runs
# apps.inference.serve), or by any OpenAI-compatible server (vLLM) when OPENAI_BASE_URL is set.
ASSISTANT_MODEL_NAME = env_str("ASSISTANT_MODEL_NAME", "qwen2.5-coder-1.5b")
ASSISTANT_CONTEXT_LENGTH = env_int("ASSISTANT_CONTEXT_LENGTH", 4096, minimum=512)  # tokens per slot
LLAMA_SERVER_HOST = env_str("LLAMA_SERVER_HOST", "127.0.0.1")
LLAMA_SERVER_PORT = env_int("LLAMA_SERVER_PORT", 8091, minimum=1)
LLAMA_SERVER_URL = f"http://{LLAMA_SERVER_HOST}:{LLAMA_SERVER_PORT}/v1"
# Parallel slots of the llama.cpp server, and CPU threads per slot (one per slot suits 2 cores).
LLAMA_PARALLEL = env_int("LLAMA_PARALLEL", 4, minimum=1)
LLAMA_THREADS_PER_SLOT = env_int("LLAMA_THREADS_PER_SLOT", 1, minimum=1)
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL", "")
OPENAI_API_KEY = env_secret("OPENAI_API_KEY", "")
OPENAI_MODEL = env_str("OPENAI_MODEL", "")
# Which model plays each role; the assistant is the served model above unless set.
MODEL_ROLE_ASSISTANT = env_str("MODEL_ROLE_ASSISTANT", "")
MODEL_ROLE_LENS = env_str("MODEL_ROLE_LENS", "gemma3-270m")
MODEL_ROLE_SMALL = env_str("MODEL_ROLE_SMALL", "smollm2-135m")
DEFAULT_CHAT_MODEL = env_str("DEFAULT_CHAT_MODEL", MODEL_ROLE_ASSISTANT or ASSISTANT_MODEL_NAME)
ATRIUM_EXTRA_MODELS = env_str("ATRIUM_EXTRA_MODELS", "")
TABLES_MAX_UPLOAD_BYTES = env_int("TABLES_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, minimum=1024)
# Code candidates sampled per table question (sent at once to the assistant's parallel slots).
TABLES_CANDIDATES = env_int("TABLES_CANDIDATES", 3, minimum=1)
KBQA_MAX_UPLOAD_BYTES = env_int("KBQA_MAX_UPLOAD_BYTES", 100 * 1024 * 1024, minimum=1024)
LINGUALENS_MAX_CORPUS_BYTES = env_int("LINGUALENS_MAX_CORPUS_BYTES", 5 * 1024 * 1024, minimum=1024)
STREAM_BATCH_SECONDS = env_float("STREAM_BATCH_SECONDS", 0.05)

# The production web server (python -m config.web): uvicorn worker processes sharing one socket.
WEB_PROCESSES = env_int("WEB_PROCESSES", os.cpu_count() or 1, minimum=1)
# Threads per web process that run synchronous views (config/http_threads.py). Each holds at most one
# database connection at a time (from the process's pool when DB_POOL_SIZE is set).
WEB_THREADS = env_int("WEB_THREADS", 4, minimum=1)
FORWARDED_ALLOW_IPS = env_str("FORWARDED_ALLOW_IPS", "127.0.0.1")  # proxies whose X-Forwarded-* are believed
WEB_ACCESS_LOG = env_bool("WEB_ACCESS_LOG", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# PBL studio (apps.pbl): reply sizes and the orchestrator's pace (agents use the assistant role).
PBL_AGENT_MAX_TOKENS = env_int("PBL_AGENT_MAX_TOKENS", 120, minimum=16)
PBL_JUDGE_MAX_TOKENS = env_int("PBL_JUDGE_MAX_TOKENS", 80, minimum=16)
# A reply still queued after this long is shown as "agent unavailable" (the model worker is down or busy).
PBL_AGENT_UNAVAILABLE_AFTER_SECONDS = env_float("PBL_AGENT_UNAVAILABLE_AFTER_SECONDS", 8.0)
PBL_ORCHESTRATOR_SECONDS = env_float("PBL_ORCHESTRATOR_SECONDS", 30.0)

# Periodic work (celery beat), in one place, each pace from its setting above.
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-jobs": {"task": "jobs.sweep_stale", "schedule": 60.0},
    "pbl-orchestrator": {"task": "pbl.orchestrate", "schedule": PBL_ORCHESTRATOR_SECONDS},
}

# Security (README, "Security settings"). WebSocket origins besides the server's own address
# (scheme://host:port, exact; CSRF_TRUSTED_ORIGINS count too): apps.accounts.ws_auth.
WEBSOCKET_ALLOWED_ORIGINS = env_list("WEBSOCKET_ALLOWED_ORIGINS", [])
# Failed log-ins (and bad API tokens) per account / address before a lockout: apps.accounts.throttle.
LOGIN_FAILURE_LIMIT_PER_ACCOUNT = env_int("LOGIN_FAILURE_LIMIT_PER_ACCOUNT", 10, minimum=1)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env_int("LOGIN_FAILURE_LIMIT_PER_ADDRESS", 50, minimum=1)
TOKEN_FAILURE_LIMIT_PER_ADDRESS = env_int("TOKEN_FAILURE_LIMIT_PER_ADDRESS", 20, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60, minimum=1)
# What an uploaded workbook may expand to, checked from the zip directory before parsing:
# apps.tables.workbook_limits.
TABLES_MAX_UNPACKED_BYTES = env_int("TABLES_MAX_UNPACKED_BYTES", 200 * 1024 * 1024, minimum=1024)
TABLES_MAX_CELLS = env_int("TABLES_MAX_CELLS", 2_000_000, minimum=1)
