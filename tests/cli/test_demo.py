"""`shanakht demo --check`: Shanakht and the sample e-services started for real, the three
journeys walked over HTTP, and the exit code saying whether every step passed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from api.cli import main
from examples import journeys

SHANAKHT = shutil.which("shanakht", path=str(Path(sys.executable).parent))

# The demo always runs on the embedded defaults (SQLite), whatever the environment names, so
# the PostgreSQL pass of CI would only repeat the SQLite pass's run.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("SHANAKHT_DATABASE_URL")),
    reason="the demo runs on the embedded defaults; the SQLite pass runs it",
)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_demo_check_walks_the_three_journeys_and_passes() -> None:
    assert SHANAKHT, "the console script is installed"
    done = subprocess.run(
        [SHANAKHT, "demo", "--check"],
        capture_output=True,
        text=True,
        timeout=110,
        stdin=subprocess.DEVNULL,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(r"^All \d+ steps passed", out, re.M), out
    assert "FAILED" not in out
    for journey in ("(a) Single sign-on", "(b) Once-only", "(c) A signed transfer order"):
        assert f"== {journey}" in out
    # Single sign-on you can see: the first e-service asked for the password, the second not.
    assert "Shanakht asked for: password, consent" in out
    assert "Shanakht asked only for: consent" in out
    # Once-only: approved with a second factor, fetched under the consent.
    assert "Shanakht asked for: sms" in out  # approving on the requests page needs it
    assert re.search(r"fetched under consent [A-Za-z0-9_-]+", out)
    # The order: signed by an officer with an authenticator app, delivered, verified.
    assert "Shanakht asked for: password, app, consent" in out
    assert "it is in the teacher's Shanakht locker" in out
    assert "signed by CN=SED QR signer" in out
    assert "verdict: altered" in out
    # --check stops when the journeys end; it never waits for Ctrl-C.
    assert "Still running" not in out


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_failing_step_is_named_and_the_check_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(_urls: Any, _teacher: Any, _sms: Any, steps: journeys.Steps) -> None:
        steps.journey("(b) Once-only, made to fail")
        with steps.step("a step that cannot pass"):
            raise journeys.StepFailed("the consent was never given")

    monkeypatch.setattr(journeys, "_once_only", refused)
    result = CliRunner().invoke(main, ["demo", "--check"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "FAILED at: a step that cannot pass (3 steps passed before it)" in result.output
    assert "the consent was never given" in result.output
    assert "== (c)" not in result.output, "the journeys stop at the first failed step"
