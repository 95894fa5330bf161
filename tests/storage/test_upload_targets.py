"""Presigned upload targets, checked the way the cloud services check them.

moto and the GCS emulator accept any well-formed signed URL, so the contract suite cannot
show that S3 or GCS would refuse a different Content-Type or an expired URL. Here each
signature is verified independently of the SDK that made it: SigV4 (HMAC) for S3, V4
(RSA) for GCS. A signature that holds for the signed content type and fails for another
is exactly what makes the services refuse the other one. Signing happens locally, so
these stores point at endpoints that are never contacted.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mediamill.settings import Settings
from mediamill.storage import ObjectStore, UploadTarget, open_store

from .conftest import service_account_info

KEY = "incoming/workspace_1/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
LIFETIME = timedelta(minutes=15)
S3_ENDPOINT = "https://objects.example.test:9443"
GCS_ENDPOINT = "https://gcs.example.test"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"  # the SigV4 test suite's example


def open_at(home: Path, url: str, **options: Any) -> ObjectStore:
    """A store on an endpoint that is never contacted, under the test's own ``home``."""
    return open_store(Settings(storage_url=url, storage_options=options))


def query_of(target: UploadTarget) -> dict[str, str]:
    """The signed URL's query parameters, decoded."""
    return dict(parse_qsl(urlsplit(target.url).query, keep_blank_values=True))


def canonical_request(target: UploadTarget, headers: dict[str, str], signature_param: str) -> str:
    """The canonical request both SigV4 and GCS V4 sign, for the headers actually sent."""
    parts = urlsplit(target.url)
    query = sorted(
        (quote(name, safe="-_.~"), quote(value, safe="-_.~"))
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name != signature_param
    )
    sent = {name.lower(): value.strip() for name, value in headers.items()}
    sent["host"] = parts.netloc
    signed = query_of(target)[signature_param.replace("Signature", "SignedHeaders")].split(";")
    return "\n".join(
        [
            target.method,
            parts.path,
            "&".join(f"{name}={value}" for name, value in query),
            "".join(f"{name}:{sent.get(name, '')}\n" for name in signed),
            ";".join(signed),
            "UNSIGNED-PAYLOAD",
        ]
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sigv4_holds(target: UploadTarget, headers: dict[str, str]) -> bool:
    """Whether S3 would accept the presigned URL sent with these headers."""
    query = query_of(target)
    scope = query["X-Amz-Credential"].split("/", 1)[1]
    date, region, service, _ = scope.split("/")
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            query["X-Amz-Date"],
            scope,
            _sha256(canonical_request(target, headers, "X-Amz-Signature")),
        ]
    )
    key = f"AWS4{SECRET_KEY}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, query["X-Amz-Signature"])


