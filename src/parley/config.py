"""Settings: environment variables ``PARLEY_*`` over a TOML file over defaults.

Built explicitly by ``create_app`` and the CLI (``load_settings()``); nothing
is read at import time, so each test builds its own.

Precedence, highest first: ``PARLEY_*`` environment variables, the TOML file
(``PARLEY_CONFIG`` or ``<data_dir>/parley.toml``), defaults. Providers come
from the TOML ``[[providers]]`` tables, plus one named ``openai`` when
``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set and one named ``anthropic``
when ``ANTHROPIC_API_KEY`` is set. Providers an admin adds in the web app live
in the database and never override these (a name clash is refused).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MiB = 1024 * 1024
# Model servers' default ports on this machine: Ollama, LM Studio, llama.cpp server, vLLM
DEFAULT_LOCAL_SERVERS = ("127.0.0.1:11434", "127.0.0.1:1234", "127.0.0.1:8080", "127.0.0.1:8000")


def loopback_address(entry: str) -> str:
    """``host:port`` of a loopback address (``11434``, ``localhost:1234``,
    ``[::1]:8000``...), canonical; raises ``ValueError`` for anything else: the
    local-server probe never goes beyond this machine."""
    text = entry.strip()
    host, port = "127.0.0.1", text
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif ":" in text:
        host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"local server {entry!r}: give a port, or host:port")
    if host.lower() == "localhost":
        host = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"local server {entry!r}: the host must be a loopback address") from None
    if not ip.is_loopback:
        raise ValueError(f"local server {entry!r}: only loopback addresses are probed")
    return f"[{ip}]:{int(port)}" if ip.version == 6 else f"{ip}:{int(port)}"


class ModelConfig(BaseModel):
    """One model of a provider. Prices are USD per million tokens.

    Fields left out take what Parley knows about the model (the endpoint's own
    description, then ``parley.providers.known_models``), then these defaults.
    ``enabled: false`` hides the model; ``visible_to`` (user ids) offers it only
    to those users (``None``: everyone).
    """

    name: str
    display_name: str | None = None
    context_window: int = 8192
    max_output_tokens: int = 1024
    supports_tools: bool = True
    supports_vision: bool = False
    supports_reasoning: bool = False
    input_price: float = 0.0
    cached_input_price: float = 0.0
    output_price: float = 0.0
    enabled: bool = True
    visible_to: list[str] | None = None
    # refs ("provider/model") that answer, in order, when this model fails before its
    # first token (``parley.providers.failover``); Admin > Providers can override them
    fallbacks: list[str] = Field(default_factory=list)


class ProviderConfig(BaseModel):
    """A provider declared in the config file or the environment."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    kind: Literal["openai", "anthropic", "local"] = "openai"
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    models: list[ModelConfig] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)  # sent with every request
    discover_models: bool = True
    timeout_s: float = 60.0
    source: str = "config"

    def resolved_api_key(self) -> str | None:
        if self.api_key:
            return self.api_key
        if self.api_key_env:
            return os.environ.get(self.api_key_env)
        return None


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "parley"


