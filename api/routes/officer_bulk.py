"""Bulk issue (/officer/{department}/bulk): an officer holding locker.issuer sends one ZIP of
documents with a `manifest.csv` naming, row by row, whose locker each goes into; every row is
checked first, and only a manifest with no problem at all is issued, in a background job whose
progress has its own page.

    /officer/{department}/bulk                  the upload, and every row's problem beside it
    /officer/{department}/bulk/{job}            the job's progress and each row's outcome
    /officer/{department}/bulk/{job}/progress   its counts, for static/bulk.js

The manifest's columns are cnic, doc_id, doctype, title, valid_until (optional, YYYY-MM-DD)
and file (the file's name inside the ZIP). The ZIP is distrusted: a name that would leave its
folder refuses the whole ZIP; each member's size is checked as declared and again as it
inflates (a member that inflates past what it declares or past the limit is refused), and the
manifest, the rows and the total are capped.

Each row is issued in its own transaction through `api.routes.locker.issue_sealed`, the very
function the single-issue page uses, so it is sealed and audited alike; the locker is
idempotent by document number, so running a batch again issues nothing twice (its rows come
back "unchanged"). The job, its counts and each row's outcome (document number, title, outcome,
reason; never the CNIC) are kept in the database (`locker.jobs`), written row by row, so its
page and progress read the same on every replica and after a restart; a job whose process died
shows as interrupted, and sending the ZIP again finishes it. The ZIP itself is kept, for the
job's life only, in a temporary file of the process running the job that holds it only
encrypted, under a key only that process's memory holds (`api.sealed_spool`): the form is read
as it arrives (`api.form_stream`), sign-in and role before a byte of it, the CSRF token before a
byte of the ZIP, and the ZIP's bytes go straight into that file, never to disk in plaintext.
CNICs are kept in memory for the job's life only, are never logged, and never appear in the
pages.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import re
import threading
import weakref
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from api.deps import RuntimeDep, SessionDep
from api.form_stream import BrokenForm, FilePart, FormStream
from api.i18n import Text
from api.job_runner import beating
from api.refusals import refusal
from api.routes.locker import department_seal, issue_sealed
from api.routes.locker_views import BLOCK
from api.routes.officer_common import (
    CNIC_FORMAT,
    ISSUER,
    NO_ACCOUNT,
    Desk,
    as_officer,
    day,
    desk_for,
    end_of,
    page,
    see_other,
)
from api.routes.officer_locker import BROKEN, DOC_ID_FORMAT, ENDINGS, issuer_first
from api.runtime import Runtime
from api.sealed_spool import SealedSpool
from api.signed_in import SignedIn, SignedInDep, signed_in
from api.web import SCRIPTED_CSP, check_csrf
from audit import holds_cnic, pseudonym
from identity.cnic import normalise_cnic
from identity.errors import InvalidCnic
from locker import jobs
from locker.access import Accessor
from locker.doctypes import DOCUMENT_TYPES, DocumentType
from locker.documents import DocumentRefused, DocumentTooLarge, Seal, starts_as

router = APIRouter(tags=["officer pages"], include_in_schema=False)
log = logging.getLogger("shanakht.officer.bulk")

MANIFEST = "manifest.csv"
COLUMNS = ("cnic", "doc_id", "doctype", "title", "file")
OPTIONAL = ("valid_until",)
MAX_ROWS = 1000
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 2 * 1024**3  # the ZIP as sent, and its files inflated, each at most this
FORM_OVERHEAD = 64 * 1024  # what the form adds around the ZIP (its boundaries, the CSRF token)
SNIFF_BYTES = 1024  # of a file's start, to check it is of its declared type
_DOC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")

KIND = "bulk-issue"
RUNNING = jobs.RUNNING
CREATED, UPDATED, UNCHANGED, REFUSED = "created", "updated", "unchanged", "refused"

TOO_LARGE = "The file is too large: at most %(limit)s."
DAMAGED = Text("The file is damaged, or inflates beyond the size the ZIP declares for it.")
NOTHING_ISSUED = Text("Nothing was issued. Correct the problems shown, then send the ZIP again.")
STOPPED_ON_ERROR = Text(
    "The job stopped on an unexpected error. Run it again: what was issued is not issued twice."
)


class _Inflated(Exception):
    """A member inflated past what it declared, or past the limit."""


@dataclass(slots=True)
class Row:
    """One manifest row: its line in the file, what it says, and what is wrong with it."""

    line: int
    cnic: str
    doc_id: str
    doctype: str
    title: str
    valid_until: str
    file: str
    problems: list[Text] = field(default_factory=list)
    content_type: str = ""
    ends: datetime | None = None
    outcome: str = ""
    reason: Text | None = None


@dataclass(slots=True)
class Checked:
    """The ZIP as checked: a problem with the whole of it, or its rows (each with its own)."""

    problem: Text | None = None
    rows: list[Row] = field(default_factory=list)

    @property
    def good(self) -> bool:
        return self.problem is None and bool(self.rows) and not any(r.problems for r in self.rows)


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.0f} MiB" if size >= 1024 * 1024 else f"{size} bytes"


def _types(department: str) -> dict[str, DocumentType]:
    return {t.code: t for t in DOCUMENT_TYPES.values() if t.department == department}


def _safe_name(name: str) -> bool:
    """A member name that stays inside the ZIP's folder: relative, forward slashes, no '..'."""
    if not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name:
        return False
    if re.match(r"^[A-Za-z]:", name):
        return False
    return all(part not in ("..",) for part in name.split("/"))


