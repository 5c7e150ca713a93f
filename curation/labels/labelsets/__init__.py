"""Label set files that ship with ctcurate (TOML)."""
