"""Scripted image providers shipped in the library: real HTTP servers for tests.

``ScriptedImages`` speaks OpenAI's images API (``POST /v1/images/generations``,
``/v1/images/edits``, ``/v1/images/variations``; ``GET /v1/models``) and
ComfyUI's (``POST /prompt``, ``GET /history/{id}``, ``GET /view``,
``POST /upload/image``) from one server on 127.0.0.1. Pictures are drawn with
Pillow from the prompt and seed, so the same request gives the same bytes: a
background colour from their hash, the prompt written on it; an edit draws the
input image with a frame in the new prompt's colour, a variation mirrors it.

ComfyUI jobs finish on the second poll of ``/history`` (the client's polling is
exercised) and read the graph as ComfyUI would: the sampler's ``positive`` and
``negative`` links, its ``seed``, the latent's ``width``/``height``, a
``LoadImage`` node's ``image``.

``hostile`` makes the next answers bad on purpose: ``"truncated"`` (half a
PNG), ``"bomb"`` (a PNG header claiming 100,000 x 100,000 pixels), ``"html"``,
``"private_url"`` (a ``url`` answer pointing at a metadata address), ``"error"``
(HTTP 500). ``prefer_url`` answers with URLs on this server even when base64
was asked for (as some compatible servers do).

Run it alone with ``python -m parley.images.testing --port 9200``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import json
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["SAMPLE_MAPPING", "ScriptedImages", "bomb_png", "draw", "sample_workflow"]


def _colour(*parts: object) -> tuple[int, int, int]:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return digest[0], digest[1], digest[2]


def draw(
    prompt: str, seed: int | None, width: int, height: int, base: bytes | None = None
) -> bytes:
    """A deterministic PNG for ``prompt`` and ``seed`` (an edit of ``base``): a sky
    in two colours from their hash, a sun and hills placed by it, the prompt written
    on a band at the bottom; an edit draws ``base`` inside a frame of that colour."""
    colour = _colour(prompt, seed)
    if base is None:
        image = _scene(prompt, seed, width, height)
    else:
        with Image.open(io.BytesIO(base)) as source:
            border = max(4, min(width, height) // 24)
            inner = source.convert("RGB").resize(
                (max(1, width - 2 * border), max(1, height - 2 * border))
            )
        image = Image.new("RGB", (width, height), colour)
        image.paste(inner, (border, border))
    _caption(image, prompt, colour)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _scene(prompt: str, seed: int | None, width: int, height: int) -> Image.Image:
    top, bottom = _colour("sky", prompt, seed), _colour("ground", prompt, seed)
    image = Image.new("RGB", (width, height))
    pen = ImageDraw.Draw(image)
    for y in range(height):
        t = y / max(1, height - 1)
        pen.line(
            [(0, y), (width, y)],
            fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    digest = hashlib.sha256(f"{prompt}|{seed}|shapes".encode()).digest()
    radius = max(4, min(width, height) // 8)
    cx, cy = width * (20 + digest[0] % 60) // 100, height * (12 + digest[1] % 25) // 100
    pen.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=_colour("sun", prompt))
    for layer in range(3):
        base_y = height * (55 + 12 * layer) // 100
        points = [(0, height)]
        for i in range(7):
            points.append(
                (width * i // 6, base_y - (digest[2 + layer * 7 + i] % max(1, height // 5)))
            )
        points.append((width, height))
        shade = tuple(max(0, c - 40 * (layer + 1)) for c in bottom)
        pen.polygon(points, fill=shade)
    return image


def _caption(image: Image.Image, prompt: str, colour: tuple[int, int, int]) -> None:
    width, height = image.size
    size = max(10, min(width, height) // 22)
    try:
        font: Any = ImageFont.load_default(size=size)
    except (OSError, TypeError):  # Pillow without FreeType: the small bitmap font
        font = ImageFont.load_default()
    pen = ImageDraw.Draw(image, "RGBA")
    words, line, lines = prompt.split(), "", []
    for word in words:
        if line and pen.textlength(f"{line} {word}", font=font) > width - 2 * size:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    lines.append(line)
    lines = lines[-4:]
    band = (len(lines) + 1) * int(size * 1.3)
    pen.rectangle((0, height - band, width, height), fill=(0, 0, 0, 110))
    for i, text in enumerate(lines):
        pen.text(
            (size, height - band + size // 2 + i * int(size * 1.3)),
            text,
            fill=(255, 255, 255, 255),
            font=font,
        )


def vary(base: bytes, seed: int | None) -> bytes:
    with Image.open(io.BytesIO(base)) as source:
        image = ImageOps.mirror(source.convert("RGB"))
    ImageDraw.Draw(image).rectangle((0, 0, 15, 15), fill=_colour("variation", seed))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 100_000) -> bytes:
    """A few hundred bytes of PNG whose header claims ``side`` x ``side`` pixels."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * (side + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows)


