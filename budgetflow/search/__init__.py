"""search: see DESIGN.md (not built yet)."""
