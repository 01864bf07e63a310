"""Admin > Models: the typed contract of the model download routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from parley.http.bodies import Body


class CuratedModelOut(BaseModel):
    name: str
    repo: str
    file: str
    approx_bytes: int = Field(
        description="Size when the list was written; the real one is checked."
    )
    licence: str
    good_for: str
    tools: bool = Field(description="Offered tools once chosen (it can follow a tool schema).")


class DownloadOut(BaseModel):
    """A model file on this server: downloading, interrupted, failed or done."""

    file: str
    repo: str | None
    revision: str
    status: Literal["running", "verifying", "done", "interrupted", "failed"]
    done_bytes: int
    total_bytes: int | None
    rate: float = Field(description="Bytes per second over the last seconds (0 when not running).")
    sha256: str | None
    verified: bool = Field(description="The SHA-256 matched the one Hugging Face published.")
    error: str | None
    in_use: bool = Field(description="The embedded model runs this file.")


class LocalModelsOut(BaseModel):
    curated: list[CuratedModelOut]
    files: list[DownloadOut]
    in_use: str | None = Field(description="The downloaded file the embedded model runs, if any.")
    local_enabled: bool
    free_bytes: int
    endpoint: str = Field(description="Where files are downloaded from (the hf_endpoint setting).")


class DownloadIn(Body):
    repo: str = Field(min_length=3, max_length=200)
    file: str = Field(min_length=6, max_length=210)
    revision: str = Field(default="main", min_length=1, max_length=64)


class UseModelIn(Body):
    file: str | None = Field(
        default=None, max_length=210, description="A downloaded file; null: the configured model."
    )


class UseModelOut(BaseModel):
    ref: str = Field(description="The embedded model's ref from now on.")
