"""Model providers: the protocol (``base``), adapters and the registry.

Only the protocol types are imported here, so ``import parley.providers`` stays
cheap; adapters (which pull the SDKs or llama.cpp) are imported from their
modules: ``parley.providers.registry.ModelRegistry``,
``parley.providers.openai_compat.OpenAIProvider``, ``parley.providers.local.LocalProvider``.
"""

from parley.providers.base import ChatModel, ChatRequest, ModelInfo, Provider, ProviderKind

__all__ = ["ChatModel", "ChatRequest", "ModelInfo", "Provider", "ProviderKind"]
