"""Settings for every layer, read from ``MEDIAMILL_*`` environment variables.

A leaf module: it imports nothing of ours, so any layer may read it. The defaults make an
embedded setup (SQLite catalog and ``file://`` storage under ``MEDIAMILL_HOME``) work with no
configuration at all.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

STORAGE_SCHEMES = ("file", "memory", "s3", "gs", "gcs", "az", "abfs")
# "postgres" is the spelling Heroku and other platforms hand out; the engine reads it as
# "postgresql".
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")


class Settings(BaseSettings):
    """Every knob of mediamill; see the configuration table in the README."""

    model_config = SettingsConfigDict(env_prefix="MEDIAMILL_", extra="ignore")

    home: Path = Field(Path(".mediamill"), description="Where embedded state lives.")
    database_url: str | None = Field(None, description="SQLAlchemy URL of the catalog.")
    storage_url: str | None = Field(None, description="fsspec URL of the object store root.")
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="JSON object handed to the fsspec filesystem."
    )
    cdn_base_url: str | None = Field(None, description="Public base URL in front of the store.")
    max_upload_bytes: int = Field(200 * 1024 * 1024, gt=0, description="Cap on upload size.")
    max_image_pixels: int = Field(
        120_000_000, gt=0, description="Cap on width x height, checked from the header."
    )
    max_image_side: int = Field(30_000, gt=0, description="Cap on either image dimension.")
    max_animation_pixels: int = Field(
        500_000_000, gt=0, description="Cap on width x height x frames of animations."
    )
    max_video_seconds: int = Field(600, gt=0, description="Cap on a video's duration.")
    max_video_side: int = Field(4096, gt=0, description="Cap on either video dimension.")
    video_hls: bool = Field(False, description="Also make an HLS ladder for every video.")
    max_model_faces: int = Field(5_000_000, gt=0, description="Cap on a 3D model's faces.")
    max_model_vertices: int = Field(5_000_000, gt=0, description="Cap on a 3D model's vertices.")
    max_document_pages: int = Field(5000, gt=0, description="Cap on a PDF's page count.")
    decode_timeout_seconds: int = Field(
        300, gt=0, description="Wall-clock limit of one image job, isolated decode or ffmpeg call."
    )
    decode_memory_mb: int = Field(
        3072, gt=0, description="Memory limit of one pixel worker and of each isolated decode."
    )
    retention_days: int = Field(
        30, gt=0, description="How long a soft-deleted media can be restored before purge."
    )
    delivery_retention_days: int = Field(
        30,
        gt=0,
        description=(
            "How long an accepted webhook event's id is remembered, so a redelivery is"
            " acknowledged and not run again; the purge forgets older ones."
        ),
    )
    upload_ttl_hours: int = Field(
        24, gt=0, description="Age after which a never-attached upload is soft-deleted."
    )
    orphan_grace_minutes: int = Field(
        60, gt=0, description="Age under which an unreferenced object is never swept."
    )
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, gt=0, description="Processes for pixel work."
    )
    batch_size: int = Field(64, gt=0, description="Assets per backfill task.")
    workspace_concurrency: int = Field(
        0,
        ge=0,
        description="Ingest runs one workspace may have working at once (0: no limit).",
    )
    prefect_port: int = Field(4200, gt=0, lt=65536, description="Port of the local Prefect server.")
    api_public_url: str = Field(
        "http://127.0.0.1:8000", description="Base URL clients reach the API at (upload links)."
    )
    secret_key: str | None = Field(
        None, description="Signs local upload links; generated under HOME when unset."
    )
    dispatch: str = Field(
        "auto",
        pattern="^(auto|deployments|embedded)$",
        description="How API events start flows: deployments on a Prefect server, or embedded.",
    )
    dispatch_wait_ms: int = Field(
        25, ge=0, description="How long an API answer waits for Prefect to create its run."
    )
    dispatch_backlog: int = Field(
        256,
        gt=0,
        description="Runs waiting to start before new API events are refused (503, Retry-After).",
    )
    dispatch_shutdown_seconds: float = Field(
        10.0,
        ge=0,
        description="How long a stopping API lets waiting run starts finish; the ones still "
        "queued then are left to the next API process.",
    )
    dispatch_retry_seconds: float = Field(
        300.0,
        gt=0,
        description="Age at which an accepted webhook event or API upload whose run does not "
        "exist yet is started again by an API process (the one that accepted it stopped or "
        "died first).",
    )
    graphql_introspection: bool = Field(True, description="Serve GraphQL schema introspection.")
    graphql_max_depth: int = Field(8, gt=0, description="Deepest GraphQL selection accepted.")
    graphql_max_first: int = Field(100, gt=0, description="Largest page a connection serves.")
    graphql_max_aliases: int = Field(30, gt=0, description="Most aliases in one GraphQL document.")
    graphql_max_cost: int = Field(
        5000, gt=0, description="Most objects one GraphQL document may ask for."
    )
    webhook_tolerance_seconds: int = Field(
        300, gt=0, description="Accepted clock skew of a webhook signature's timestamp."
    )
    staged_upload_ttl_minutes: int = Field(
        60, gt=0, description="How long a staged upload target accepts its PUT."
    )
    fetch_timeout_seconds: int = Field(60, gt=0, description="Wall-clock cap of one URL download.")
    fetch_max_redirects: int = Field(5, ge=0, description="Redirect hops a URL download follows.")
    fetch_allow_networks: list[str] = Field(
        default_factory=list,
        description="JSON list of non-public CIDRs URL downloads may reach (default: none).",
    )

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = urlsplit(value).scheme.split("+", 1)[0]
        if scheme not in DATABASE_SCHEMES:
            raise ValueError(
                f"unsupported database URL scheme {scheme!r}; use sqlite or postgresql"
            )
        # SQLAlchemy ends the password at its first "@": with a second one, the rest of the
        # password would be taken for the host and shown in logs and error messages. The
        # message never repeats the URL, which holds the password.
        if scheme != "sqlite" and value.split("?", 1)[0].count("@") > 1:
            raise ValueError(
                "the database URL has more than one '@': percent-encode '@' in the user "
                "name or password as %40"
            )
        return value

    @field_validator("storage_url")
    @classmethod
    def _known_storage(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = urlsplit(value).scheme or "file"
        if scheme not in STORAGE_SCHEMES:
            choices = ", ".join(STORAGE_SCHEMES)
            raise ValueError(f"unsupported storage URL scheme {scheme!r}; use one of {choices}")
        return value

    @field_validator("cdn_base_url")
    @classmethod
    def _http_cdn(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("CDN base URL must be an absolute http(s) URL")
        return value.rstrip("/")

    @cached_property
    def resolved_database_url(self) -> str:
        """The catalog URL, defaulting to SQLite under ``home``."""
        return self.database_url or f"sqlite:///{self.home / 'catalog.db'}"

    @cached_property
    def resolved_storage_url(self) -> str:
        """The store root URL, defaulting to ``file://`` under ``home``."""
        return self.storage_url or (self.home / "storage").as_uri()

    def own_state_paths(self) -> list[Path]:
        """Files and folders holding mediamill's own state, never to be ingested as uploads."""
        paths = [self.home / "prefect", self.staging_dir]
        storage = urlsplit(self.resolved_storage_url)
        if storage.scheme in ("", "file"):
            paths.append(Path(unquote(storage.path)))
        database = urlsplit(self.resolved_database_url)
        if database.scheme.startswith("sqlite") and database.path not in ("", "/"):
            catalog = Path(unquote(database.path[1:]))
            paths += [catalog.with_name(catalog.name + suffix) for suffix in ("", "-wal", "-shm")]
        return paths

    @property
    def staging_dir(self) -> Path:
        """Local scratch space where uploads are streamed and hashed before publishing."""
        return self.home / "staging"


def get_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, with explicit overrides winning."""
    return Settings(**overrides)
