"""S3-compatible, GCS and Azure Blob emulators for the tests, started once per session.

Each fixture starts its service as a subprocess on a free loopback port the first time a
test asks for it, waits until it answers, and stops it when the session ends:

- ``s3_service``: moto's standalone server (``python -m moto.server``);
- ``gcs_service``: the ``gcp-storage-emulator`` package, in memory;
- ``azurite_service``: Azurite's blob service from ``tests/services/node_modules``
  (``make test`` installs it: ``npm ci --prefix tests/services``), in memory.

A missing package or binary fails the test that asked for it, saying how to install it:
these services are part of the test setup and never a reason to skip.

Each fixture gives a small frozen record with the endpoint and credentials,
``storage_options()`` (a JSON-serialisable dict, as ``MEDIAMILL_STORAGE_OPTIONS`` holds
it) and ``new_bucket()``, which creates a fresh, empty bucket (a container on Azure) and
returns its name. ``new_storage_url()`` does both and returns the store URL::

    def test_publish_on_s3(s3_service: S3Service) -> None:
        settings = Settings(
            storage_url=s3_service.new_storage_url(),  # "s3://mediamill-1f2e..."
            storage_options=s3_service.storage_options(),
        )
        store = open_store(settings)

The same works with ``gcs_service`` (``gs://bucket``) and ``azurite_service``
(``az://container``). While the GCS emulator runs, fsspec's ``gs://`` opens gcsfs's plain
JSON-API filesystem, as mediamill's backend does (see ``_plain_gcsfs``).

Subprocesses of a test (a CLI, a Prefect worker) get the same settings through
``MEDIAMILL_STORAGE_URL`` and ``MEDIAMILL_STORAGE_OPTIONS`` set to
``json.dumps(service.storage_options())``.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HOST = "127.0.0.1"
SERVICES_DIR = Path(__file__).resolve().parent
NODE_MODULES = SERVICES_DIR / "node_modules"

# How long a service may take to answer after it starts; Azurite on a busy 2-core
# machine is the slowest, at a few seconds.
STARTUP_TIMEOUT = 60.0
# Attempts at starting a service, each on a new port, in case another process took the
# port between choosing it and the service binding it.
START_ATTEMPTS = 3
LOG_TAIL = 4000
# Services listen on loopback: never send their requests through a configured proxy.
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# Azurite's well-known development account, published in Azure's documentation.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def _bucket_name() -> str:
    """A name valid as an S3 or GCS bucket and an Azure container, unique to this call."""
    return f"mediamill-{uuid.uuid4().hex[:20]}"


@dataclass(frozen=True)
class S3Service:
    """moto's S3 on a loopback port; it accepts any credentials, these are placeholders."""

    endpoint_url: str
    access_key_id: str = "mediamill-test"
    secret_access_key: str = "mediamill-test-secret"
    region: str = "us-east-1"
    scheme = "s3"

    def storage_options(self) -> dict[str, Any]:
        """s3fs options reaching this service with these credentials."""
        return {
            "key": self.access_key_id,
            "secret": self.secret_access_key,
            "endpoint_url": self.endpoint_url,
            "client_kwargs": {"region_name": self.region},
        }

    def client(self) -> Any:
        """A boto3 S3 client on this service, for set-up and inspection in tests."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )

    def new_bucket(self) -> str:
        """Create a fresh, empty bucket and return its name."""
        name = _bucket_name()
        self.client().create_bucket(Bucket=name)
        return name

    def new_storage_url(self) -> str:
        """``s3://`` URL of a fresh, empty bucket."""
        return f"{self.scheme}://{self.new_bucket()}"


