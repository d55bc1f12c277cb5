"""The route table's order is free to follow the traffic: no two of the app's routers answer
the same request, so which router comes first changes only how long matching takes.

Starlette tries the routes in order and takes the first that matches the path and method (or,
failing that, the first that matches the path, for its 405, or the path with its trailing
slash changed, for a redirect). If no request is matched, even in part, by routes of two
different routers, any order of the routers resolves every request to the same route.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.routing import Match

from api.app import create_app
from api.runtime import Runtime
from tests.http.test_telemetry import app_routes

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SAMPLE = "x1"  # what fills a path parameter, besides every literal other routes use there


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime)


def _routers(app: FastAPI) -> list[list[Any]]:
    """The app's top-level entries (its own routes, the static mount, each included router),
    each as the routes it holds."""
    return [list(app_routes([entry])) for entry in app.router.routes]


def _segments(template: str) -> list[str]:
    return template.strip("/").split("/")


def _probes(templates: list[str]) -> Iterator[str]:
    """Each template with its parameters filled by a sample and by every literal segment any
    template has at the same depth (so /locker/{id} meets /locker/access-log), with and
    without a trailing slash."""
    literals: dict[int, set[str]] = {}
    for template in templates:
        for depth, segment in enumerate(_segments(template)):
            if "{" not in segment:
                literals.setdefault(depth, set()).add(segment)
    for template in templates:
        choices = [
            [SAMPLE, *sorted(literals.get(depth, ()))] if "{" in segment else [segment]
            for depth, segment in enumerate(_segments(template))
        ]
        for filled in itertools.product(*choices):
            path = "/" + "/".join(filled)
            yield path
            yield path + "/"


def _scope(app: FastAPI, method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": [],
            "query_string": b"", "app": app}  # fmt: skip


def test_no_request_is_matched_by_two_routers(app: FastAPI) -> None:
    """A route matches a request in part when its path does, whatever the method: so no path
    may match routes of two routers."""
    routers = _routers(app)
    templates = [route.path for routes in routers for route in routes]
    probes = set(_probes([t for t in templates if t != "/"])) | {"/", "/static/css/x.css"}
    assert len(probes) > 5000  # every template, crossed with the others' literals
    patterns = [[route.path_regex for route in routes] for routes in routers]
    clashes = []
    for path in sorted(probes):
        matched = [i for i, each in enumerate(patterns) if any(p.match(path) for p in each)]
        if len(matched) > 1:
            clashes.append((path, [templates_of(routers[i], path) for i in matched]))
    assert clashes == []


def templates_of(routes: list[Any], path: str) -> list[str]:
    return [route.path for route in routes if route.path_regex.match(path)]


def test_each_route_is_matched_by_its_own_probe(app: FastAPI) -> None:
    """The check above looks where it should: each route matches, fully, its own template
    filled in, as Starlette matches it, and only on its path."""
    for routes in _routers(app):
        for route in routes:
            own = set(_probes([route.path])) if route.path != "/static" else {"/static/css/x.css"}
            methods = getattr(route, "methods", None) or {"GET"}
            full = [
                path
                for path in own
                for method in methods
                if route.matches(_scope(app, method, path))[0] == Match.FULL
            ]
            assert full, route.path
            assert all(route.path_regex.match(path) for path in full), route.path


def test_a_departments_issue_is_matched_before_any_page(app: FastAPI) -> None:
    """The busy APIs come first: an issue or an upload is not matched against the pages."""
    routes = [route for routes in _routers(app) for route in routes]
    pages = [
        index
        for index, route in enumerate(routes)
        if getattr(route, "include_in_schema", True) is False
        and getattr(route, "endpoint", None) is not None
        and route.path not in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
        and route.path != "/metrics"
    ]
    for path in ("/locker/issued/{doctype}", "/locker/documents", "/oauth/token"):
        first = min(index for index, route in enumerate(routes) if route.path == path)
        assert first < min(pages), path
