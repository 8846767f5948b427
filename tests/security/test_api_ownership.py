"""Another user's object IDs through the JSON API: every route with a path parameter, every
method, read from the API's own OpenAPI schema. The stranger (with a valid token) gets 403
or 404 and nothing changes hands; the owner reads the same GET routes (200), so the IDs are
real and the refusals mean something."""

import pytest

from config.api import api
from tests.security.api_objects import API_NOT_OWNED, API_OWNED, token

pytestmark = pytest.mark.django_db

SCHEMA = api.get_openapi_schema(path_prefix="/api/")
COMPONENTS = SCHEMA.get("components", {}).get("schemas", {})
OPERATIONS = [
    (method.upper(), path, operation)
    for path, methods in SCHEMA["paths"].items()
    for method, operation in methods.items()
    if any(parameter["in"] == "path" for parameter in operation.get("parameters", []))
]
ROUTES = sorted({path for _method, path, _op in OPERATIONS})


def example(schema: dict):
    """A value that fits `schema` (required properties only), so the request reaches the
    view's permission check instead of stopping at validation."""
    if "$ref" in schema:
        return example(COMPONENTS[schema["$ref"].rsplit("/", 1)[-1]])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [option for option in schema[key] if option.get("type") != "null"]
            return example(options[0])
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: example(properties[name]) for name in schema.get("required", [])}
    return {"array": [], "string": "x", "integer": 1, "number": 1, "boolean": False}.get(kind)


def body_for(operation: dict) -> dict | None:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        return example(content["application/json"]["schema"])
    return None


def call(client, method: str, path: str, values: dict, raw_token: str, operation: dict):
    url = path.format(**values)
    query = [
        f"{parameter['name']}={values.get(parameter['name'], example(parameter['schema']))}"
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and parameter.get("required")
    ]
    if query:
        url += "?" + "&".join(query)
    body = body_for(operation)
    kwargs = {"headers": {"Authorization": f"Bearer {raw_token}"}}
    if body is not None:
        kwargs |= {"data": body, "content_type": "application/json"}
    return getattr(client, method.lower())(url, **kwargs)


def test_every_route_with_a_path_parameter_is_classified():
    assert len(ROUTES) > 30
    unclassified = [route for route in ROUTES if route not in API_OWNED and route not in API_NOT_OWNED]
    assert unclassified == [], "add these to tests/security/api_objects.py (API_OWNED or API_NOT_OWNED)"
    assert not set(API_OWNED) & set(API_NOT_OWNED)
    stale = [route for route in [*API_OWNED, *API_NOT_OWNED] if route not in ROUTES]
    assert stale == [], "these routes no longer exist"


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [op for op in OPERATIONS if op[1] in API_OWNED],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_stranger_gets_403_or_404(client, method, path, operation):
    case = API_OWNED[path]()
    response = call(client, method, path, case.values, token(case.stranger), operation)
    assert response.status_code in (403, 404), (response.status_code, response.content[:300])


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [op for op in OPERATIONS if op[1] in API_OWNED and op[0] == "GET"],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_the_owner_reads_the_same_ids(client, method, path, operation):
    case = API_OWNED[path]()
    response = call(client, method, path, case.values, token(case.owner), operation)
    assert response.status_code == 200, (response.status_code, response.content[:300])
