"""An OpenAI-compatible gateway with hard per-key caps (``budgetflow serve``).

Any client that takes a base URL and a key (the ``openai`` client, LiteLLM, LangChain's ChatOpenAI, mini-swe-agent)
spends through budgetflow's model layer on the ledger account of its key: every call's worst case is reserved before
it is sent (max_tokens shrunk to what fits, or HTTP 402 and nothing sent), the metered truth committed after.

    from budgetflow.gateway import GatewaySettings, ModelPool, create_app
    app = create_app("sqlite:///gateway.db", ModelPool(["local/qwen2.5-coder-1.5b"]))
"""

from ._app import create_app
from ._errors import REFUSAL_STATUSES
from ._pool import ModelPool, UnknownModel
from ._serve import serve
from ._settings import GatewaySettings

__all__ = ["GatewaySettings", "ModelPool", "REFUSAL_STATUSES", "UnknownModel", "create_app", "serve"]
