"""llm: see DESIGN.md (not built yet)."""
