"""Developer tools: throwaway local services for tests and benchmarks."""

from ._postgres import TemporaryPostgres, find_postgres_bin

__all__ = ["TemporaryPostgres", "find_postgres_bin"]
