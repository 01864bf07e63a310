"""Talking to image providers: an OpenAI-compatible images API, or ComfyUI.

A backend turns an ``ImageJob`` (generate, edit or vary; prompt, size, seed,
input image, an edit's mask) into image bytes. Both speak HTTP through ``parley.net``'s guarded
transport: the provider's own host is allowed because an admin configured it
(it may be a ComfyUI box on the LAN), nothing else private is, and no redirect
is followed. An images API that answers with ``url``s instead of base64 has
them fetched by Parley with the ``SafeFetcher`` (every hop checked, the body cut
at the size limit), so the browser never loads a third-party URL.

Errors are ``parley.errors.Provider*`` with messages a user may read (no URL,
no key); the upstream's own words go to the log for the admin.

ComfyUI (its HTTP API, as its server exposes it): ``POST /upload/image`` for an
input image, ``POST /prompt {prompt: <workflow>, client_id}`` -> ``prompt_id``,
poll ``GET /history/<prompt_id>`` until the prompt's outputs are there, then
``GET /view?filename=&subfolder=&type=`` each output image. The admin's
workflow (API format: node id -> ``{class_type, inputs}``) is copied per job and
the mapped fields (``"6.inputs.text"``) set.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import logging
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2

from parley.errors import (
    Invalid,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from parley.net import FetchBlocked, FetchError, SafeFetcher, read_limited

__all__ = [
    "MAPPABLE",
    "ComfyBackend",
    "ImageBackend",
    "ImageJob",
    "MadeImage",
    "OpenAIImagesBackend",
    "check_mapping",
]

log = logging.getLogger(__name__)

# The workflow fields an admin may map (``prompt`` is required).
MAPPABLE = ("prompt", "negative_prompt", "seed", "width", "height", "image", "mask")
_JSON_LIMIT = 64 * 1024 * 1024  # a base64 answer of a few large images


@dataclass(slots=True)
class ImageJob:
    operation: str  # generate | edit | variation
    prompt: str = ""
    negative_prompt: str = ""
    width: int = 1024
    height: int = 1024
    seed: int | None = None
    n: int = 1
    image: bytes | None = None  # the input of an edit or a variation
    image_type: str = "image/png"
    # an edit's mask: a PNG of the image's size whose transparent pixels mark where to
    # change it (OpenAI's convention; a ComfyUI workflow maps it to its mask loader)
    mask: bytes | None = None

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(slots=True)
class MadeImage:
    data: bytes
    seed: int | None = None
    revised_prompt: str | None = None


class ImageBackend(Protocol):
    async def run(self, job: ImageJob) -> list[MadeImage]: ...

    async def aclose(self) -> None: ...


def _status_error(status: int, detail: str) -> ProviderError:
    if status in (401, 403):
        return ProviderAuthError("The image provider refused Parley's credentials.")
    if status == 429:
        return ProviderRateLimited("The image provider is busy; try again shortly.")
    if status >= 500:
        return ProviderUnavailable(f"The image provider failed (HTTP {status}).")
    message = detail[:300] or f"HTTP {status}"
    return ProviderBadRequest(f"The image provider refused the request: {message}")


def _upstream_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or "")
    return str(error or "")


@dataclass(slots=True)
class _Http:
    """One provider's guarded client, its byte limit and its time limit."""

    fetcher: SafeFetcher
    max_bytes: int
    timeout_s: float
    headers: dict[str, str] = field(default_factory=dict)
    _client: httpx2.AsyncClient | None = None

    @property
    def client(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = self.fetcher.client(timeout=self.timeout_s)
        return self._client

    async def send(
        self, method: str, url: str, *, limit: int = _JSON_LIMIT, **kwargs: Any
    ) -> tuple[int, bytes, str]:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        headers.setdefault("Accept-Encoding", "gzip, deflate")
        try:
            request = self.client.build_request(method, url, headers=headers, **kwargs)
            response = await self.client.send(request, stream=True)
        except FetchBlocked as exc:
            log.warning("image provider request to %s blocked: %s", url, exc)
            raise ProviderUnavailable("The image provider's address is not allowed.") from exc
        except httpx2.TimeoutException as exc:
            raise ProviderTimeout("The image provider did not answer in time.") from exc
        except httpx2.TransportError as exc:
            log.warning("image provider %s unreachable: %s", url, exc)
            raise ProviderUnavailable("The image provider could not be reached.") from exc
        try:
            body, cut = await read_limited(response, limit)
        except FetchError as exc:
            raise ProviderProtocolError("The image provider sent a broken answer.") from exc
        finally:
            await response.aclose()
        if cut:
            raise ProviderProtocolError("The image provider's answer was too large.")
        if response.status_code >= 400:
            log.warning("image provider %s answered %s: %s", url, response.status_code, body[:500])
            raise _status_error(response.status_code, _upstream_message(body))
        return response.status_code, body, response.headers.get("content-type", "")

    async def json(self, method: str, url: str, **kwargs: Any) -> Any:
        _status, body, _type = await self.send(method, url, **kwargs)
        try:
            return json.loads(body)
        except ValueError:
            raise ProviderProtocolError("The image provider's answer is not JSON.") from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class OpenAIImagesBackend:
    """``POST {base}/images/generations|edits|variations``, OpenAI's wire format."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None,
        fetcher: SafeFetcher,
        downloads: SafeFetcher,
        max_bytes: int,
        timeout_s: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = _Http(fetcher, max_bytes, timeout_s, headers)
        self.downloads = downloads  # for answers given as URLs: every hop checked
        self.max_bytes = max_bytes

    def _format(self) -> dict[str, str]:
        # gpt-image models always answer in base64 and refuse the parameter.
        return {} if self.model.startswith("gpt-image") else {"response_format": "b64_json"}

    async def run(self, job: ImageJob) -> list[MadeImage]:
        fields: dict[str, Any] = {"n": job.n, "size": job.size, **self._format()}
        if self.model:
            fields["model"] = self.model
        if job.operation == "generate":
            data = await self.http.json(
                "POST",
                f"{self.base_url}/images/generations",
                json={**fields, "prompt": job.prompt},
            )
        else:
            if job.image is None:
                raise Invalid("An edit needs an image.", code="image_required")
            path = "edits" if job.operation == "edit" else "variations"
            if job.operation == "edit":
                fields["prompt"] = job.prompt
            ext = job.image_type.rsplit("/", 1)[-1]
            files = {"image": (f"image.{ext}", job.image, job.image_type)}
            if job.mask is not None and job.operation == "edit":
                files["mask"] = ("mask.png", job.mask, "image/png")
            data = await self.http.json(
                "POST",
                f"{self.base_url}/images/{path}",
                data={k: str(v) for k, v in fields.items()},
                files=files,
            )
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            raise ProviderProtocolError("The image provider answered without an image.")
        made = []
        for item in items[: job.n]:
            if not isinstance(item, dict):
                raise ProviderProtocolError("The image provider's answer is malformed.")
            made.append(
                MadeImage(
                    await self._bytes(item),
                    seed=job.seed,
                    revised_prompt=item.get("revised_prompt"),
                )
            )
        return made

    async def _bytes(self, item: Mapping[str, Any]) -> bytes:
        if item.get("b64_json"):
            try:
                return base64.b64decode(str(item["b64_json"]), validate=True)
            except (binascii.Error, ValueError):
                raise ProviderProtocolError("The image provider sent broken base64.") from None
        url = item.get("url")
        if not isinstance(url, str) or not url:
            raise ProviderProtocolError("The image provider's answer has no image.")
        try:
            fetched = await self.downloads.fetch(
                url, accept="image/*", max_bytes=self.max_bytes + 1
            )
        except FetchBlocked as exc:
            log.warning("image URL %s refused: %s", url, exc)
            raise ProviderProtocolError(
                "The image provider pointed at an address Parley may not fetch."
            ) from exc
        except FetchError as exc:
            log.warning("image URL %s failed: %s", url, exc)
            raise ProviderUnavailable(
                "The image could not be downloaded from the provider."
            ) from exc
        return fetched.body

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.downloads.aclose()


def _path(workflow: Mapping[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The dict holding ``path``'s last key in the workflow (``"6.inputs.text"``)."""
    node_id, *middle, key = path.split(".")
    if not middle and not key:
        raise KeyError(path)
    node = workflow[node_id]
    for part in middle:
        node = node[part]
    if not isinstance(node, dict) or key not in node:
        raise KeyError(path)
    return node, key


def check_mapping(workflow: Any, mapping: Any) -> dict[str, str]:
    """The admin's mapping, checked against the workflow (``Invalid`` naming the
    first field that does not point at an input of a node)."""
    if not isinstance(workflow, dict) or not workflow:
        raise Invalid(
            "The workflow must be ComfyUI's API format: an object of nodes.", code="bad_workflow"
        )
    if not isinstance(mapping, dict) or not mapping.get("prompt"):
        raise Invalid(
            "Map the prompt to a workflow field (e.g. 6.inputs.text).", code="bad_mapping"
        )
    out: dict[str, str] = {}
    for name, path in mapping.items():
        if name not in MAPPABLE:
            raise Invalid(f"Unknown field {name!r}; map {', '.join(MAPPABLE)}.", code="bad_mapping")
        if not path:
            continue
        try:
            _path(workflow, str(path))
        except (KeyError, TypeError, ValueError):
            raise Invalid(
                f"The {name} mapping {str(path)[:80]!r} names no input of the workflow.",
                code="bad_mapping",
            ) from None
        out[name] = str(path)
    return out


class ComfyBackend:
    """ComfyUI's HTTP API with an admin's workflow (see the module docstring)."""

    POLL_FIRST_S = 0.1
    POLL_MAX_S = 1.0

    def __init__(
        self,
        base_url: str,
        *,
        workflow: Mapping[str, Any],
        mapping: Mapping[str, str],
        fetcher: SafeFetcher,
        max_bytes: int,
        timeout_s: float,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.workflow = workflow
        self.mapping = dict(mapping)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = _Http(fetcher, max_bytes, timeout_s, headers)
        self.timeout_s = timeout_s

    def _set(self, graph: dict[str, Any], name: str, value: Any) -> None:
        path = self.mapping.get(name)
        if path:
            node, key = _path(graph, path)
            node[key] = value

    async def run(self, job: ImageJob) -> list[MadeImage]:
        if job.operation != "generate" and not self.mapping.get("image"):
            raise Invalid(
                "This image provider's workflow takes no input image, so it cannot edit; "
                "ask your administrator to map one.",
                code="edit_unsupported",
            )
        if job.mask is not None and not self.mapping.get("mask"):
            raise Invalid(
                "This image provider's workflow takes no mask, so it can only change the "
                "whole image; leave the mask out, or ask your administrator to map one.",
                code="mask_unsupported",
            )
        made: list[MadeImage] = []
        for _ in range(job.n):
            seed = job.seed if job.seed is not None and job.n == 1 else secrets.randbelow(2**31)
            graph = copy.deepcopy(dict(self.workflow))
            self._set(graph, "prompt", job.prompt)
            self._set(graph, "negative_prompt", job.negative_prompt)
            self._set(graph, "seed", seed)
            self._set(graph, "width", job.width)
            self._set(graph, "height", job.height)
            if job.image is not None and job.operation != "generate":
                self._set(graph, "image", await self._upload(job.image, job.image_type))
            if job.mask is not None:
                self._set(graph, "mask", await self._upload(job.mask, "image/png"))
            made.extend(MadeImage(data, seed=seed) for data in await self._queue(graph))
        return made

    async def _upload(self, picture: bytes, media_type: str) -> str:
        ext = media_type.rsplit("/", 1)[-1]
        answer = await self.http.json(
            "POST",
            f"{self.base_url}/upload/image",
            data={"overwrite": "true"},
            files={"image": (f"parley-{uuid.uuid4().hex}.{ext}", picture, media_type)},
        )
        name = answer.get("name") if isinstance(answer, dict) else None
        if not isinstance(name, str) or not name:
            raise ProviderProtocolError("ComfyUI did not say where it stored the input image.")
        sub = answer.get("subfolder") or ""
        return f"{sub}/{name}" if sub else name

    async def _queue(self, graph: dict[str, Any]) -> list[bytes]:
        queued = await self.http.json(
            "POST",
            f"{self.base_url}/prompt",
            json={"prompt": graph, "client_id": uuid.uuid4().hex},
        )
        prompt_id = queued.get("prompt_id") if isinstance(queued, dict) else None
        if not isinstance(prompt_id, str):
            raise ProviderProtocolError("ComfyUI did not queue the workflow.")
        deadline = time.monotonic() + self.timeout_s
        wait = self.POLL_FIRST_S
        while True:
            history = await self.http.json("GET", f"{self.base_url}/history/{prompt_id}")
            entry = history.get(prompt_id) if isinstance(history, dict) else None
            if isinstance(entry, dict):
                status = entry.get("status") or {}
                if status.get("status_str") == "error":
                    log.warning("ComfyUI prompt %s failed: %s", prompt_id, status)
                    raise ProviderBadRequest("ComfyUI could not run the workflow.")
                if entry.get("outputs") and status.get("completed", True):
                    return await self._outputs(entry["outputs"])
            if time.monotonic() + wait > deadline:
                raise ProviderTimeout("ComfyUI did not finish the image in time.")
            await asyncio.sleep(wait)
            wait = min(self.POLL_MAX_S, wait * 2)

    async def _outputs(self, outputs: Mapping[str, Any]) -> list[bytes]:
        found: list[bytes] = []
        for node in outputs.values():
            for image in (node or {}).get("images", []) if isinstance(node, dict) else []:
                if not isinstance(image, dict) or image.get("type", "output") != "output":
                    continue
                params = {
                    "filename": str(image.get("filename", "")),
                    "subfolder": str(image.get("subfolder", "")),
                    "type": "output",
                }
                _status, body, _type = await self.http.send(
                    "GET", f"{self.base_url}/view", params=params, limit=self.http.max_bytes + 1
                )
                found.append(body)
        if not found:
            raise ProviderProtocolError("ComfyUI finished without an output image.")
        return found

    async def aclose(self) -> None:
        await self.http.aclose()