def _content_type(name: str) -> str | None:
    lower = name.lower()
    return next((kind for end, kind in ENDINGS.items() if lower.endswith(end)), None)


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> Iterator[bytes]:
    """The member's content in blocks, counted as it inflates: past its declared size or past
    `limit`, `_Inflated` (zipfile's own CRC check refuses a member whose header lies, too)."""
    cap = min(info.file_size, limit)
    total = 0
    try:
        with archive.open(info) as member:
            while block := member.read(BLOCK):
                total += len(block)
                if total > cap:
                    raise _Inflated
                yield block
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise _Inflated from exc


def _read_manifest(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str | Text:
    if info.file_size > MAX_MANIFEST_BYTES:
        return Text("The manifest is too large: at most %(limit)s.", limit=_mib(MAX_MANIFEST_BYTES))
    try:
        raw = b"".join(_inflate(archive, info, MAX_MANIFEST_BYTES))
    except _Inflated:
        return Text("The manifest is damaged, or larger than the ZIP says it is.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Text("The manifest is not UTF-8 text.")


def check_zip(file: IO[bytes], desk: Desk, runtime: Runtime) -> Checked:
    """Every problem of the ZIP in `file`, as the page shows them; nothing is issued here."""
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError):
        return Checked(Text("This is not a ZIP file, or it is damaged."))
    with archive:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            if not _safe_name(info.filename):
                return Checked(
                    Text(
                        "The ZIP holds a name that leaves its folder (%(name)s). Nothing "
                        "was issued.",
                        name=info.filename[:80],
                    )
                )
            if info.flag_bits & 0x1:
                return Checked(
                    Text(
                        "The ZIP holds a file with a password (%(name)s). Send it without one.",
                        name=info.filename[:80],
                    )
                )
            if info.filename in members:
                return Checked(
                    Text("The ZIP holds two files named %(name)s.", name=info.filename[:80])
                )
            members[info.filename] = info
        found = members.get(MANIFEST)
        if found is None:
            return Checked(Text("The ZIP holds no manifest.csv at its top level."))
        text = _read_manifest(archive, found)
        if isinstance(text, Text):
            return Checked(text)
        return _check_rows(text, members, archive, desk, runtime)


def _check_rows(
    text: str,
    members: dict[str, zipfile.ZipInfo],
    archive: zipfile.ZipFile,
    desk: Desk,
    runtime: Runtime,
) -> Checked:
    try:
        lines = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        return Checked(Text("The manifest is not a CSV file."))
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    expected = ", ".join((*COLUMNS, *OPTIONAL))
    if not lines:
        return Checked(Text("The manifest is empty."))
    header = [cell.strip().lower() for cell in lines[0]]
    if (
        len(set(header)) != len(header)
        or not set(COLUMNS) <= set(header)
        or not set(header) <= {*COLUMNS, *OPTIONAL}
    ):
        return Checked(
            Text(
                "The manifest's first line names the columns: %(expected)s (valid_until may be "
                "left out). It names: %(found)s.",
                expected=expected,
                found=", ".join(header)[:200],
            )
        )
    body = lines[1:]
    if not body:
        return Checked(Text("The manifest has no rows under its header."))
    if len(body) > MAX_ROWS:
        return Checked(
            Text(
                "The manifest has %(count)s rows; a batch has at most %(limit)s.",
                count=len(body),
                limit=MAX_ROWS,
            )
        )
    kinds = _types(desk.department)
    limit = min(runtime.settings.locker_max_bytes, MAX_TOTAL_BYTES)
    now = runtime.clock()
    rows: list[Row] = []
    numbers: dict[str, int] = {}
    total = 0
    for index, cells in enumerate(body, start=2):
        if len(cells) != len(header):
            row = Row(index, "", "", "", "", "", "")
            row.problems.append(
                Text(
                    "This row has %(found)s fields; the header has %(expected)s.",
                    found=len(cells),
                    expected=len(header),
                )
            )
            rows.append(row)
            continue
        values = {name: cell.strip() for name, cell in zip(header, cells, strict=True)}
        row = Row(
            index,
            values["cnic"],
            values["doc_id"],
            values["doctype"],
            values["title"],
            values.get("valid_until", ""),
            values["file"],
        )
        rows.append(row)
        try:
            normalise_cnic(row.cnic)
        except InvalidCnic:
            row.problems.append(CNIC_FORMAT)
        if row.doctype not in kinds:
            row.problems.append(
                Text("Choose one of the types %(department)s issues.", department=desk.name)
            )
        if not _DOC_ID.fullmatch(row.doc_id) or holds_cnic(row.doc_id):
            row.problems.append(DOC_ID_FORMAT)
        elif row.doc_id in numbers:
            row.problems.append(
                Text("This document number is on line %(line)s too.", line=numbers[row.doc_id])
            )
        else:
            numbers[row.doc_id] = index
        if not row.title or len(row.title) > 200 or holds_cnic(row.title):
            row.problems.append(Text("Give a title of 1 to 200 characters, without a CNIC in it."))
        if row.valid_until:
            last_day = day(row.valid_until)
            if last_day is None or end_of(last_day) <= now:
                row.problems.append(
                    Text("Give the date as YYYY-MM-DD, after today, or leave it empty.")
                )
            else:
                row.ends = end_of(last_day)
        total += _check_file(row, members, archive, limit)
        if total > MAX_TOTAL_BYTES:
            return Checked(
                Text(
                    "The files come to more than %(limit)s in all. Split the batch.",
                    limit=_mib(MAX_TOTAL_BYTES),
                ),
                rows,
            )
    return Checked(None, rows)


def _check_file(
    row: Row, members: dict[str, zipfile.ZipInfo], archive: zipfile.ZipFile, limit: int
) -> int:
    """Check the row's file (inflating it, counted); the bytes it inflated to."""
    info = members.get(row.file)
    if not row.file or info is None or info.is_dir() or row.file == MANIFEST:
        row.problems.append(Text("No file of this name is in the ZIP."))
        return 0
    content_type = _content_type(row.file)
    if content_type is None:
        row.problems.append(
            Text("This file type is not accepted: send a PDF, PNG, JPEG, JSON or XML.")
        )
        return 0
    if info.file_size > limit:
        row.problems.append(Text(TOO_LARGE, limit=_mib(limit)))
        return 0
    size, first = 0, b""
    try:
        for block in _inflate(archive, info, limit):
            if len(first) < SNIFF_BYTES:  # however the file inflates, enough to judge its start
                first += block[:SNIFF_BYTES]
            size += len(block)
    except _Inflated:
        row.problems.append(DAMAGED)
        return size
    if size == 0:
        row.problems.append(Text("The file is empty."))
    elif not starts_as(first, content_type):
        row.problems.append(
            Text(
                "The file's content is not a %(kind)s file.",
                kind=content_type.split("/")[1].upper(),
            )
        )
    row.content_type = content_type
    return size


# -- the job ------------------------------------------------------------------------------------


class BulkJob:
    """The runner of one batch in this process: it issues the rows and writes each one's
    outcome, and the job's counts, to `locker.jobs`, where every replica reads them."""

    def __init__(self, job_id: str, desk: Desk, spool: SealedSpool, rows: list[Row]) -> None:
        self.id = job_id
        self.desk = desk
        self._spool = spool
        self._rows = rows
        self._thread: threading.Thread | None = None

    def start(self, runtime: Runtime, who: Accessor) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(runtime, who), name=f"bulk-issue-{self.id}", daemon=True
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """For tests and shutdown: until the job ends."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _end(self, runtime: Runtime, state: str, problem: Text | None = None) -> None:
        summary = {"problem": problem.stored()} if problem is not None else {}
        with runtime.transaction() as session:
            jobs.finish(session, self.id, runtime.clock(), state, summary=summary)

    def _run(self, runtime: Runtime, who: Accessor) -> None:
        try:
            with beating(runtime, self.id) as lost:
                with runtime.transaction() as session:
                    seal = department_seal(runtime, session, self.desk.department)
                if seal is None:
                    self._end(runtime, jobs.FAILED, _no_seal(self.desk))
                    return
                with self._spool.open() as file, zipfile.ZipFile(file) as archive:
                    for row in self._rows:
                        if lost.is_set():  # a heartbeat found the job no longer live
                            log.warning("bulk issue %s is no longer live: stopping", self.id)
                            return
                        self._issue(runtime, archive, row, seal, who)
                        self._record(runtime, row)
                self._end(runtime, jobs.DONE)
        except Exception as exc:
            log.error("bulk issue %s stopped: %s", self.id, type(exc).__name__)
            with contextlib.suppress(Exception):  # if the database is what failed, the
                self._end(runtime, jobs.FAILED, STOPPED_ON_ERROR)  # job shows interrupted
        finally:
            for row in self._rows:
                row.cnic = ""  # not kept past the job
            self._spool.close()  # the file, and its key, go with it

    def _record(self, runtime: Runtime, row: Row) -> None:
        line = jobs.Line(
            row.line, row.doc_id, row.title, row.outcome,
            row.reason.stored() if row.reason is not None else None,
        )  # fmt: skip
        with runtime.transaction() as session:
            jobs.add_line(session, self.id, line, runtime.clock())

    def _issue(
        self, runtime: Runtime, archive: zipfile.ZipFile, row: Row, seal: Seal, who: Accessor
    ) -> None:
        kind = DOCUMENT_TYPES[row.doctype]
        limit = min(runtime.settings.locker_max_bytes, MAX_TOTAL_BYTES)
        outcome, reason = REFUSED, None
        try:
            with runtime.transaction() as session:
                owner = pseudonym(normalise_cnic(row.cnic), key=runtime.pseudonym_key)
                if not runtime.provider(session).accounts.exists(owner):
                    reason = NO_ACCOUNT
                else:
                    issued = issue_sealed(
                        runtime, session, kind, seal, owner=owner, doc_id=row.doc_id,
                        title=row.title, valid_until=row.ends,
                        content=_inflate(archive, archive.getinfo(row.file), limit),
                        content_type=row.content_type, who=who,
                    )  # fmt: skip
                    outcome = issued.outcome
        except _Inflated:
            reason = DAMAGED
        except DocumentTooLarge:
            reason = Text(TOO_LARGE, limit=_mib(limit))
        except DocumentRefused as exc:
            reason = refusal(exc).words
        row.outcome, row.reason = outcome, reason


def _no_seal(desk: Desk) -> Text:
    return Text(
        "%(department)s has no seal certificate yet, so nothing can be issued in its name. "
        "Ask the PKI administrator to issue one (shanakht pki issue department-seal "
        "--department %(id)s), then try again.",
        department=desk.name,
        id=desk.department,
    )


_JOBS: dict[int, tuple[weakref.ref[Runtime], dict[str, BulkJob]]] = {}
_JOBS_LOCK = threading.Lock()


def jobs_of(runtime: Runtime) -> dict[str, BulkJob]:
    """This runtime's runners in this process, for `wait` (what a job came to is read from
    the database, on any replica)."""
    with _JOBS_LOCK:
        held = _JOBS.get(id(runtime))
        if held is None or held[0]() is not runtime:
            held = (weakref.ref(runtime), {})
            _JOBS[id(runtime)] = held
        return held[1]


def _keep(runtime: Runtime, job: BulkJob) -> None:
    runners = jobs_of(runtime)
    with _JOBS_LOCK:
        for ended in [j.id for j in runners.values() if not j.running]:
            runners.pop(ended, None)
        runners[job.id] = job


# -- pages --------------------------------------------------------------------------------------


def _form_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    desk: Desk,
    status_code: int = 200,
    **context: object,
) -> Response:
    limit = min(runtime.settings.locker_max_bytes, MAX_TOTAL_BYTES)
    context.setdefault("errors", {})
    context.setdefault("rows", [])
    response = page(
        request, runtime, session, me, "officer_bulk.html", status_code=status_code, desk=desk,
        types=list(_types(desk.department).values()), limit=_mib(limit),
        total=_mib(MAX_TOTAL_BYTES), max_rows=MAX_ROWS,
        sealed=department_seal(runtime, session, desk.department) is not None, **context,
    )  # fmt: skip
    response.headers["Content-Security-Policy"] = SCRIPTED_CSP
    return response


@router.get("/officer/{department}/bulk", response_model=None)
def bulk_form(
    department: str, request: Request, runtime: RuntimeDep, session: SessionDep, me: SignedInDep
) -> Response:
    desk = desk_for(runtime, session, me, department, ISSUER)
    return _form_page(request, runtime, session, me, desk)


def _spool(content: Iterable[bytes]) -> SealedSpool | None:
    """The ZIP as it arrives, in a sealed spool of its own; None (and no spool) past the cap."""
    spool = SealedSpool()
    try:
        for block in content:
            if spool.size + len(block) > MAX_TOTAL_BYTES:
                spool.close()
                return None
            spool.write(block)
        spool.finish()
    except BaseException:
        spool.close()
        raise
    return spool


def _answer(
    runtime: Runtime, request: Request, department: str, status_code: int, **context: object
) -> Response:
    """The form page in a transaction of its own (the ZIP is read outside any)."""
    with runtime.transaction() as session:
        me = signed_in(request, runtime, session)
        desk = desk_for(runtime, session, me, department, ISSUER)
        return _form_page(request, runtime, session, me, desk, status_code, **context)


def _too_large() -> Text:
    return Text("The ZIP is too large: at most %(limit)s.", limit=_mib(MAX_TOTAL_BYTES))


def _ready(runtime: Runtime, request: Request, department: str, file: FilePart | None) -> Desk:
    """The desk, if its department can seal and a file was chosen; `_Refused` otherwise."""
    with runtime.transaction() as session:
        me = signed_in(request, runtime, session)
        desk = desk_for(runtime, session, me, department, ISSUER)
        if department_seal(runtime, session, desk.department) is None:
            raise _Refused(409, error=_no_seal(desk))
    if file is None or file.name != "file" or not file.filename:
        raise _Refused(
            400, errors={"file": Text("Choose the ZIP file to issue.")}, error=NOTHING_ISSUED
        )
    return desk


class _Refused(Exception):
    """The form page to answer with, and what it says."""

    def __init__(self, status_code: int, **context: object) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.context = context


def _bulk(
    runtime: Runtime, request: Request, department: str, file: FilePart | None, form: FormStream
) -> Response:
    """Spool the ZIP sealed as it arrives, check it whole, and start its job if it is good.
    The spool is closed (so deleted) on every way out but the job's start."""
    try:
        desk = _ready(runtime, request, department, file)
        try:
            spool = _spool(form.content())
        except BrokenForm:
            raise _Refused(400, errors={"file": BROKEN}, error=NOTHING_ISSUED) from None
        if spool is None:
            raise _Refused(400, errors={"file": _too_large()}, error=NOTHING_ISSUED)
    except _Refused as refused:
        return _answer(runtime, request, department, refused.status_code, **refused.context)
    try:
        with spool.open() as zipped:
            checked = check_zip(zipped, desk, runtime)
        if not checked.good:
            spool.close()
            problem = checked.problem or (
                None if checked.rows else Text("The manifest has no rows under its header.")
            )
            return _answer(
                runtime, request, department, 422 if checked.rows else 400,
                errors={"file": problem} if problem else {}, rows=checked.rows,
                error=NOTHING_ISSUED,
            )  # fmt: skip
        return _start(runtime, request, desk, spool, checked.rows)
    except BaseException:
        spool.close()
        raise


