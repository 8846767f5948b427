"""HTTP and WebSocket entry point (uvicorn in production, config/web.py; daphne in tests and runserver)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up first)
from django.conf import settings  # noqa: E402

from apps.accounts.ws_auth import WebSocketGate  # noqa: E402
from apps.core.ws_language import WebSocketLanguage  # noqa: E402
from config.http_threads import ThreadedWSGI  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Sync views through the WSGI handler in one hop to a pool thread; coroutine views (/v1) to Django's.
        "http": ThreadedWSGI(django_asgi_app, threads=settings.WEB_THREADS),
        # Origin (exact scheme, host and port) and bearer token checks, then the session: apps.accounts.ws_auth;
        # fragments rendered in the reader's language: apps.core.ws_language
        "websocket": WebSocketLanguage(WebSocketGate(URLRouter(websocket_urlpatterns))),
    }
)
