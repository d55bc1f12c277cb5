"""Opaque ids for locker records: `audit.ids`, where identity's records find them too."""

from audit.ids import ID_LENGTH as ID_LENGTH
from audit.ids import new_id as new_id
