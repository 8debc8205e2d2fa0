"""Pure, deterministic domain code: models, playbooks and the compensation policy."""
