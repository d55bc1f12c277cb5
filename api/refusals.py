"""A domain refusal, said on a page in the reader's language and beside the field it is about.

The domain packages (locker, signing, identity) refuse with an exception whose `str()` is an
English sentence, for logs, the CLI and the API's problem details; each refusal a person may
be shown also carries a stable `code`, the form `field` it is about and the `facts` its
sentence names (`audit.refusal.RefusalError`, their common base). `refusal(exc)` turns those
into `Text`, the way the inbox says a message from its facts (`api.routes.consent_pages.SAID`),
so an Urdu page never shows the English sentence. A code without words here gets a general
sentence, in the reader's language too, rather than the English.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.i18n import Text
from api.local_time import moment
from audit.refusal import RefusalError
from locker.doctypes import document_type

log = logging.getLogger("shanakht.refusals")

# What each code says. The names in %(...)s are the refusal's facts (as `_shown` gives them).
SAID: dict[str, Text] = {
    # The audit log's own check (audit.verify), as the administrator's audit page says it
    "audit.checkpoint_note": Text("Checkpoint %(id)s: its signature or its note does not verify."),
    "audit.checkpoint_columns": Text("Checkpoint %(id)s: its columns differ from its signed note."),
    "audit.empty_root": Text("The checkpoint of the empty log has a wrong root."),
    "audit.missing": Text("Entry %(seq)s is missing."),
    "audit.not_json": Text("Entry %(seq)s is not a JSON object."),
    "audit.wrong_seq": Text("Entry %(seq)s holds the entry numbered %(claimed)s."),
    "audit.chain": Text("Entry %(seq)s: the hash chain breaks here."),
    "audit.subtree": Text("Entry %(seq)s: its stored subtree hashes are wrong."),
    "audit.checkpoint_mismatch": Text(
        "The checkpoint at size %(size)s does not match the entries before it: an entry was "
        "altered and the hashes after it rewritten."
    ),
    "audit.truncated": Text(
        "The log ends at %(size)s entries but a checkpoint covers %(largest)s: it was cut short."
    ),
    "audit.head_size": Text("The log holds %(size)s entries but its head says %(head)s."),
    "audit.head": Text("The log's head does not match its entries."),
    # Once-only requests and legal-basis access (locker.exchange, locker.legal, locker.release)
    "request.approved": Text("You approved this request already: its consent is in your list."),
    "request.denied": Text("You denied this request already: it cannot be decided again."),
    "request.expired": Text("This request has expired: it was not decided within its window."),
    "request.decided": Text(
        "This request was decided meanwhile (on another page or device): it cannot be decided "
        "again."
    ),
    "request.fetch_limit": Text("Give a number of fetches from 1 to %(most)s."),
    "request.data_life": Text("Give a whole number of days from 0 to %(most)s."),
    "purpose.code": Text("Give a code of 1 to 32 letters, digits, '.', '_' and '-'."),
    "purpose.text": Text("Say why, in 1 to %(most)s characters, without a CNIC in it."),
    "purpose.cnic": Text("Say why, without a CNIC in it."),
    "window.offset": Text("Give the window's start and end with their time zone."),
    "window.order": Text("The window must end after it starts, and in the future."),
    "window.too_long": Text("A window is at most %(days)s days long."),
    "doctypes.count": Text("Choose 1 to %(most)s document types."),
    "doctypes.unknown": Text("One of the document types chosen is not known to the locker."),
    "doctypes.upload": Text("%(doctype)s: citizens' own uploads are never released."),
    "doctypes.secret": Text("%(doctype)s: Secret documents are never released electronically."),
    "doctypes.sensitive": Text(
        "%(doctype)s: Sensitive documents are released only under an explicit consent for a "
        "single fetch, never a standing one."
    ),
    "legal.delay": Text("Give a whole number of days from 0 to %(most)s."),
    "legal.legal_reference": Text("Give the legal reference in 1 to %(most)s characters."),
    "legal.reason": Text("Say what the basis allows and why, in 1 to %(most)s characters."),
    "legal.no_role": Text("You do not hold %(role)s in this department."),
    "legal.which_department": Text(
        "You hold %(role)s in several departments: say for which one you act."
    ),
    "legal.grant_invalid": Text("The grant has ended (it lasts 15 minutes) or is not yours."),
    "legal.own_request": Text(
        "You filed this request: a second officer of the department must decide it."
    ),
    "legal.not_filer": Text("Only the officer who filed this request can open it."),
    "legal.unknown": Text("There is no such request in this department."),
    "legal.closed": Text("This request is no longer open: it was decided or it has expired."),
    "legal.pending": Text("This request still awaits a second officer's approval."),
    "legal.lapsed": Text(
        "The approval has lapsed: an approved request must be opened within 24 hours. File "
        "it again."
    ),
    "legal.expired": Text("This request expired: nobody decided it within 7 days."),
    "legal.refused": Text("A second officer refused this request: it cannot be opened."),
    "legal.refusal_reason": Text(
        "Say why you refuse, in 1 to %(most)s characters, without a CNIC in it."
    ),
    "second_factor.needed": Text(
        "This needs a sign-in with a second factor. Sign in again with your SMS or app code."
    ),
    # Consents, when a department fetches under one (locker.exchange)
    "consent.refused": Text("The consent does not allow this now."),
    "consent.paused": Text("The citizen has paused this consent."),
    "consent.revoked": Text("The citizen has revoked this consent."),
    "consent.expired": Text("The consent expired at %(at)s."),
    "consent.not_yet": Text("The consent's window opens at %(at)s."),
    "consent.fetch_limit_reached": Text(
        "All %(limit)s fetches this consent allows have been made."
    ),
    "consent.changed": Text("The consent changed while this fetch ran. Try again."),
    "consent.unknown": Text("Your department was given no consent with that number."),
    # Documents in the locker (locker.documents, locker.rewrap)
    "document.unknown": Text("There is no such document, or it is not released to you."),
    "document.issuer": Text("%(doctype)s documents are issued by another department."),
    "document.issued": Text("An issued document cannot be deleted; it can only be revoked."),
    "document.type": Text("This file type is not accepted: send a PDF, PNG, JPEG, JSON or XML."),
    "document.content": Text("The file's content is not a %(kind)s file."),
    "document.empty": Text("The file is empty."),
    "document.too_large": Text("The file is too large: at most %(most)s bytes."),
    "document.number": Text(
        "Use 1 to 64 letters, digits, '.', '_', '/' and '-', starting with a letter or digit."
    ),
    "document.number_taken": Text(
        "This number was used for another citizen's or type's document."
    ),
    "document.title": Text("Give a title of 1 to 200 characters, without a CNIC in it."),
    "document.reason": Text("Give the reason in 1 to 200 characters, without a CNIC in it."),
    "document.revoked": Text(
        "That document is revoked. Issue a new one, under a new number, instead."
    ),
    "document.deleted": Text(
        "That document was deleted. Issue a new one, under a new number, instead."
    ),
    "document.changed": Text("The document changed while this was sent. Send it again."),
    "document.unsealed": Text(
        "The locker's record of that document fails its integrity check. "
        "Report it to the service's administrators."
    ),
    "rewrap.failed": Text(
        "Document %(document)s, version %(version)s: its data key could not be re-wrapped (it "
        "was altered, or its KEK version is missing)."
    ),
    "kek.missing": Text(
        "The file %(file)s is missing from the keys folder: restore it from the backup."
    ),
    "kek.unreadable": Text(
        "The file %(file)s cannot be read: check the keys folder's disk and permissions."
    ),
    "kek.damaged": Text("The file %(file)s is damaged: restore it from the backup."),
    "kek.master_key": Text(
        "%(file)s does not open under this master key: the master key is wrong, or the file was "
        "altered or renamed."
    ),
    "text.cnic": Text("Leave the CNIC out: a run of 13 digits may not appear here."),
    # Transfer orders and certificates (signing)
    "order.empty": Text("Fill this in."),
    "order.spaces": Text("Remove the spaces at its start and end."),
    "order.too_long": Text("Use at most %(most)s characters."),
    "order.control": Text("Remove the control characters (such as line breaks) from it."),
    "order.latin": Text(
        "“%(char)s” cannot be printed: orders are printed in Latin letters only. Write it in "
        "Latin letters."
    ),
    "order.number": Text(
        "Give the order number as letters and digits, joined by spaces or . / ( ) -"
    ),
    "order.same_school": Text("The teacher would join the school they leave: give another."),
    "order.too_full": Text(
        "The order's text does not fit above the QR code: shorten its fields."
    ),
    "pki.not_ready": Text(
        "The PKI is not set up yet: ask the PKI administrator to run shanakht pki init."
    ),
    "certificate.reason": Text("Choose why it is revoked."),
    "certificate.unknown": Text("There is no certificate %(serial)s."),
    "certificate.revoked": Text("Certificate %(serial)s was revoked already."),
    # E-service clients (identity.oidc.clients)
    "client.id": Text(
        "A client id is 2 to 63 lower-case letters, digits and dashes, such as e-transfer."
    ),
    "client.taken": Text("A client %(client)s is already registered: choose another id."),
    "client.kind": Text("Choose an e-service or a department system."),
    "client.auth_method": Text("Choose private_key_jwt or client_secret_basic."),
    "client.jwks_missing": Text(
        "private_key_jwt needs the client's public keys (a JWKS, as JSON)."
    ),
    "client.jwks": Text("The JWKS does not parse as keys: check each key in it."),
    "client.jwks_private": Text(
        "Register the public keys only: the private key stays with the client."
    ),
    "client.redirect_missing": Text("An e-service needs at least one redirect URI."),
    "client.redirect_service": Text(
        "A department system signs no one in: leave the redirect URIs empty."
    ),
    "client.uri_https": Text(
        "%(uri)s: use an https address (plain http only for 127.0.0.1 or localhost)."
    ),
    "client.uri_whole": Text("%(uri)s: give the whole address, without a # part."),
    "client.openid": Text("An e-service's scopes include openid."),
    "client.scopes": Text("Unknown scopes: %(scopes)s."),
    "client.alg": Text("Choose RS256 or ES256."),
    "client.department_kind": Text(
        "Only a department system belongs to a department; leave this empty."
    ),
    "client.department": Text("There is no department %(department)s: add it first."),
    # Roles (identity.roles)
    "role.self_grant": Text("You cannot give yourself a role: ask another administrator."),
    "role.held": Text("This officer holds that role in that department already."),
    # Grants of the powerful roles, by two administrators (identity.role_proposals)
    "role.two_person": Text(
        "%(role)s is granted by two administrators: propose it, and another administrator "
        "approves it."
    ),
    "role.proposed_already": Text(
        "This grant is proposed already and waits for a second administrator."
    ),
    "role.proposal_unknown": Text("There is no such proposal."),
    "role.second_factor": Text("Deciding a proposal needs a sign-in with a second factor."),
    "role.not_admin": Text("Only an administrator proposes or decides a grant."),
    "role.own_proposal": Text("You proposed this grant: another administrator must decide it."),
    "role.proposed_for_you": Text(
        "This grant is for you: another administrator must decide it."
    ),
    "role.proposal_expired": Text(
        "This proposal expired: nobody decided it within 7 days. Nothing was granted."
    ),
    "role.proposal_decided": Text(
        "Another administrator has decided this proposal already; nothing was changed."
    ),
    "role.proposal_changed": Text(
        "This proposal no longer says what you were shown: nothing was granted. Look at it "
        "again before you decide."
    ),
    "role.proposer_not_admin": Text(
        "The administrator who proposed this grant is no longer an administrator, so it cannot "
        "be approved. Refuse it, or let it expire."
    ),
    "role.refusal_reason": Text(
        "Say why you refuse, in 1 to %(most)s characters, without a CNIC in it."
    ),
}  # fmt: skip
# What a refusal without words of its own says: never its English sentence.
GENERAL = Text("This was refused as it stands. Check what was entered, and try again.")
_NAMES = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a page says of a refusal, and the form field it is about (None: the whole form)."""

    words: Text
    field: str | None = None
    known: bool = True  # False: the general sentence, this code having no words here

    def beside(self, fields: Container[str]) -> str | None:
        """The field to show it beside, if the form has that field; None for the page."""
        return self.field if self.field is not None and self.field in fields else None


