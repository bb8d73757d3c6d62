"""sandbox: see DESIGN.md (not built yet)."""
