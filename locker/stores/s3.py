"""The production object store: any S3 API (MinIO in docker-compose) through boto3.

An object of up to one part (8 MiB) goes up in one PutObject; a larger one streams through a
multipart upload, one part in memory at a time, and any failure, the caller's iterator's
included, aborts the upload so S3 keeps nothing of it. (If the abort itself cannot get through,
the parts stay invisible until the bucket's stale-upload expiry removes them: MinIO's default,
or an AbortIncompleteMultipartUpload lifecycle rule elsewhere; the orphan sweeper's
`remove_scraps` aborts them too, as it does those of a process killed mid-upload.) Reads
stream the response body block by block.

Request checksums are left to when S3 requires them: several S3-compatible servers refuse the
newer trailing-checksum headers, and the content is already authenticated end to end (each
chunk's GCM tag and the plaintext's SHA-256 recorded in the database).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, NoReturn

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ParamValidationError,
)
from urllib3.exceptions import HTTPError

from locker.errors import ObjectMissing, StoreUnavailable
from locker.stores.protocol import ObjectStream, check_key, check_prefix

MIB = 1024 * 1024
PART_SIZE = 8 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's smallest part but the last
MAX_PARTS = 10_000
READ_SIZE = 1 * MIB
_MISSING = frozenset({"NoSuchKey", "NotFound", "404"})


class S3Store:
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None,
        access_key: str,
        secret_key: str,
        region: str,
        path_style: bool = True,
        part_size: int = PART_SIZE,
        read_size: int = READ_SIZE,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"a part is at least {MIN_PART_SIZE} bytes")
        config = Config(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": "path" if path_style else "virtual"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "max_attempts": max_attempts},
            max_pool_connections=32,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # A session of its own: boto3's default session is shared process state, its clients
        # are thread-safe once made.
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )
        self._bucket = bucket
        self._part_size = part_size
        self._read_size = read_size

    def __repr__(self) -> str:
        return f"S3Store(bucket={self._bucket!r}, endpoint={self._client.meta.endpoint_url!r})"

    def ensure_bucket(self) -> None:
        """Create the bucket if there is none (a first start against a fresh MinIO)."""
        if self._bucket_exists():
            return
        region = self._client.meta.region_name
        where = (
            {}
            if region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        try:
            with self._errors(self._bucket):
                self._client.create_bucket(Bucket=self._bucket, **where)
        except StoreUnavailable:
            if not self._bucket_exists():  # else another replica created it meanwhile
                raise

    def _bucket_exists(self) -> bool:
        try:
            with self._errors(self._bucket):
                self._client.head_bucket(Bucket=self._bucket)
        except ObjectMissing:
            return False
        return True

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        check_key(key)
        source = _Source(chunks)
        part = source.take(self._part_size)  # the one part in memory, then refilled in place
        filled = len(part)
        if not source.more():
            with self._errors(key):
                self._client.put_object(Bucket=self._bucket, Key=key, Body=part)
            return filled
        with self._errors(key):
            upload = self._client.create_multipart_upload(Bucket=self._bucket, Key=key)
        try:
            return self._upload_parts(key, upload["UploadId"], source, part, filled)
        except BaseException:
            self._abort(key, upload["UploadId"])
            raise

    def _upload_parts(
        self, key: str, upload_id: str, source: _Source, part: bytearray, filled: int
    ) -> int:
        parts: list[dict[str, Any]] = []
        written = 0
        while True:
            last = not source.more()
            if last:
                del part[filled:]
            number = len(parts) + 1
            if number > MAX_PARTS:
                raise ValueError(f"{key!r} is larger than {MAX_PARTS} parts")
            with self._errors(key):
                sent = self._client.upload_part(
                    Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part
                )
            parts.append({"PartNumber": number, "ETag": sent["ETag"]})
            written += filled
            if last:
                break
            filled = source.fill(part)
        with self._errors(key):
            self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        return written

    def _abort(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(Exception):  # the original failure is the one to report
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)

    def get(self, key: str) -> Iterator[bytes]:
        check_key(key)
        with self._errors(key):
            body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"]
        return ObjectStream(self._blocks(body, key), body.close)

    def _blocks(self, body: Any, key: str) -> Iterator[bytes]:
        blocks = body.iter_chunks(self._read_size)
        while True:
            with self._errors(key):
                block = next(blocks, None)
            if block is None:
                break
            yield block
        body.close()

    def delete(self, key: str) -> None:
        check_key(key)
        with self._errors(key):
            self._client.delete_object(Bucket=self._bucket, Key=key)

    def exists(self, key: str) -> bool:
        check_key(key)
        try:
            with self._errors(key):
                self._client.head_object(Bucket=self._bucket, Key=key)
        except ObjectMissing:
            return False
        return True

    def keys(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=self._bucket, Prefix=prefix))
        while True:
            with self._errors(prefix):
                page = next(pages, None)
            if page is None:
                return
            for item in page.get("Contents", ()):
                yield item["Key"]

    def remove_scraps(self, prefix: str, before: datetime) -> int:
        """Abort multipart uploads under `prefix` begun before `before` and never completed:
        what a process killed mid-upload left (one that fails aborts its own). Their parts
        are invisible, but stored (and paid for) until aborted."""
        check_prefix(prefix)
        removed = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        pages = iter(paginator.paginate(Bucket=self._bucket, Prefix=prefix))
        while True:
            with self._errors(self._bucket):
                page = next(pages, None)
            if page is None:
                return removed
            for upload in page.get("Uploads", ()):
                if upload["Initiated"] >= before:
                    continue
                with self._errors(upload["Key"]):
                    try:
                        self._client.abort_multipart_upload(
                            Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                    except ClientError as error:
                        if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                            raise
                        continue  # completed or aborted meanwhile
                removed += 1

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Map boto3's failures onto the store's two: no such object, or the store failed."""
        try:
            yield
        except ClientError as error:
            _raise_mapped(error, key)
        except ParamValidationError:
            raise  # our bug, not the store's
        except (BotoCoreError, HTTPError, OSError) as error:
            raise StoreUnavailable(
                f"S3 did not answer for {key!r}: {type(error).__name__}: {error}"
            ) from error


def _raise_mapped(error: Any, key: str) -> NoReturn:
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
    if code in _MISSING:
        raise ObjectMissing(f"no object {key!r}") from error
    raise StoreUnavailable(f"S3 refused the request for {key!r}: {code} (HTTP {status})") from error


class _Source:
    """The caller's chunks, poured into part-sized buffers; one chunk is held over at most."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._held = memoryview(b"")

    def more(self) -> bool:
        """Whether any byte is left, pulling the next non-empty chunk if need be."""
        while not self._held:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._held = memoryview(chunk)
        return True

    def take(self, limit: int) -> bytearray:
        """Up to `limit` bytes, in a buffer grown as they come: a small object never costs the
        allocation of a whole part."""
        buffer = bytearray()
        while len(buffer) < limit and self.more():
            take = min(len(self._held), limit - len(buffer))
            buffer += self._held[:take]
            self._held = self._held[take:]
        return buffer

    def fill(self, buffer: bytearray) -> int:
        """Refill `buffer` in place from its start; how many bytes, fewer only at the end."""
        filled, size = 0, len(buffer)
        while filled < size and self.more():
            take = min(len(self._held), size - filled)
            buffer[filled : filled + take] = self._held[:take]
            self._held = self._held[take:]
            filled += take
        return filled
