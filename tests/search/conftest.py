"""The search tests use the session's real vLLM server (SmolLM2-135M on the CPU), process sandbox and SQLite ledgers,
all from tests/conftest.py."""