def refusal(exc: BaseException) -> Refusal:
    """`exc`'s refusal in words for a page (translated when drawn) and its field."""
    if not isinstance(exc, RefusalError):
        log.warning("no page words for a %s refusal (no code)", type(exc).__name__)
        return Refusal(GENERAL, None, known=False)
    facts = _shown(exc.facts)
    said = SAID.get(exc.code) if exc.code is not None else None
    if said is None or not set(_NAMES.findall(said.message)) <= facts.keys():
        log.warning("no page words for a %s refusal (code %s)", type(exc).__name__, exc.code)
        return Refusal(GENERAL, exc.field, known=False)
    return Refusal(Text(said.message, **facts), exc.field)


def _shown(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The facts as a sentence names them: times in PKT, document types by their (translated)
    names, a content type by its kind ("PDF")."""
    shown: dict[str, Any] = {}
    for name, value in facts.items():
        if isinstance(value, datetime):
            shown[name] = moment(value)
        elif name == "doctype" and isinstance(value, str):
            shown[name] = _type_name(value)
        elif name == "content_type" and isinstance(value, str):
            shown[name] = value
            shown["kind"] = value.rpartition("/")[2].upper()
        else:
            shown[name] = value
    return shown


def _type_name(code: str) -> Text | str:
    try:
        return Text(document_type(code).name)
    except LookupError:
        return code
