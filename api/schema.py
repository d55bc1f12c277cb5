"""Every domain package's tables, and the service's own (key fingerprints), for Alembic: one
metadata per package, one migration history."""

from api.models import metadata as api_metadata
from audit.models import metadata as audit_metadata
from identity.models import metadata as identity_metadata
from locker.models import metadata as locker_metadata
from signing.models import metadata as signing_metadata

target_metadata = [
    audit_metadata,
    identity_metadata,
    signing_metadata,
    locker_metadata,
    api_metadata,
]
