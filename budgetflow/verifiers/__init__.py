"""verifiers: see DESIGN.md (not built yet)."""