def sample_workflow() -> dict[str, Any]:
    """A small text-to-image workflow in ComfyUI's API format (an SD 1.5 graph)."""
    return {
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 0,
                "steps": 20,
                "cfg": 7,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 512, "height": 512, "batch_size": 1},
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {
            "class_type": "SaveImage",
            "inputs": {"filename_prefix": "parley", "images": ["8", 0]},
        },
        "10": {"class_type": "LoadImage", "inputs": {"image": ""}},
    }


SAMPLE_MAPPING = {
    "prompt": "6.inputs.text",
    "negative_prompt": "7.inputs.text",
    "seed": "3.inputs.seed",
    "width": "5.inputs.width",
    "height": "5.inputs.height",
    "image": "10.inputs.image",
}


@dataclass
class _State:
    api_key: str | None = None
    hostile: str | None = None
    prefer_url: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # served by /files and /view
    uploads: dict[str, bytes] = field(default_factory=dict)  # ComfyUI inputs
    prompts: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)


class ScriptedImages:
    """The server (see the module docstring). ``with ScriptedImages() as up:``;
    ``up.base_url`` is the OpenAI base (``.../v1``), ``up.root_url`` ComfyUI's."""

    def __init__(self, *, api_key: str | None = None, host: str = "127.0.0.1", port: int = 0):
        self.state = _State(api_key=api_key)
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self.app = self._build()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self.state.requests)

    @property
    def hostile(self) -> str | None:
        return self.state.hostile

    @hostile.setter
    def hostile(self, value: str | None) -> None:
        self.state.hostile = value

    @property
    def prefer_url(self) -> bool:
        return self.state.prefer_url

    @prefer_url.setter
    def prefer_url(self, value: bool) -> None:
        self.state.prefer_url = value

    # ------------------------------------------------------------------ the app

    def _build(self) -> Starlette:
        state = self.state

        def refused(request: Request) -> Response | None:
            if state.api_key and request.headers.get("authorization") != f"Bearer {state.api_key}":
                return JSONResponse({"error": {"message": "bad key", "type": "auth"}}, 401)
            if state.hostile == "error":
                return JSONResponse({"error": {"message": "the GPU caught fire"}}, 500)
            return None

        def bad_bytes(good: bytes) -> bytes:
            if state.hostile == "truncated":
                return good[: len(good) // 2]
            if state.hostile == "bomb":
                return bomb_png()
            if state.hostile == "html":
                return b"<html><script>alert(1)</script></html>"
            return good

        def answer(images: list[bytes], response_format: str) -> JSONResponse:
            data = []
            for picture in images:
                picture = bad_bytes(picture)
                if state.hostile == "private_url":
                    data.append({"url": "http://169.254.169.254/latest/meta-data/x.png"})
                elif response_format == "url" or state.prefer_url:
                    name = hashlib.sha256(picture).hexdigest()[:16] + ".png"
                    state.files[name] = picture
                    data.append({"url": f"{self.root_url}/files/{name}"})
                else:
                    data.append({"b64_json": base64.b64encode(picture).decode()})
            return JSONResponse({"created": int(time.time()), "data": data})

        async def generations(request: Request) -> Response:
            body = await request.json()
            state.requests.append({"path": "/v1/images/generations", "body": body})
            if (no := refused(request)) is not None:
                return no
            if not str(body.get("prompt", "")).strip():
                return JSONResponse({"error": {"message": "prompt is required"}}, 400)
            width, height = (int(v) for v in str(body.get("size", "256x256")).split("x"))
            n = int(body.get("n", 1))
            pictures = [draw(body["prompt"], i, width, height) for i in range(n)]
            return answer(pictures, str(body.get("response_format", "url")))

        async def edits(request: Request) -> Response:
            return await _multipart(request, "edits")

        async def variations(request: Request) -> Response:
            return await _multipart(request, "variations")

        async def _multipart(request: Request, kind: str) -> Response:
            form = await request.form()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            upload = form.get("image") or form.get("image[]")
            state.requests.append({"path": f"/v1/images/{kind}", "body": fields})
            if (no := refused(request)) is not None:
                return no
            if upload is None or isinstance(upload, str):
                return JSONResponse({"error": {"message": "image is required"}}, 400)
            base = await upload.read()
            mask = form.get("mask")
            if mask is not None and not isinstance(mask, str):
                state.requests[-1]["mask"] = hashlib.sha256(await mask.read()).hexdigest()
            width, height = (int(v) for v in str(fields.get("size", "256x256")).split("x"))
            n = int(fields.get("n", 1))
            if kind == "edits":
                pictures = [
                    draw(fields.get("prompt", ""), i, width, height, base) for i in range(n)
                ]
            else:
                pictures = [vary(base, i) for i in range(n)]
            return answer(pictures, str(fields.get("response_format", "url")))

        async def models(request: Request) -> Response:
            return JSONResponse(
                {"object": "list", "data": [{"id": "scripted-image", "object": "model"}]}
            )

        async def files(request: Request) -> Response:
            picture = state.files.get(request.path_params["name"])
            if picture is None:
                return Response(status_code=404)
            return Response(picture, media_type="image/png")

        # ---------------------------------------------------------- ComfyUI

        async def upload_image(request: Request) -> Response:
            form = await request.form()
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                return JSONResponse({"error": "no image"}, 400)
            name = upload.filename or "input.png"
            state.uploads[name] = await upload.read()
            state.requests.append({"path": "/upload/image", "body": {"name": name}})
            return JSONResponse({"name": name, "subfolder": "", "type": "input"})

        async def prompt(request: Request) -> Response:
            body = await request.json()
            state.requests.append({"path": "/prompt", "body": body})
            if (no := refused(request)) is not None:
                return no
            graph = body.get("prompt")
            if not isinstance(graph, dict):
                return JSONResponse({"error": {"type": "invalid_prompt"}, "node_errors": {}}, 400)
            prompt_id = hashlib.sha256(
                json.dumps(graph, sort_keys=True).encode() + str(len(state.prompts)).encode()
            ).hexdigest()[:32]
            state.prompts[prompt_id] = graph
            state.polls[prompt_id] = 0
            return JSONResponse({"prompt_id": prompt_id, "number": len(state.prompts)})

        def render(graph: dict[str, Any]) -> bytes:
            sampler = next(n for n in graph.values() if n.get("class_type") == "KSampler")
            inputs = sampler["inputs"]
            text = graph[inputs["positive"][0]]["inputs"]["text"]
            latent = graph[inputs["latent_image"][0]]["inputs"]
            width, height = int(latent["width"]), int(latent["height"])
            loader = next((n for n in graph.values() if n.get("class_type") == "LoadImage"), None)
            base = state.uploads.get(str(loader["inputs"]["image"])) if loader else None
            return bad_bytes(draw(text, int(inputs["seed"]), width, height, base))

        async def history(request: Request) -> Response:
            prompt_id = request.path_params["prompt_id"]
            graph = state.prompts.get(prompt_id)
            if graph is None:
                return JSONResponse({})
            state.polls[prompt_id] += 1
            if state.polls[prompt_id] < 2:
                return JSONResponse({})  # still running
            name = f"parley_{prompt_id[:8]}.png"
            if name not in state.files:
                state.files[name] = render(graph)
            return JSONResponse(
                {
                    prompt_id: {
                        "prompt": [0, prompt_id, graph, {}, ["9"]],
                        "outputs": {
                            "9": {"images": [{"filename": name, "subfolder": "", "type": "output"}]}
                        },
                        "status": {"status_str": "success", "completed": True, "messages": []},
                    }
                }
            )

        async def view(request: Request) -> Response:
            picture = state.files.get(request.query_params.get("filename", ""))
            if picture is None or request.query_params.get("type") != "output":
                return Response(status_code=404)
            return Response(picture, media_type="image/png")

        return Starlette(
            routes=[
                Route("/v1/images/generations", generations, methods=["POST"]),
                Route("/v1/images/edits", edits, methods=["POST"]),
                Route("/v1/images/variations", variations, methods=["POST"]),
                Route("/v1/models", models),
                Route("/files/{name}", files),
                Route("/upload/image", upload_image, methods=["POST"]),
                Route("/prompt", prompt, methods=["POST"]),
                Route("/history/{prompt_id}", history),
                Route("/view", view),
            ]
        )

    # ------------------------------------------------------------------ serving

    def _make_server(self) -> Any:
        import uvicorn

        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        return uvicorn.Server(config)

    def start(self) -> ScriptedImages:
        self._server = server = self._make_server()

        def run() -> None:
            asyncio.run(server.serve(sockets=[self._sock]))

        self._thread = threading.Thread(target=run, name="scripted-images", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the scripted image server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> ScriptedImages:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A scripted OpenAI-images + ComfyUI server.")
    parser.add_argument("--port", type=int, default=9200)
    args = parser.parse_args()
    with ScriptedImages(port=args.port) as server:
        print(f"serving on {server.root_url} (OpenAI base {server.base_url})", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
