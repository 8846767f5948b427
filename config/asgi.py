"""HTTP and WebSocket entry point, served by daphne."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up first)

from apps.accounts.ws_auth import WebSocketGate  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origin (exact scheme, host and port) and bearer token checks, then the session: apps.accounts.ws_auth
        "websocket": WebSocketGate(URLRouter(websocket_urlpatterns)),
    }
)
