"""agents: see DESIGN.md (not built yet)."""