class Settings(BaseSettings):
    """Every setting Parley reads; the README lists each one."""

    model_config = SettingsConfigDict(env_prefix="PARLEY_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    config_file: Path | None = Field(default=None, alias="PARLEY_CONFIG")

    # models
    default_model: str | None = None
    local_model_enabled: bool = True
    local_model: str | None = None  # GGUF path or Hugging Face repo id; None = bundled SmolLM2
    local_model_file: str | None = None  # file name inside a Hugging Face repo
    local_context_window: int = 4096
    local_threads: int | None = None
    # offer tools (JSON decisions) to the embedded model; None = not to the bundled
    # starter (it cannot follow a tool schema), yes to a GGUF named in local_model
    local_model_tools: bool | None = None
    # where Admin > Models downloads GGUF files from (``{hf_endpoint}/{repo}/resolve/...``);
    # a mirror or a test server may stand in for Hugging Face
    hf_endpoint: str = "https://huggingface.co"
    # loopback addresses the first-run setup probes for model servers (Ollama, LM
    # Studio, llama.cpp server, vLLM); entries "host:port" or a port, loopback only
    local_servers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_LOCAL_SERVERS)
    )
    providers: list[ProviderConfig] = Field(default_factory=list)

    # failover (parley.providers.failover; the README's "Failover" section)
    retry_attempts: int = Field(3, ge=1, le=10)  # calls per model before its fallback
    retry_base_delay_s: float = Field(0.5, ge=0)  # backoff: base * 2**n, half of it random
    retry_max_delay_s: float = Field(8.0, ge=0)  # ...at most; a longer Retry-After falls over
    breaker_failures: int = Field(5, ge=1)  # consecutive failures that open a provider's circuit
    breaker_cooldown_s: float = Field(30.0, ge=0)  # open this long, then one probe call

    # metrics and tracing (parley.telemetry; the README's "Metrics and tracing" section)
    # the bearer token GET /metrics requires (None: /metrics answers 404); Admin can set one
    metrics_token: str | None = None
    # OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces (None: no tracing)
    otlp_endpoint: str | None = None

    # turn engine
    max_tool_steps: int = 8
    tool_timeout_s: float = 30.0
    turn_deadline_s: float = 600.0
    flush_interval_s: float = 1.0
    stream_replay_events: int = 10_000  # a turn's newest events kept for readers that reattach
    stream_replay_linger_s: float = 60.0  # ...and how long after the turn ends
    summarize_history: bool = True
    # model for automatic titles; None = the chat's model (not the demo), "none" = first line
    title_model: str | None = None
    # The instance's currency: model prices and every cost are in it (ISO 4217 code).
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    # budgets (parley.budgets): a call's reservation is given back after this long if
    # its worker never settled it (crashed); longer than any call may take
    budget_lease_s: float = Field(900.0, gt=0)

    # accounts and HTTP
    signup: Literal["open", "closed", "approval"] = "open"
    session_ttl_hours: int = 24 * 14
    cookie_secure: bool = False
    login_attempts_per_window: int = 10
    login_window_s: int = 300
    max_body_bytes: int = 1_048_576
    cors_origins: list[str] = Field(default_factory=list)
    redis_url: str | None = None
    # a running answer's Redis stream expires this long after its last event (a
    # worker that died leaves nothing behind for longer); ``stream_replay_linger_s``
    # once the answer ended
    stream_redis_ttl_s: float = Field(3600.0, gt=0)
    # on shutdown (SIGTERM): running answers get this long to finish, then are stopped
    # and stored as they are; open streams are closed by then too
    shutdown_grace_s: float = Field(30.0, ge=0)
    log_level: str = "info"

    # code interpreter (parley.sandbox; the README's "Code interpreter" section)
    sandbox_enabled: bool = True
    sandbox_bwrap: str = "bwrap"
    sandbox_python: Path | None = None  # None = the venv `make install` builds: <venv>/sandbox
    sandbox_memory_mb: int = 1024
    sandbox_cpu_s: int = 60
    sandbox_wall_s: float = 25.0
    sandbox_processes: int = 64
    sandbox_file_mb: int = 64
    sandbox_disk_mb: int = 256
    sandbox_idle_s: float = 900.0
    sandbox_kernels_per_user: int = 2
    sandbox_max_kernels: int = 16
    sandbox_spare_kernels: int = Field(1, ge=0, le=8)  # started ahead for new conversations
    sandbox_host_uid_base: int = 900_000
    sandbox_cgroups: bool = True  # a cgroup per kernel (whole-sandbox limits) where available
    sandbox_cpus: float = Field(1.0, ge=0)  # CPUs one sandbox may use at once (0: no cap)
    sandbox_output_call_mb: int = Field(50, ge=0)  # outputs one call may keep (files + images)
    sandbox_output_user_mb: int = Field(1024, ge=0)  # outputs stored for one user in all

    # tools: web search, page reading, MCP, confirmations (parley.web_tools)
    search_provider: Literal["auto", "none", "searxng", "brave", "tavily", "ddgs"] = "auto"
    searxng_url: str | None = None
    brave_api_key: str | None = None
    tavily_api_key: str | None = None
    search_max_results: int = 5
    fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    fetch_max_bytes: int = 5_000_000
    fetch_timeout_s: float = 15.0
    fetch_max_redirects: int = 5
    tool_confirm_timeout_s: float = 120.0
    mcp_refresh_s: float = 15.0

    # memory and long conversations (parley.memory; the README's "Memory" section)
    memory_model: str | None = None  # extraction and summaries; None = the chat's model
    memory_auto: bool = True  # learn memories after turns (explicit requests always work)
    memory_recall_k: int = 8
    memory_recall_floor: float = 0.2  # recall score a memory needs to be injected (0 = no floor)
    memory_budget_tokens: int = 600
    memory_embed_timeout_s: float = 0.25
    summary_trigger: float = 0.7
    summary_keep: float = 0.4
    temporary_chat_hours: float = 24.0

    # files and knowledge (parley.knowledge; the README's "Files and knowledge" section);
    # the embedder (parley.embeddings) is shared with memory recall
    files_max_bytes: int = 50 * MiB
    files_max_pages: int = 2000
    files_max_unzipped_bytes: int = 300 * MiB
    files_max_zip_ratio: int = 200
    files_uploads_per_user: int = 4  # uploads one account may have in flight at once
    files_uploads_total: int = 16  # ...and the whole worker
    embedding_provider: Literal["local", "openai", "none"] = "local"
    embedding_model: str | None = None  # default: all-MiniLM-L6-v2 / text-embedding-3-small
    embedding_base_url: str | None = None
    embedding_api_key: str | None = None
    embedding_batch: int = 32
    # auto: ONNX Runtime when installed, else numpy (same weights and vectors; minilm.py)
    embedding_runtime: Literal["auto", "onnx", "numpy"] = "auto"
    # POST /v1/embeddings: texts per call and characters per text (larger: 400)
    embeddings_max_inputs: int = 256
    embeddings_max_input_chars: int = 32_000
    # speech in and out (parley.speech; the README's "Voice" section). Admin > Voice
    # overrides the providers and prices at run time; these are the start values.
    speech_stt_provider: Literal["local", "openai", "none"] = "local"
    speech_stt_base_url: str | None = None
    speech_stt_api_key: str | None = None
    speech_stt_model: str = "whisper-1"
    speech_tts_provider: Literal["local", "openai", "none"] = "local"
    speech_tts_base_url: str | None = None
    speech_tts_api_key: str | None = None
    speech_tts_model: str = "tts-1"
    speech_max_bytes: int = 25 * MiB  # one audio upload (OpenAI's limit)
    speech_max_seconds: float = 600.0  # one recording to transcribe
    speech_max_chars: int = 4096  # text per /audio/speech call (OpenAI's limit)
    speech_threads: int = 2  # CPU threads of the offline recognizer and voice
    knowledge_wait_s: float = 3.0
    knowledge_top_k: int = 8
    chunk_chars: int = 1200

    # image generation and editing (parley.images; the README's "Images" section); the
    # providers themselves are added in Admin -> Images
    images_max_bytes: int = 20 * MiB  # an image sent to edit or received from a provider
    images_max_pixels: int = 40_000_000  # width x height (x frames): decompression bombs
    images_max_n: int = 4  # images one request may ask for
    images_max_prompt_chars: int = 4000
    images_default_size: str = "1024x1024"
    images_timeout_s: float = 180.0  # one provider call (ComfyUI: queue, run, download)
    # durable jobs (parley.jobs; the README's "Running for a team")
    jobs_in_server: bool = True  # the web server runs jobs too (False: only `parley worker`s)
    jobs_concurrency: int = Field(4, ge=1, le=64)  # jobs one process runs at once
    jobs_lease_s: float = Field(60.0, ge=1)  # a job whose worker is silent this long runs again
    jobs_poll_s: float = Field(1.0, gt=0)  # how often an idle worker looks for jobs
    jobs_backoff_base_s: float = Field(2.0, ge=0)  # retry after base * 2**(attempt-1)...
    jobs_backoff_max_s: float = Field(300.0, ge=0)  # ...at most this

    # object storage (parley.storage.objects): uploaded files, code outputs
    storage_backend: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = None  # e.g. http://127.0.0.1:8333 (None: AWS)
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_prefix: str = ""  # keys start with this (several instances in one bucket)
    s3_path_style: bool = True  # http://host/bucket/key (MinIO, SeaweedFS) vs bucket.host

    @field_validator("local_servers", mode="before")
    @classmethod
    def _split_servers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("local_servers", mode="after")
    @classmethod
    def _loopback_only(cls, value: list[str]) -> list[str]:
        return [loopback_address(entry) for entry in value]

    @field_validator("fetch_allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):  # env: comma-separated
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'parley.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def _env_providers() -> list[ProviderConfig]:
    found: list[ProviderConfig] = []
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        found.append(
            ProviderConfig(
                name="openai",
                kind="openai",
                base_url=os.environ.get("OPENAI_BASE_URL"),
                api_key_env="OPENAI_API_KEY",
                source="environment",
            )
        )
    if os.environ.get("ANTHROPIC_API_KEY"):
        found.append(
            ProviderConfig(
                name="anthropic",
                kind="anthropic",
                base_url=os.environ.get("ANTHROPIC_BASE_URL"),
                api_key_env="ANTHROPIC_API_KEY",
                source="environment",
            )
        )
    return found


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, the TOML file and ``overrides``.

    ``overrides`` win over everything (tests and the CLI use them).
    """
    env_only = Settings(**{k: v for k, v in overrides.items() if k in {"data_dir", "config_file"}})
    path = env_only.config_file or env_only.data_dir / "parley.toml"
    file_values: dict[str, Any] = {}
    if path.is_file():
        with path.open("rb") as fh:
            file_values = tomllib.load(fh)
    env_keys = {name for name in Settings.model_fields if f"PARLEY_{name.upper()}" in os.environ}
    merged = {k: v for k, v in file_values.items() if k not in env_keys}
    merged.update(overrides)
    settings = Settings(**merged)
    declared = {p.name for p in settings.providers}
    for provider in _env_providers():
        if provider.name not in declared:
            settings.providers.append(provider)
    return settings
