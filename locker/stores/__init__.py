"""Where the locker keeps ciphertext: one protocol, a local folder and S3."""

from locker.stores.local import LocalStore
from locker.stores.protocol import ObjectStore, ObjectStream, check_key
from locker.stores.s3 import S3Store

__all__ = ["LocalStore", "ObjectStore", "ObjectStream", "S3Store", "check_key"]
