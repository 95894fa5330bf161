"""Fixtures of the storage tests: one store per backend for the contract suite.

Adding a backend is adding a case to ``CASES``: a ``BackendCase`` gives a URL and options
for a fresh, empty root and a way to make one write fail part-way (for object stores, a
``ConnectionError`` from the SDK call that uploads the bytes). A backend on a service the
test setup starts (s3 on moto, gs on the GCS emulator, az on Azurite) is a ``ServiceCase``:
it names the service's fixture and builds its ``BackendCase`` from the running service.
"""

from __future__ import annotations

import contextlib
import errno
import resource
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mediamill.settings import Settings
from mediamill.storage import ObjectStore, open_store
from mediamill.storage.validation import is_reserved
from tests.services.objectstores import AzuriteService, GCSService, S3Service

# Larger than FILE_SIZE_LIMIT, so a write of it fails part-way; every other test object is
# smaller than the limit.
BIG = bytes(range(256)) * 1024
FILE_SIZE_LIMIT = 64 * 1024


@contextlib.contextmanager
def _file_size_limit() -> Iterator[None]:
    """Make the kernel refuse writes past FILE_SIZE_LIMIT bytes, as a full disk would."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@contextlib.contextmanager
def _memory_write_failure(monkeypatch: pytest.MonkeyPatch, store: ObjectStore) -> Iterator[None]:
    """Fail the write of object bytes, after the store has written its own metadata."""
    fs = store.fs
    original = fs.pipe_file

    def pipe_file(path: str, value: bytes, **kwargs: Any) -> None:
        if not is_reserved(path.rpartition("/")[2]):
            raise OSError(errno.ENOSPC, "simulated: out of memory store space", path)
        original(path, value, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(fs, "pipe_file", pipe_file)
        yield


# The SDK calls that carry an object's bytes to S3.
_S3_UPLOAD_CALLS = frozenset({"put_object", "upload_part"})


def _connection_lost(path: object) -> ConnectionError:
    """What the SDKs raise when the connection drops mid-upload, close enough."""
    return ConnectionError(f"simulated: connection lost while uploading {path}")


@contextlib.contextmanager
def _s3_upload_failure(monkeypatch: pytest.MonkeyPatch, store: ObjectStore) -> Iterator[None]:
    """Fail the PutObject/UploadPart request s3fs sends, as a dropped connection would."""
    fs = store.fs
    original = fs._call_s3

    async def call_s3(method: str, *args: Any, **kwargs: Any) -> Any:
        if method in _S3_UPLOAD_CALLS:
            raise _connection_lost(kwargs.get("Key"))
        return await original(method, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(fs, "_call_s3", call_s3)
        yield


@contextlib.contextmanager
def _gcs_upload_failure(monkeypatch: pytest.MonkeyPatch, store: ObjectStore) -> Iterator[None]:
    """Fail the upload request gcsfs sends to the ``/upload/`` endpoint."""
    fs = store.fs
    original = fs._call

    async def call(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if "/upload/" in path:
            raise _connection_lost(path)
        return await original(method, path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(fs, "_call", call)
        yield


@contextlib.contextmanager
def _azure_upload_failure(monkeypatch: pytest.MonkeyPatch, store: ObjectStore) -> Iterator[None]:
    """Fail the SDK's ``upload_blob``, which adlfs calls for every write."""
    from azure.storage.blob.aio import BlobClient

    async def upload_blob(self: BlobClient, *args: Any, **kwargs: Any) -> Any:
        raise _connection_lost(self.blob_name)

    with monkeypatch.context() as patch:
        patch.setattr(BlobClient, "upload_blob", upload_blob)
        yield


FailingWrites = Callable[[pytest.MonkeyPatch, ObjectStore], AbstractContextManager[None]]


@dataclass(frozen=True)
class BackendCase:
    """How the contract suite opens one backend and breaks its writes.

    ``upload_targets``: the backend hands out presigned upload targets.
    ``verifies_targets``: its service checks their signature, scope and expiry (Azurite
    does; moto and the GCS emulator accept any well-formed signed URL).
    """

    name: str
    url: Callable[[Path], str]
    options: dict[str, Any]
    failing_writes: FailingWrites
    upload_targets: bool = False
    verifies_targets: bool = False


# A service fixture's value and the test's request -> a fresh root's URL factory and options.
Connect = Callable[[Any, pytest.FixtureRequest], tuple[Callable[[Path], str], dict[str, Any]]]


@dataclass(frozen=True)
class ServiceCase:
    """A backend on a service the test setup starts: a BackendCase whose URL and options
    come from the running service, started on the first test that needs it."""

    name: str
    fixture: str
    connect: Connect
    failing_writes: FailingWrites
    upload_targets: bool = False
    verifies_targets: bool = False

    def resolve(self, request: pytest.FixtureRequest) -> BackendCase:
        """Start (or reuse) the service and open the case on it."""
        url, options = self.connect(request.getfixturevalue(self.fixture), request)
        return BackendCase(
            name=self.name,
            url=url,
            options=options,
            failing_writes=self.failing_writes,
            upload_targets=self.upload_targets,
            verifies_targets=self.verifies_targets,
        )


