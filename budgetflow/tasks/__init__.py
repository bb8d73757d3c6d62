"""tasks: see DESIGN.md (not built yet)."""
