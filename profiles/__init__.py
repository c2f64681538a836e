"""Profile files (`NAME.toml`), data only; engine.profiles reads and resolves them."""
