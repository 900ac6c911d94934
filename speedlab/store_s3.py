"""The S3 backend: Amazon S3 or an S3-compatible server (MinIO, moto, Ceph…) through boto3.

Paginated listings, ``put_object(IfNoneMatch="*")`` as the conditional put, ``IfMatch`` on the
ETag as compare-and-swap, botocore's ``standard`` retry mode, and errors that say what to do.
boto3 is imported when a store is made, not when this module is imported. :func:`speedlab.store.open_store`
makes one from ``s3://`` or ``s3://?endpoint_url=http://host:port&region=…``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from datetime import timezone
from typing import Any

from .errors import (
    BucketNotFound,
    ConfigError,
    CredentialsInvalid,
    CredentialsRefused,
    ObjectNotFound,
    StoreError,
    StoreUnavailable,
)
from .storebase import ObjectInfo

__all__ = ["S3Store"]


class S3Store:
    """Amazon S3 or an S3-compatible server, through boto3.

    Parameters
    ----------
    endpoint_url : str, optional
        For S3-compatible servers (MinIO, moto, Ceph…); ``None`` is AWS.
    region : str, optional
        Region name; ``None`` lets boto3 find it (``AWS_REGION``, profile), else ``us-east-1``.
    access_key_id, secret_access_key, session_token, profile : str, optional
        Credentials; ``None`` lets boto3 use its usual chain (environment, profile, role).
    max_attempts : int
        Attempts per request under botocore's ``standard`` retry mode.
    max_pool_connections : int
        HTTP connections kept for parallel requests.
    connect_timeout_s, read_timeout_s : float
        Socket timeouts [s].
    """

    def __init__(self, endpoint_url: str | None = None, region: str | None = None,
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 session_token: str | None = None, profile: str | None = None,
                 max_attempts: int = 4, max_pool_connections: int = 32,
                 connect_timeout_s: float = 5.0, read_timeout_s: float = 30.0) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:  # pragma: no cover - boto3 is a dependency, but may be trimmed
            raise ConfigError("the S3 store needs boto3: pip install 'speedlab[s3]' or pip install boto3") from None
        self.endpoint_url = endpoint_url
        self.region = region
        query = {k: v for k, v in (("endpoint_url", endpoint_url), ("region", region)) if v}
        self.url = "s3://" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        if bool(access_key_id) != bool(secret_access_key):  # botocore: a PartialCredentialsError traceback
            given, missing = (("access_key_id", "secret_access_key") if access_key_id
                              else ("secret_access_key", "access_key_id"))
            raise ConfigError(f"S3 credentials need both access_key_id and secret_access_key, but only "
                              f"{given} is given: add {missing} (store URL or [s3]), or give neither to "
                              "use the AWS environment or profile")
        from botocore.exceptions import PartialCredentialsError, ProfileNotFound
        self._keys = (access_key_id, secret_access_key, session_token)
        try:
            session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
            self._session = session
        except ProfileNotFound:
            raise ConfigError(f"AWS profile {profile!r} is not in ~/.aws/config or ~/.aws/credentials: "
                              "name another profile, or give [s3] keys instead") from None
        try:
            self._client = session.client(
                "s3", endpoint_url=endpoint_url, region_name=region or session.region_name or "us-east-1",
                aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                aws_session_token=session_token,
                config=Config(retries={"mode": "standard", "max_attempts": max_attempts},
                              max_pool_connections=max_pool_connections,
                              connect_timeout=connect_timeout_s, read_timeout=read_timeout_s,
                              s3={"addressing_style": "path"} if endpoint_url else None),
            )
        except PartialCredentialsError as exc:  # e.g. only AWS_ACCESS_KEY_ID in the environment
            raise ConfigError(f"S3 credentials are incomplete ({exc}): give both the key id and the "
                              "secret, or neither") from None

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    #: No folder on this machine holds the buckets (see :attr:`LocalStore.local_root`).
    local_root = None

    @property
    def client(self):
        """The underlying boto3 S3 client (for infrastructure tools)."""
        return self._client

    def credentials(self) -> tuple[str, str, str | None] | None:
        """``(access_key_id, secret_access_key, session_token)`` the client signs with, or
        ``None`` if it has none. Given keys, or what boto3's chain found when the client was
        made (cached by the session: no new look-up)."""
        if self._keys[0] and self._keys[1]:
            return self._keys[0], self._keys[1], self._keys[2]
        found = self._session.get_credentials()
        if found is None:
            return None
        frozen = found.get_frozen_credentials()
        return frozen.access_key, frozen.secret_key, frozen.token

    def _translate(self, exc: Exception, bucket: str, key: str | None = None) -> StoreError:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )
        where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
        endpoint = self.endpoint_url or "AWS S3"
        if isinstance(exc, NoCredentialsError):
            return CredentialsInvalid(f"no AWS credentials found for {where}: set AWS_ACCESS_KEY_ID/"
                                      "AWS_SECRET_ACCESS_KEY, a profile, or [s3] keys in speedlab.toml")
        if isinstance(exc, (EndpointConnectionError, ReadTimeoutError, ConnectTimeoutError)):
            return StoreUnavailable(f"cannot reach {endpoint} for {where}: {exc}")
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in ("NoSuchKey", "404", "NotFound") and key:
                return ObjectNotFound(f"no object {where}")
            if code == "NoSuchBucket" or (code in ("404", "NotFound") and not key):
                return BucketNotFound(f"bucket {bucket!r} does not exist at {endpoint}: create it "
                                      "(speedlab infra apply) or name another in [buckets]")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"):
                return CredentialsInvalid(f"{endpoint} refused access to {where} ({code}): check the "
                                          "credentials (access key, secret, token expiry, clock)")
            if code in ("AccessDenied", "403", "AllAccessDisabled"):  # this request, not every request
                return CredentialsRefused(f"{endpoint} refused access to {where} ({code}): check the "
                                          "credentials and that their policy allows this")
            if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError"):
                return StoreUnavailable(f"{endpoint} failed for {where}: {code} (HTTP {status})")
            return StoreError(f"{endpoint} refused {where}: {code} (HTTP {status}) {exc}")
        if isinstance(exc, BotoCoreError):
            return StoreUnavailable(f"S3 request for {where} failed: {exc}")
        return StoreError(f"S3 request for {where} failed: {exc}")

    def _call(self, bucket: str, key: str | None, fn, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return fn(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(exc, bucket, key) from None

    def get(self, bucket: str, key: str) -> bytes:
        response = self._call(bucket, key, self._client.get_object, Bucket=bucket, Key=key)
        try:
            return response["Body"].read()
        except Exception as exc:  # a connection dropped mid-body
            raise StoreUnavailable(f"reading s3://{bucket}/{key} failed: {exc}") from None

    def put(self, bucket: str, key: str, data: bytes) -> str | None:
        """Write the object; return its ETag (the version :meth:`get_versioned` and listings give)."""
        response = self._call(bucket, key, self._client.put_object, Bucket=bucket, Key=key, Body=data,
                              ContentType="application/json")
        return response.get("ETag") if isinstance(response, dict) else None

    def put_deferred(self, bucket: str, key: str, data: bytes) -> str | None:
        """:meth:`put`: an S3 PUT is durable once it is answered, so nothing is deferred."""
        return self.put(bucket, key, data)

    def sync_writes(self) -> None:
        """Nothing to do: every answered PUT is durable already (see :meth:`put_deferred`)."""

    def put_if_absent(self, bucket: str, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError
        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*",
                                    ContentType="application/json")
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise self._translate(exc, bucket, key) from None
        except Exception as exc:
            from botocore.exceptions import BotoCoreError
            if isinstance(exc, BotoCoreError):
                raise self._translate(exc, bucket, key) from None
            raise
        return True

    def get_versioned(self, bucket: str, key: str) -> tuple[bytes, str | None]:
        try:
            response = self._call(bucket, key, self._client.get_object, Bucket=bucket, Key=key)
        except ObjectNotFound:
            return b"", None
        try:
            return response["Body"].read(), response.get("ETag")
        except Exception as exc:  # a connection dropped mid-body
            raise StoreUnavailable(f"reading s3://{bucket}/{key} failed: {exc}") from None

    def put_if_version(self, bucket: str, key: str, data: bytes, version: str | None) -> bool:
        """``IfMatch`` the ETag (``IfNoneMatch="*"`` for ``None``); a 412 (or a 404: the
        object went away) means another writer came first."""
        from botocore.exceptions import BotoCoreError, ClientError
        condition = {"IfNoneMatch": "*"} if version is None else {"IfMatch": version}
        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=data, **condition,
                                    ContentType="application/octet-stream")
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409", "NoSuchKey", "404"):
                return False
            raise self._translate(exc, bucket, key) from None
        except BotoCoreError as exc:
            raise self._translate(exc, bucket, key) from None
        return True

    def list(self, bucket: str, prefix: str = "", *, start_after: str = "",
             before: str | None = None) -> Iterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        kwargs = {"StartAfter": start_after} if start_after else {}

        def pages() -> builtins.list[dict]:
            out = []
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix, **kwargs):
                out.append(page)
                contents = page.get("Contents") or [{}]
                if before is not None and contents[-1].get("Key", "") >= before:
                    break  # keys come in order: the rest is past the range
            return out

        out = [ObjectInfo(item["Key"], int(item["Size"]), item["LastModified"].astimezone(timezone.utc),
                          item.get("ETag")) for page in self._call(bucket, None, pages)
               for item in page.get("Contents", []) if before is None or item["Key"] < before]
        out.sort(key=lambda info: info.key)
        return iter(out)

    def list_prefixes(self, bucket: str, prefix: str = "") -> builtins.list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = self._call(bucket, None, lambda: list(
            paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")))
        return sorted(p["Prefix"] for page in pages for p in page.get("CommonPrefixes", []))

    def delete(self, bucket: str, key: str) -> None:
        self._call(bucket, key, self._client.delete_object, Bucket=bucket, Key=key)

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self._call(bucket, None, self._client.head_bucket, Bucket=bucket)
        except BucketNotFound:
            return False
        return True

    def create_bucket(self, bucket: str) -> bool:
        if self.bucket_exists(bucket):
            return False
        kwargs: dict[str, Any] = {"Bucket": bucket}
        region = self._client.meta.region_name
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        self._call(bucket, None, self._client.create_bucket, **kwargs)
        return True
