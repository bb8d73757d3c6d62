"""LangChain's own conformance suite (`langchain-tests`: the standard chat model unit and integration tests) run
against BudgetedChatModel on the real vLLM server (SmolLM2), every call charged to a real ledger account.

What SmolLM2 cannot do is said per test: it was not trained to call tools on its own (tool choice "auto"), so the
tests that bind tools without forcing a call are expected to fail here with its clear refusal (xfail, strict); the same behaviour is covered with Qwen2.5-Coder
(auto tool choice) in test_agents.py. Inputs the model layer does not take (images, PDFs, audio) are declared
unsupported as the suite expects."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from budgetflow import Budget
from budgetflow.integrations.langchain import BudgetedChatModel
from budgetflow.llm import LLMError

_NEEDS_AUTO = "SmolLM2 cannot pick tools itself (tool choice 'auto'); covered with Qwen2.5-Coder in test_agents.py"


class TestBudgetedChatModelUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BudgetedChatModel]:
        return BudgetedChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "local/smollm2-135m"}

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True


class TestBudgetedChatModelIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[BudgetedChatModel]:
        return BudgetedChatModel


    @pytest.fixture(autouse=True)
    def _on_the_real_engine(self, engine: Any, ledger: Any) -> None:
        """Every model the suite builds (its `model` fixture and the ones a test makes itself) runs on the session's
        engine and charges a real account of its own."""
        self._real = {"llm": engine, "account": ledger.root("conformance", Budget(usd=5.0))}

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "local/smollm2-135m", **getattr(self, "_real", {})}

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return False  # json_mode sends no schema: SmolLM2 cannot follow a schema given only in the prompt

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[Any]]:
        return {"invoke": [], "stream": []}

    @pytest.mark.xfail(reason=_NEEDS_AUTO, raises=LLMError, strict=True)
    def test_agent_loop(self, model: Any) -> None:
        super().test_agent_loop(model)

    @pytest.mark.xfail(reason=_NEEDS_AUTO, raises=LLMError, strict=True)
    def test_tool_message_histories_string_content(self, model: Any, my_adder_tool: Any) -> None:
        super().test_tool_message_histories_string_content(model, my_adder_tool)

    @pytest.mark.xfail(reason=_NEEDS_AUTO, raises=LLMError, strict=True)
    def test_tool_message_histories_list_content(self, model: Any, my_adder_tool: Any) -> None:
        super().test_tool_message_histories_list_content(model, my_adder_tool)

    @pytest.mark.xfail(reason=_NEEDS_AUTO, raises=LLMError, strict=True)
    def test_tool_message_error_status(self, model: Any, my_adder_tool: Any) -> None:
        super().test_tool_message_error_status(model, my_adder_tool)

    @pytest.mark.xfail(reason="SmolLM2 fills a parameterless call's JSON with whitespace until max_tokens (vLLM's "
                       "grammar allows it); the call is then cut and has no tool call", strict=False)
    def test_tool_calling_with_no_arguments(self, model: Any) -> None:
        super().test_tool_calling_with_no_arguments(model)

    @pytest.mark.xfail(reason="SmolLM2-135M tends to run on inside the optional field until max_tokens: the call is "
                       "cut and there is nothing to parse (a model limit, not the adapter's)", strict=False)
    def test_structured_output_optional_param(self, model: Any) -> None:
        super().test_structured_output_optional_param(model)
