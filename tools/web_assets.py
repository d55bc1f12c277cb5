"""Fetch the npm packages named in tools/web_assets.json and put their files where the
service serves them or the browser tests inject them.

The service loads nothing from a CDN, so these scripts are copied from the npm registry at set
up, not linked. Each tarball is checked against the sha512 `integrity` that npm's lockfiles
use before a byte of it is unpacked; a mismatch stops the set up. Files already in place are
left alone, so re-running costs nothing. Standard library only: it runs before the virtual
environment has anything in it.

    python3 tools/web_assets.py            # fetch what is missing
    python3 tools/web_assets.py --served   # only what the service serves (the image)
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "tools" / "web_assets.json"
REGISTRY = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")


def tarball_url(name: str, version: str) -> str:
    return f"{REGISTRY}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"


def check_integrity(data: bytes, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise SystemExit(f"web assets: only sha512 integrity is accepted, not {algorithm}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise SystemExit(
            f"web assets: integrity mismatch: expected {integrity}, got sha512-{actual}"
        )


def fetch(package: dict[str, object]) -> None:
    files: dict[str, str] = package["files"]  # type: ignore[assignment]
    if all((ROOT / dest).exists() for dest in files.values()):
        return
    url = tarball_url(str(package["name"]), str(package["version"]))
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (fixed https URL)
        data = response.read()
    check_integrity(data, str(package["integrity"]))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member, dest in files.items():
            extracted = archive.extractfile(member)
            if extracted is None:
                raise SystemExit(f"web assets: {member} is not a file in {url}")
            target = ROOT / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(extracted.read())
    print(f"web assets: {package['name']}@{package['version']}", file=sys.stderr)


def main() -> None:
    served_only = "--served" in sys.argv[1:]
    for package in json.loads(MANIFEST.read_text())["packages"]:
        if served_only and not all(d.startswith("api/") for d in package["files"].values()):
            continue
        fetch(package)


if __name__ == "__main__":
    main()
