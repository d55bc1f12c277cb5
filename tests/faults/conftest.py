"""The HTTP fixtures (a runtime with keys and the synthetic registry, a test client) for the
fault-injection tests, borrowed from tests/http."""

from tests.http.conftest import client, nadra_file, oidc_runtime, web
from tests.http.test_exchange import scene
from tests.http.test_locker import office

__all__ = ["client", "nadra_file", "office", "oidc_runtime", "scene", "web"]