@dataclass(frozen=True)
class GCSService:
    """gcp-storage-emulator on a loopback port; it needs no credentials."""

    endpoint_url: str
    project: str = "mediamill-test"
    scheme = "gs"

    def storage_options(self) -> dict[str, Any]:
        """gcsfs options reaching this service anonymously."""
        return {"endpoint_url": self.endpoint_url, "token": "anon", "project": self.project}

    def new_bucket(self) -> str:
        """Create a fresh, empty bucket through the JSON API and return its name."""
        name = _bucket_name()
        request = urllib.request.Request(
            f"{self.endpoint_url}/storage/v1/b?project={self.project}",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with _LOOPBACK.open(request, timeout=30) as response:
            if response.status != 200:
                raise AssertionError(f"creating bucket {name}: HTTP {response.status}")
        return name

    def new_storage_url(self) -> str:
        """``gs://`` URL of a fresh, empty bucket."""
        return f"{self.scheme}://{self.new_bucket()}"


@dataclass(frozen=True)
class AzuriteService:
    """Azurite's blob service on a loopback port, with the well-known development account."""

    blob_endpoint: str
    account_name: str = AZURITE_ACCOUNT
    account_key: str = AZURITE_KEY
    scheme = "az"

    @property
    def connection_string(self) -> str:
        """The connection string the Azure SDKs and adlfs take."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
            f"AccountKey={self.account_key};BlobEndpoint={self.blob_endpoint};"
        )

    def storage_options(self) -> dict[str, Any]:
        """adlfs options reaching this service with the account key."""
        return {
            "account_name": self.account_name,
            "account_key": self.account_key,
            "connection_string": self.connection_string,
        }

    def new_bucket(self) -> str:
        """Create a fresh, empty container and return its name."""
        from azure.storage.blob import BlobServiceClient

        name = _bucket_name()
        with BlobServiceClient.from_connection_string(self.connection_string) as client:
            client.create_container(name)
        return name

    def new_storage_url(self) -> str:
        """``az://`` URL of a fresh, empty container."""
        return f"{self.scheme}://{self.new_bucket()}"


# -- running a service process --------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


def _prctl() -> Callable[..., int] | None:
    """Linux's prctl, looked up here so the forked child only has to call it."""
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if pytest dies without running finalizers."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _answers(url: str) -> bool:
    """Whether an HTTP server answers at the URL, whatever the status."""
    try:
        with _LOOPBACK.open(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def _tail(log: Path) -> str:
    """The end of a service's log, for failure messages."""
    try:
        text = log.read_text(errors="replace")
    except OSError as e:
        return f"(no log: {e})"
    return text[-LOG_TAIL:] or "(empty log)"


class ServiceProcess:
    """One service subprocess in its own process group, with its output in a log file."""

    def __init__(self, name: str, argv: list[str], log: Path, cwd: Path) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def wait_until_answering(self, url: str, timeout: float) -> bool:
        """Poll the URL until it answers (True), or the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if _answers(url):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL it if it lingers."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            # Anything the service itself started shares its process group.
            os.killpg(self.process.pid, signal.SIGKILL)


@contextlib.contextmanager
def run_service(
    name: str,
    command: Callable[[int], list[str]],
    health_url: Callable[[int], str],
    log_dir: Path,
    cwd: Path,
) -> Iterator[int]:
    """Start the service on a free port, yield the port once it answers, always stop it."""
    log = log_dir / f"{name.lower().replace(' ', '-')}.log"
    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        service = ServiceProcess(name, command(port), log, cwd)
        try:
            if service.wait_until_answering(health_url(port), STARTUP_TIMEOUT):
                yield port
                return
            exited = service.process.poll() is not None
        finally:
            service.stop()
        if not exited or attempt == START_ATTEMPTS:
            state = "exited" if exited else f"did not answer within {STARTUP_TIMEOUT:.0f} s"
            pytest.fail(
                f"{name} {state} (attempt {attempt}, port {port}); its log:\n{_tail(log)}",
                pytrace=False,
            )


def _require_module(module: str, package: str) -> None:
    """Fail loudly, with the fix, when a Python package a service needs is missing."""
    if importlib.util.find_spec(module) is None:
        pytest.fail(
            f"the Python package {package} is missing; it is a dev dependency: "
            "run `make install` (`make test` does it)",
            pytrace=False,
        )


def _azurite_command() -> list[str]:
    """Node and the installed azurite-blob script, or a failure saying how to install them."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js is missing (Azurite needs it); install the nodejs Debian package",
            pytrace=False,
        )
    script = NODE_MODULES / ".bin" / "azurite-blob"
    if not script.exists():
        pytest.fail(
            f"Azurite is not installed in {NODE_MODULES}: "
            "run `make node-packages` (`make test` does it)",
            pytrace=False,
        )
    return [node, str(script.resolve())]


# -- the fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Service]:
    """moto's standalone S3 server for the session."""
    _require_module("moto.server", "moto[server]")
    _require_module("boto3", "boto3 (with moto[server])")
    logs = tmp_path_factory.mktemp("s3-service")
    with run_service(
        "moto S3 server",
        lambda port: [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
        lambda port: f"http://{HOST}:{port}/moto-api/",
        logs,
        logs,
    ) as port:
        yield S3Service(endpoint_url=f"http://{HOST}:{port}")


@contextlib.contextmanager
def _plain_gcsfs() -> Iterator[None]:
    """Point fsspec's ``gs``/``gcs`` at gcsfs's JSON-API filesystem while the emulator runs.

    gcsfs's default filesystem first asks the gRPC storage-control API (over TLS) for the
    bucket's layout, which an HTTP emulator cannot answer: each call would wait out a 60 s
    retry budget. mediamill's GCS backend uses the plain filesystem for the same reason;
    this makes tests that open ``gs://`` URLs through fsspec directly behave the same, in
    this process and, through the environment variable gcsfs reads, in subprocesses.
    """
    from fsspec.registry import _registry, register_implementation
    from gcsfs.core import GCSFileSystem

    saved = {name: _registry.get(name) for name in ("gs", "gcs")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        for name in saved:
            register_implementation(name, GCSFileSystem, clobber=True)
        try:
            yield
        finally:
            for name, previous in saved.items():
                if previous is None:
                    _registry.pop(name, None)
                else:
                    register_implementation(name, previous, clobber=True)


@pytest.fixture(scope="session")
def gcs_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSService]:
    """gcp-storage-emulator for the session, keeping everything in memory."""
    _require_module("gcp_storage_emulator", "gcp-storage-emulator")
    _require_module("gcsfs", "gcsfs (the mediamill[cloud] extra)")
    logs = tmp_path_factory.mktemp("gcs-service")
    with (
        _plain_gcsfs(),
        run_service(
            "GCS emulator",
            lambda port: [
                sys.executable,
                "-m",
                "gcp_storage_emulator",
                "start",
                "--host",
                HOST,
                "--port",
                str(port),
                "--in-memory",
            ],
            lambda port: f"http://{HOST}:{port}/",
            logs,
            logs,
        ) as port,
    ):
        yield GCSService(endpoint_url=f"http://{HOST}:{port}")


@pytest.fixture(scope="session")
def azurite_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteService]:
    """Azurite's blob service for the session, keeping everything in memory."""
    command = _azurite_command()
    _require_module("azure.storage.blob", "azure-storage-blob (with adlfs)")
    workspace = tmp_path_factory.mktemp("azurite")
    with run_service(
        "Azurite",
        lambda port: [
            *command,
            "--blobHost",
            HOST,
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ],
        lambda port: f"http://{HOST}:{port}/{AZURITE_ACCOUNT}?comp=list",
        workspace,
        workspace,
    ) as port:
        yield AzuriteService(blob_endpoint=f"http://{HOST}:{port}/{AZURITE_ACCOUNT}")