def _start(
    runtime: Runtime, request: Request, desk: Desk, spool: SealedSpool, rows: list[Row]
) -> Response:
    with runtime.transaction() as session:
        me: SignedIn = signed_in(request, runtime, session)
        stored = jobs.create(
            session, KIND, starter=me.account.pseudonym, now=runtime.clock(), total=len(rows),
            department=desk.department,
        )  # fmt: skip
        assert stored is not None  # noqa: S101 (bulk jobs are not one at a time: always created)
        who = as_officer(me, desk.department)
    # Committed: the runner and every replica read it from now on.
    job = BulkJob(stored.id, desk, spool, rows)
    _keep(runtime, job)
    job.start(runtime, who)
    return see_other(f"/officer/{desk.department}/bulk/{job.id}")


@router.post("/officer/{department}/bulk", response_model=None)
async def bulk_upload(department: str, request: Request, runtime: RuntimeDep) -> Response:
    await run_in_threadpool(issuer_first, runtime, request, department)
    most = MAX_TOTAL_BYTES + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > most:
        return await run_in_threadpool(
            _answer, runtime, request, department, 400, errors={"file": _too_large()},
            error=NOTHING_ISSUED,
        )  # fmt: skip
    try:
        form = FormStream(request, max_fields=4)
        fields, file = await form.head()
    except BrokenForm:
        return await run_in_threadpool(
            _answer, runtime, request, department, 400, errors={"file": BROKEN},
            error=NOTHING_ISSUED,
        )  # fmt: skip
    check_csrf(request, runtime, fields.get("csrf"))
    answer = await run_in_threadpool(_bulk, runtime, request, department, file, form)
    if answer.status_code >= 400:  # what the browser still sends, read so it hears the page
        await form.drain(most)
    return answer


