"""The service's logs: one JSON object per line, each with the request's id, and never PII.

What a line may carry is fixed here, field by field: time, level, logger, message, the
request id, and for the access line method, route *template*, status, duration and byte
counts. Never a raw path or query string (CNICs, share tokens and document ids travel in
them), never a header (cookies, bearer tokens), never the client's address. As a second line
of defence every message and traceback is scrubbed of anything shaped like a CNIC, so a
careless `log.info("... %s", cnic)` somewhere still writes `[cnic]`.

The access line is written by `api.metrics.Telemetry` when the response is finished (so its
duration covers a streamed download to the end), on the logger `shanakht.access`. uvicorn's
own access log is switched off by `shanakht serve`; should anything run the app with it on
(plain `uvicorn --log-config`, gunicorn), its lines go through `RedactUvicornAccess`, which
keeps the method and status and drops the client address and the raw path.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import secrets
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["json", "text"]

REQUEST_ID_HEADER = b"x-request-id"
# A request id from a caller is kept when it is a plain token (what a proxy or a calling
# service generates: a UUID, a ULID, hex); anything else is replaced, not cleaned up.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Thirteen digits, maybe with separators after the fifth and twelfth: the CNIC's shapes.
_CNIC_LIKE = re.compile(r"(?<!\d)\d{5}[-.:_ ]?\d{7}[-.:_ ]?\d(?!\d)")
_LONG_DIGITS = re.compile(r"\d{13,}")

request_id_var: ContextVar[str | None] = ContextVar("shanakht_request_id", default=None)

ACCESS_FIELDS = ("method", "route", "status", "duration_ms", "bytes_in", "bytes_out")
access_log = logging.getLogger("shanakht.access")


def new_request_id() -> str:
    # base64url: 16 characters, 96 random bits, almost never a run of digits (unlike hex).
    return secrets.token_urlsafe(12)


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-Id if it is a sane token, else a fresh one. A value that is or
    holds a CNIC (a careless client's "request id") is refused like any other odd value."""
    for name, value in headers:
        if name.lower() != REQUEST_ID_HEADER:
            continue
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            break
        if _SANE_REQUEST_ID.fullmatch(text) and not _digits_like_cnic(text):
            return text
        break
    return new_request_id()


def _digits_like_cnic(text: str) -> bool:
    return bool(_CNIC_LIKE.search(text) or _LONG_DIGITS.search(text))


def scrub(text: str) -> str:
    """`text` with every CNIC-shaped run of digits replaced by `[cnic]`."""
    text = _CNIC_LIKE.sub("[cnic]", text)
    return _LONG_DIGITS.sub("[digits]", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line, with only the fields named above."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for field in ACCESS_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    """For a developer's terminal: the same fields, as text, scrubbed the same way."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"{record.levelname} {record.name}: {scrub(record.getMessage())}"]
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            parts.append(f"request_id={request_id}")
        parts += [
            f"{field}={getattr(record, field)}"
            for field in ACCESS_FIELDS
            if getattr(record, field, None) is not None
        ]
        text = " ".join(parts)
        if record.exc_info:
            text += "\n" + scrub(self.formatException(record.exc_info))
        return text


class RedactUvicornAccess(logging.Filter):
    """uvicorn's access records carry (client address, method, full path with query, HTTP
    version, status): keep the method and status as fields, drop the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            record.method = str(args[1])
            record.status = args[4]
        record.msg, record.args = "request (uvicorn)", ()
        return True


def log_config(level: str = "INFO", fmt: LogFormat = "json") -> dict[str, Any]:
    """A `logging.config.dictConfig` for the service and uvicorn (its `log_config=`)."""
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"shanakht": {"()": f"{__name__}.{formatter.__name__}"}},
        "filters": {"redact_uvicorn_access": {"()": f"{__name__}.RedactUvicornAccess"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "shanakht",
                "stream": "ext://sys.stdout",
            },
            "uvicorn_access": {
                "class": "logging.StreamHandler",
                "formatter": "shanakht",
                "filters": ["redact_uvicorn_access"],
                "stream": "ext://sys.stdout",
            },
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": ["stdout"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["stdout"], "level": level, "propagate": False},
            "uvicorn.access": {
                "handlers": ["uvicorn_access"],
                "level": level,
                "propagate": False,
            },
            # HTTP clients log every URL they call at INFO (back-channel logout, a TSA): their
            # queries are none of the log's business.
            "httpx": {"level": "WARNING"},
            "httpx2": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }


def configure_logging(level: str = "INFO", fmt: LogFormat = "json") -> None:
    logging.config.dictConfig(log_config(level, fmt))
