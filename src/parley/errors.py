"""Parley's exception tree, drawn once here.

    ParleyError                      base; ``code`` is stable, ``message`` is for the user
    ├── ProviderError                a model provider failed
    │   ├── ProviderAuthError        bad or missing key (401/403)         code=provider_auth
    │   ├── ProviderRateLimited      429; retryable                       code=provider_rate_limited
    │   ├── ProviderUnavailable      5xx, connection refused; retryable   code=provider_unavailable
    │   ├── ProviderTimeout          no answer in time; retryable         code=provider_timeout
    │   ├── ProviderProtocolError    malformed or cut stream; retryable   code=provider_protocol
    │   └── ProviderBadRequest       the provider refused the request     code=provider_bad_request
    ├── ModelNotFound                no such model configured             code=model_not_found
    ├── ToolError                    a tool failed (reported to the model, not fatal)
    └── LimitExceeded                max steps / deadline                 code=limit_exceeded

The HTTP layer maps these to RFC 9457 problem documents; the engine turns
provider errors into ``ErrorEvent`` so a stream never hangs.
"""

from __future__ import annotations


class ParleyError(Exception):
    code = "error"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderError(ParleyError):
    code = "provider_error"


class ProviderAuthError(ProviderError):
    code = "provider_auth"


class ProviderRateLimited(ProviderError):
    code = "provider_rate_limited"
    retryable = True


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    retryable = True


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    retryable = True


class ProviderProtocolError(ProviderError):
    code = "provider_protocol"
    retryable = True


class ProviderBadRequest(ProviderError):
    code = "provider_bad_request"


class ModelNotFound(ParleyError):
    code = "model_not_found"


class ToolError(ParleyError):
    code = "tool_error"


class LimitExceeded(ParleyError):
    code = "limit_exceeded"
