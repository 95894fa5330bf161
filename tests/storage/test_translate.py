"""Lower-level exceptions map onto the storage tree, using the errors the SDKs really raise."""

from __future__ import annotations

import errno
from typing import Any

import aiohttp
import botocore.exceptions
import pytest
import requests
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from gcsfs.retry import HttpError, validate_response
from s3fs.errors import translate_boto_error

from mediamill.storage.errors import (
    ObjectNotFound,
    StorageError,
    TransientStorageError,
)
from mediamill.storage.translate import storage_errors, translate


def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return botocore.exceptions.ClientError(response, "PutObject")


def gcs_error(status: int) -> BaseException:
    try:
        validate_response(status, b'{"error": {"message": "boom"}}', "bucket/key")
    except Exception as e:
        return e
    raise AssertionError("validate_response accepted an error status")


def azure_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message="boom")
    error.status_code = status
    return error


def caused(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


TRANSIENT = [
    TimeoutError("timed out"),
    ConnectionResetError(errno.ECONNRESET, "reset"),
    BrokenPipeError(errno.EPIPE, "broken pipe"),
    OSError(errno.EAGAIN, "try again"),
    translate_boto_error(client_error("SlowDown", 503)),
    translate_boto_error(client_error("InternalError", 500)),
    translate_boto_error(client_error("ServiceUnavailable", 503)),
    translate_boto_error(client_error("RequestTimeout", 400)),
    client_error("ThrottlingException", 400),
    client_error("Whatever", 502),
    botocore.exceptions.EndpointConnectionError(endpoint_url="http://s3.invalid"),
    botocore.exceptions.ReadTimeoutError(endpoint_url="http://s3.invalid"),
    aiohttp.ServerDisconnectedError(),
    gcs_error(503),
    gcs_error(429),
    gcs_error(502),
    HttpError({"code": 500, "message": "backend"}),
    requests.ConnectionError("refused"),
    ServiceRequestError("no route"),
    ServiceResponseError("connection dropped"),
    azure_error(503),
    caused(RuntimeError("Failed to remove"), ServiceRequestError("no route")),
]

PERMANENT = [
    PermissionError(errno.EACCES, "denied"),
    OSError(errno.ENOSPC, "disk full"),
    OSError(errno.EROFS, "read-only"),
    translate_boto_error(client_error("AccessDenied", 403)),
    translate_boto_error(client_error("InvalidArgument", 400)),
    gcs_error(403),
    HttpError({"code": 400, "message": "bad"}),
    azure_error(409),
]

MISSING = [
    FileNotFoundError(errno.ENOENT, "gone"),
    IsADirectoryError(errno.EISDIR, "a directory"),
    NotADirectoryError(errno.ENOTDIR, "under a file"),
    translate_boto_error(client_error("NoSuchKey", 404)),
    gcs_error(404),
    azure_error(404),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=repr)
def test_retryable_failures_become_transient(error: BaseException) -> None:
    assert isinstance(translate(error, "put"), TransientStorageError)


@pytest.mark.parametrize("error", PERMANENT, ids=repr)
def test_permanent_failures_are_not_transient(error: BaseException) -> None:
    mapped = translate(error, "put")
    assert type(mapped) is StorageError


@pytest.mark.parametrize("error", MISSING, ids=repr)
def test_absence_becomes_object_not_found(error: BaseException) -> None:
    assert isinstance(translate(error, "get"), ObjectNotFound)


def test_storage_errors_chains_the_original() -> None:
    original = TimeoutError("timed out")
    expected = pytest.raises(TransientStorageError, match="get 'a': TimeoutError")
    with expected as caught, storage_errors("get 'a'"):
        raise original
    assert caught.value.__cause__ is original


@pytest.mark.parametrize("bug", [ValueError("bad"), KeyError("k"), TypeError("t"), RuntimeError()])
def test_bugs_pass_through_unchanged(bug: Exception) -> None:
    with pytest.raises(type(bug)) as caught, storage_errors("put"):
        raise bug
    assert caught.value is bug


def test_storage_errors_pass_through_unchanged() -> None:
    error = ObjectNotFound("already mapped")
    with pytest.raises(ObjectNotFound) as caught, storage_errors("get"):
        raise error
    assert caught.value is error


def test_absence_during_a_write_is_not_object_not_found() -> None:
    mapped = translate(FileNotFoundError(errno.ENOENT, "no such bucket"), "put", lookup=False)
    assert type(mapped) is StorageError
