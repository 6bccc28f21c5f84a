"""The embedded offline model (local:/smollm2): its llama.cpp server as a child process on 127.0.0.1.

(The full implementation arrives with the embedded-model issue; until then `local:` explains itself.)
"""

from __future__ import annotations

from core.errors import ConfigError

DEMO_WARNING = (
    "note: local:/smollm2 is a tiny 135M-parameter demo model: its answers, and its verdicts as a judge, mean little"
)


def ensure_server(name: str = "smollm2") -> str:
    """Start the local model's server if it is not running; return its OpenAI base URL (with /v1)."""
    raise ConfigError(
        "the embedded model is not available yet: set AZURE_OPENAI_ENDPOINT or OPENAI_API_KEY (see .env.example)"
    )
