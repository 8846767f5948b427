"""API tokens for scripts: create, list and revoke the signed-in user's tokens.

The first token needs no page: POST /api/tokens with HTTP Basic credentials (the account's
username and password), for example

    curl -u alice -X POST http://127.0.0.1:8000/api/tokens \
         -H 'Content-Type: application/json' -d '{"name": "laptop"}'

Password attempts go through the log-in form's throttle (apps.accounts.throttle): too many
failures for the account or the address answer 429 before the password is checked. A signed-in
session or an existing token can create more tokens the same way, without a password."""

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.security import HttpBasicAuth

from apps.accounts import services
from apps.accounts.api_auth import api_auth
from apps.accounts.forms import LoginForm

router = Router(tags=["tokens"])


class PasswordAuth(HttpBasicAuth):
    """Username and password, checked (and throttled) exactly as the log-in page checks them."""

    def authenticate(self, request: HttpRequest, username: str, password: str):
        form = LoginForm(request, data={"username": username, "password": password})
        if form.is_valid():
            return form.get_user()
        if form.throttled:
            raise HttpError(429, " ".join(form.non_field_errors()))
        raise AuthenticationError(401, "Wrong username or password.")


class TokenIn(Schema):
    name: str = "script"


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class NewTokenOut(TokenOut):
    token: str  # the raw value: shown once, never stored


def token_out(token) -> dict:
    return {field: getattr(token, field) for field in TokenOut.model_fields}


@router.post("/tokens", response={201: NewTokenOut}, auth=[PasswordAuth(), *api_auth])
def create_token(request, payload: TokenIn):
    """Create a token for the signed-in user (session or bearer token), or for the account
    named by HTTP Basic credentials. The raw token is in the answer once; send it as
    `Authorization: Bearer <token>`."""
    token, raw = services.create_api_token(request.auth, payload.name)
    return Status(201, token_out(token) | {"token": raw})


@router.get("/tokens", response=list[TokenOut])
def list_tokens(request):
    """The signed-in user's tokens (names and prefixes; the raw values are never stored)."""
    return [token_out(t) for t in request.auth.api_tokens.all()]


@router.delete("/tokens/{int:token_id}", response={204: None})
def revoke_token(request, token_id: int):
    """Revoke one of the signed-in user's tokens (the one in use too). 404 if it is not yours."""
    if not services.revoke_api_token(request.auth, token_id):
        raise HttpError(404, "You have no token with this id.")
    return Status(204, None)
