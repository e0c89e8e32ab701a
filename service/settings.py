"""Service settings, read from `REPLAY_*` environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MiB = 1024 * 1024
_ORIGIN = re.compile(r"https?://[^/?#\s]+")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPLAY_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        description="Redis to keep buffers in, e.g. redis://:password@host:6379/0. Unset: "
        "`replay serve` starts a private redis-server with its data under data_dir.")
    data_dir: Path = Field(default=Path("replay-data"),
                           description="Where the private Redis keeps its append-only file.")
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, description="uvicorn worker processes.")
    access_log: bool = Field(default=False, description=(
        "Log every request. Off by default: a learner and its actors send thousands a "
        "second (the /metrics counters count them), and a line each cost 7% of a small "
        "request's CPU."))

    default_capacity: int = Field(default=100_000, ge=1,
                                  description="Capacity of a buffer created without one.")
    max_capacity: int = Field(default=50_000_000, ge=1)
    max_buffers: int = Field(default=1_000, ge=1)
    max_batch: int = Field(default=65_536, ge=1, description="Transitions in one store.")
    max_sample: int = Field(default=65_536, ge=1, description="Transitions in one sample.")
    max_body_bytes: int = Field(default=256 * MiB, ge=1024,
                                description="Largest request body accepted (413 beyond).")
    max_json_body_bytes: int = Field(default=16 * MiB, ge=1024, description=(
        "Largest JSON body: decoding JSON takes some 40 times its size in memory, so "
        "large batches should come as safetensors."))
    max_record_bytes: int = Field(default=16 * MiB, ge=1,
                                  description="Largest single transition a schema may describe.")
    segment_bytes: int = Field(default=64 * MiB, ge=1024, le=512 * MiB,
                               description="Bytes per Redis string a ring is split into.")
    write_key: SecretStr | None = Field(default=None, min_length=16, description=(
        "API key for everything (Authorization: Bearer <key>). With no key set the "
        "service is open to anyone who reaches it."))
    read_key: SecretStr | None = Field(default=None, min_length=16, description=(
        "API key that may only read: sample, size, info, weights, episodes."))
    redis_timeout_s: float = Field(default=5.0, gt=0)
    replica_acks: int = Field(default=0, ge=0, description=(
        "Acknowledge a store only once this many Redis replicas hold it (WAIT), so that a "
        "failover loses no acknowledged transition; 0: as soon as the master has it."))
    replica_ack_timeout_s: float = Field(default=1.0, gt=0, description=(
        "How long a store waits for those replicas before it is answered 503 (the "
        "client's retry, with the same Idempotency-Key, waits again)."))
    redis_cluster: bool | None = Field(default=None, description=(
        "Whether REPLAY_REDIS_URL names a node of a Redis Cluster. Unset: asked of Redis "
        "at start (INFO cluster); set it where Redis may be down when the service starts."))
    idempotency_ttl_s: int = Field(default=3_600, ge=1, description=(
        "How long a store's Idempotency-Key is remembered: retries within it are not "
        "stored twice."))
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, description=(
        "Origins whose browser pages may call the API, comma-separated, e.g. "
        "https://dash.example.org,http://localhost:3000 ('*': any). Unset: none, CORS off."))

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """A comma-separated list, as an environment variable holds one; each an origin
        as a browser sends it (scheme://host[:port], no path), or '*'."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for origin in value:
                if origin != "*" and not (isinstance(origin, str) and _ORIGIN.fullmatch(origin)):
                    raise ValueError(f"{origin!r} is not an origin: scheme://host[:port], "
                                     "e.g. https://dash.example.org, with no path")
        return value