def _fresh_bucket(
    service: S3Service | GCSService | AzuriteService,
) -> Callable[[Path], str]:
    """A new, empty bucket or container per test, so no test sees another's objects."""
    return lambda tmp_path: service.new_storage_url()


def _connect_s3(
    service: S3Service, request: pytest.FixtureRequest
) -> tuple[Callable[[Path], str], dict[str, Any]]:
    """s3 on moto with its placeholder credentials."""
    return _fresh_bucket(service), service.storage_options()


def _connect_gcs(
    service: GCSService, request: pytest.FixtureRequest
) -> tuple[Callable[[Path], str], dict[str, Any]]:
    """gs on the emulator with service-account credentials, so uploads can be signed;
    the emulator ignores the bearer token they produce."""
    credentials = request.getfixturevalue("gcs_signing_credentials")
    return _fresh_bucket(service), {**service.storage_options(), "token": credentials}


def _connect_azure(
    service: AzuriteService, request: pytest.FixtureRequest
) -> tuple[Callable[[Path], str], dict[str, Any]]:
    """az on Azurite with the development account's key."""
    return _fresh_bucket(service), service.storage_options()


CASES: list[BackendCase | ServiceCase] = [
    BackendCase(
        name="file",
        url=lambda tmp_path: (tmp_path / "store").as_uri(),
        options={},
        failing_writes=lambda monkeypatch, store: _file_size_limit(),
    ),
    BackendCase(
        name="memory",
        url=lambda tmp_path: f"memory://mediamill-test-{uuid.uuid4().hex}",
        options={},
        failing_writes=_memory_write_failure,
    ),
    ServiceCase(
        name="s3",
        fixture="s3_service",
        connect=_connect_s3,
        failing_writes=_s3_upload_failure,
        upload_targets=True,
    ),
    ServiceCase(
        name="gs",
        fixture="gcs_service",
        connect=_connect_gcs,
        failing_writes=_gcs_upload_failure,
        upload_targets=True,
    ),
    ServiceCase(
        name="az",
        fixture="azurite_service",
        connect=_connect_azure,
        failing_writes=_azure_upload_failure,
        upload_targets=True,
        verifies_targets=True,
    ),
]


def only_backends(predicate: Callable[[BackendCase | ServiceCase], bool]) -> pytest.MarkDecorator:
    """Run a contract test on the backends the predicate picks, instead of on all."""
    selected = [case for case in CASES if predicate(case)]
    assert selected, "no backend is picked: the test would never run"
    return pytest.mark.parametrize(
        "backend", selected, ids=[case.name for case in selected], indirect=True
    )


def service_account_info(private_key_pem: str) -> dict[str, str]:
    """A throwaway service account's key file, as the Cloud console would download it."""
    return {
        "type": "service_account",
        "project_id": "mediamill-test",
        "private_key_id": "mediamill-test-key",
        "private_key": private_key_pem,
        "client_email": "uploads@mediamill-test.iam.gserviceaccount.com",
        "client_id": "100000000000000000000",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


@pytest.fixture(scope="session")
def gcs_private_key() -> rsa.RSAPrivateKey:
    """A fresh RSA key standing in for a service account's."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def gcs_signing_credentials(gcs_private_key: rsa.RSAPrivateKey) -> Any:
    """Service-account credentials that sign locally and never ask a token endpoint.

    Self-signed JWT access keeps gcsfs's token refresh on this machine; the emulator
    ignores the token anyway.
    """
    from google.oauth2 import service_account

    pem = gcs_private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    credentials = service_account.Credentials.from_service_account_info(
        service_account_info(pem),
        scopes=["https://www.googleapis.com/auth/devstorage.read_write"],
    )
    return credentials.with_always_use_jwt_access(True)


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def backend(request: pytest.FixtureRequest) -> BackendCase:
    """Each backend the contract suite runs against, its service started on first use."""
    case: BackendCase | ServiceCase = request.param
    return case.resolve(request) if isinstance(case, ServiceCase) else case


StoreFactory = Callable[..., ObjectStore]


@pytest.fixture
def store_factory(backend: BackendCase, tmp_path: Path, home: Path) -> Iterator[StoreFactory]:
    """Open stores on one fresh root of the backend, through settings like production."""
    url = backend.url(tmp_path)

    def make(cdn_base_url: str | None = None) -> ObjectStore:
        settings = Settings(
            storage_url=url, storage_options=backend.options, cdn_base_url=cdn_base_url
        )
        return open_store(settings)

    yield make
    # Shared backends (memory, the emulators) outlive the test: empty the root.
    cleaner = make()
    cleaner.delete_many([listed.key for listed in cleaner.list_prefix("")])


@pytest.fixture
def store(store_factory: StoreFactory) -> ObjectStore:
    """A store on a fresh, empty root, without a CDN in front."""
    return store_factory()