def gcs_v4_holds(
    target: UploadTarget, headers: dict[str, str], public_key: rsa.RSAPublicKey
) -> bool:
    """Whether GCS would accept the signed URL sent with these headers."""
    query = query_of(target)
    string_to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            query["X-Goog-Date"],
            query["X-Goog-Credential"].split("/", 1)[1],
            _sha256(canonical_request(target, headers, "X-Goog-Signature")),
        ]
    )
    try:
        public_key.verify(
            bytes.fromhex(query["X-Goog-Signature"]),
            string_to_sign.encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        return False
    return True


def signed_at(value: str) -> datetime:
    """The ``X-Amz-Date``/``X-Goog-Date`` timestamp."""
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


# -- S3 ---------------------------------------------------------------------------------


@pytest.fixture
def s3_store(home: Path) -> ObjectStore:
    return open_at(
        home,
        "s3://media-bucket/prod",
        key=ACCESS_KEY,
        secret=SECRET_KEY,
        endpoint_url=S3_ENDPOINT,
        client_kwargs={"region_name": "eu-west-3"},
    )


def test_s3_target_is_sigv4_with_the_content_type_signed(s3_store: ObjectStore) -> None:
    target = s3_store.upload_target(KEY, content_type="video/mp4", expires_in=LIFETIME)

    assert target is not None
    assert target.url.startswith(f"{S3_ENDPOINT}/media-bucket/prod/{KEY}?")
    assert target.headers == {"Content-Type": "video/mp4"}
    query = query_of(target)
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Credential"].endswith("/eu-west-3/s3/aws4_request")
    assert query["X-Amz-SignedHeaders"] == "content-type;host"
    assert sigv4_holds(target, target.headers)
    assert not sigv4_holds(target, {"Content-Type": "text/html"})
    assert not sigv4_holds(target, {})


def test_s3_target_expires_when_it_says(s3_store: ObjectStore) -> None:
    target = s3_store.upload_target(KEY, content_type="image/png", expires_in=LIFETIME)

    assert target is not None
    query = query_of(target)
    assert query["X-Amz-Expires"] == str(int(LIFETIME.total_seconds()))
    enforced = signed_at(query["X-Amz-Date"]) + LIFETIME
    assert target.expires_at <= enforced <= target.expires_at + timedelta(seconds=1)


def test_s3_keeps_an_explicit_signature_version(home: Path) -> None:
    store = open_at(
        home,
        "s3://media-bucket",
        key=ACCESS_KEY,
        secret=SECRET_KEY,
        endpoint_url=S3_ENDPOINT,
        config_kwargs={"signature_version": "s3"},
    )

    target = store.upload_target(KEY, content_type="image/png", expires_in=LIFETIME)

    assert target is not None
    assert "Signature" in query_of(target)
    assert "X-Amz-Signature" not in query_of(target)


def test_anonymous_s3_has_no_targets(home: Path) -> None:
    store = open_at(home, "s3://public-bucket", anon=True, endpoint_url=S3_ENDPOINT)

    assert store.upload_target(KEY, content_type="image/png", expires_in=LIFETIME) is None


# -- GCS --------------------------------------------------------------------------------


def test_gcs_target_is_v4_with_the_content_type_signed(
    home: Path, gcs_signing_credentials: Any, gcs_private_key: rsa.RSAPrivateKey
) -> None:
    store = open_at(
        home, "gs://media-bucket/prod", token=gcs_signing_credentials, endpoint_url=GCS_ENDPOINT
    )

    target = store.upload_target(KEY, content_type="model/gltf-binary", expires_in=LIFETIME)

    assert target is not None
    assert target.url.startswith(f"{GCS_ENDPOINT}/media-bucket/prod/{KEY}?")
    assert target.headers == {"Content-Type": "model/gltf-binary"}
    query = query_of(target)
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert query["X-Goog-Credential"].startswith(gcs_signing_credentials.service_account_email)
    assert query["X-Goog-SignedHeaders"] == "content-type;host"
    assert query["X-Goog-Expires"] == str(int(LIFETIME.total_seconds()))
    enforced = signed_at(query["X-Goog-Date"]) + LIFETIME
    assert target.expires_at <= enforced <= target.expires_at + timedelta(seconds=1)
    public_key = gcs_private_key.public_key()
    assert gcs_v4_holds(target, target.headers, public_key)
    assert not gcs_v4_holds(target, {"Content-Type": "text/html"}, public_key)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    assert not gcs_v4_holds(target, target.headers, other_key)


def test_gcs_credentials_that_cannot_sign_have_no_targets(home: Path) -> None:
    from google.oauth2.credentials import Credentials

    anonymous = open_at(home, "gs://media-bucket", token="anon", endpoint_url=GCS_ENDPOINT)
    user = open_at(
        home,
        "gs://media-bucket",
        token=Credentials(token="user-access-token"),
        endpoint_url=GCS_ENDPOINT,
    )

    assert anonymous.upload_target(KEY, content_type="image/png", expires_in=LIFETIME) is None
    assert user.upload_target(KEY, content_type="image/png", expires_in=LIFETIME) is None


def test_gcs_service_account_key_file_signs(home: Path, gcs_private_key: rsa.RSAPrivateKey) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = gcs_private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    store = open_at(
        home,
        "gs://media-bucket",
        token=service_account_info(pem),
        endpoint_url=GCS_ENDPOINT,
    )

    target = store.upload_target(KEY, content_type="image/png", expires_in=LIFETIME)

    assert target is not None
    assert gcs_v4_holds(target, target.headers, gcs_private_key.public_key())


# -- Azure ------------------------------------------------------------------------------


def test_azure_without_an_account_key_has_no_targets(home: Path) -> None:
    store = open_at(home, "az://media", account_name="mediamillprod", anon=True)

    assert store.upload_target(KEY, content_type="image/png", expires_in=LIFETIME) is None


def test_azure_target_is_a_create_write_blob_sas(home: Path) -> None:
    account_key = "bWVkaWFtaWxsLXRlc3Qta2V5LW5vdC1hLXJlYWwtb25l"
    store = open_at(
        home,
        "az://media/prod",
        connection_string=(
            "DefaultEndpointsProtocol=https;AccountName=mediamillprod;"
            f"AccountKey={account_key};EndpointSuffix=core.windows.net"
        ),
    )

    target = store.upload_target(KEY, content_type="image/png", expires_in=LIFETIME)

    assert target is not None
    assert target.url.startswith(f"https://mediamillprod.blob.core.windows.net/media/prod/{KEY}?")
    assert target.headers == {"Content-Type": "image/png", "x-ms-blob-type": "BlockBlob"}
    query = query_of(target)
    assert (query["sr"], query["sp"], query["spr"]) == ("b", "cw", "https")
    enforced = datetime.fromisoformat(query["se"].replace("Z", "+00:00"))
    assert target.expires_at <= enforced <= target.expires_at + timedelta(seconds=1)
    assert query["sig"]
