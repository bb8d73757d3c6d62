"""The model layer: one LLM protocol over vLLM (local, embedded default) and LiteLLM (remote), every call metered
on the budget ledger."""

from .clock import EngineClock
from .metering import LLMError, reserve_call
from .models import LOCAL_MODELS, ModelNotAvailable, prepare
from .registry import get_llm, shutdown
from .remote import LiteLLMModel
from .server import ServerError, VLLMServer
from .types import LLM, Completion, Generation, Scored, TokenLogprob, Usage
from .vllm_engine import VLLMEngine

__all__ = [
    "LLM", "LOCAL_MODELS", "Completion", "EngineClock", "Generation", "LLMError", "LiteLLMModel",
    "ModelNotAvailable", "Scored", "ServerError", "TokenLogprob", "Usage", "VLLMEngine", "VLLMServer", "get_llm",
    "prepare", "reserve_call", "shutdown",
]
