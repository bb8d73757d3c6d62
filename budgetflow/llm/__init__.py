"""The model layer: one LLM protocol over vLLM (local, embedded default) and LiteLLM (remote), every call metered
on the budget ledger."""

from ._calibration import Throughput
from ._clock import EngineClock
from ._forcing import ANSWER_CUE, ForcedGeneration, ForcedSample, budget_forced
from ._metering import CallPlan, LLMError, reserve_call
from ._models import LOCAL_MODELS, ModelNotAvailable, prepare, serving_context
from ._preflight import (
    ModelCheckError,
    ProviderUnreachable,
    check_model,
    local_model_status,
    probe_model,
    verify_local_model,
)
from ._registry import get_llm, shutdown
from ._remote import LiteLLMModel
from ._remote_usage import classify_failure
from ._streaming import AsyncGenerationStream, GenerationStream
from ._prompt_bound import IMAGE_TOKENS, UnboundedPrompt, prompt_token_bound
from ._server import OFFLINE_ENV, ServerError, VLLMServer
from ._thinking import ReasoningField, effort_for
from ._types import LLM, Completion, Delta, Generation, Scored, TokenLogprob, ToolCall, ToolCallDelta, Usage
from ._vllm_engine import VLLMEngine

__all__ = [
    "IMAGE_TOKENS", "LLM", "LOCAL_MODELS", "serving_context", "OFFLINE_ENV", "UnboundedPrompt", "prompt_token_bound", "Completion", "EngineClock", "Generation", "LLMError", "LiteLLMModel",
    "ModelCheckError", "ModelNotAvailable", "ProviderUnreachable", "Scored", "Throughput", "ServerError", "TokenLogprob", "Usage",
    "VLLMEngine", "VLLMServer", "check_model", "get_llm", "local_model_status", "prepare", "probe_model",
    "reserve_call", "shutdown", "verify_local_model",
    # tool calling, structured output, streaming and async (issue 13)
    "AsyncGenerationStream", "CallPlan", "Delta", "GenerationStream", "ToolCall", "ToolCallDelta", "classify_failure",
    # thinking-token budgets: the provider's own field, or budget forcing (issue 15)
    "ANSWER_CUE", "ForcedGeneration", "ForcedSample", "ReasoningField", "budget_forced", "effort_for",
]