def _job(session: Session, desk: Desk, me: SignedInDep, job_id: str) -> jobs.Job | None:
    """The job, from the database, if it is this officer's own in this department."""
    job = jobs.get(session, job_id)
    if (
        job is None
        or job.kind != KIND
        or job.department != desk.department
        or job.starter != me.account.pseudonym
    ):
        return None
    return job


def _shown(lines: list[jobs.Line]) -> list[dict[str, object]]:
    """Each line for the page, its reason as words in the reader's language."""
    return [
        {"line": x.line, "doc_id": x.doc_id, "title": x.title, "outcome": x.outcome,
         "reason": Text.restored(x.reason)}
        for x in lines
    ]  # fmt: skip


def _counts(lines: list[jobs.Line]) -> dict[str, int]:
    counted = {CREATED: 0, UPDATED: 0, UNCHANGED: 0, REFUSED: 0}
    for line in lines:
        counted[line.outcome] = counted.get(line.outcome, 0) + 1
    return counted


@router.get("/officer/{department}/bulk/{job_id}", response_model=None)
def bulk_job(
    department: str,
    job_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
) -> Response:
    desk = desk_for(runtime, session, me, department, ISSUER)
    job = _job(session, desk, me, job_id)
    if job is None:
        return page(
            request, runtime, session, me, "message.html", status_code=404,
            heading=Text("No such batch"),
            message=Text("You have no batch of that number in this department. Send the ZIP "
                         "again: what was issued already is not issued twice."),
            link=f"/officer/{desk.department}/bulk", link_text=Text("Issue a batch of documents"),
        )  # fmt: skip
    status = job.status(runtime.clock())
    lines = jobs.lines(session, job.id)
    response = page(
        request, runtime, session, me, "officer_bulk_job.html", desk=desk, job=job,
        status=status, done=job.done, total=job.total, rows=_shown(lines), counts=_counts(lines),
        problem=Text.restored(job.summary.get("problem")),
    )  # fmt: skip
    if status == RUNNING:
        response.headers["Content-Security-Policy"] = SCRIPTED_CSP
    return response


@router.get("/officer/{department}/bulk/{job_id}/progress", response_model=None)
def bulk_progress(
    department: str, job_id: str, runtime: RuntimeDep, session: SessionDep, me: SignedInDep
) -> Response:
    """The job's counts, for the progress page's script."""
    desk = desk_for(runtime, session, me, department, ISSUER)
    job = _job(session, desk, me, job_id)
    if job is None:
        return JSONResponse({"status": "unknown"}, status_code=404)
    return JSONResponse(
        {"status": job.status(runtime.clock()), "done": job.done, "total": job.total},
        headers={"Cache-Control": "no-store"},
    )
