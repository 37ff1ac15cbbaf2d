"""The registry operator: reconciles the AgentVersion lifecycle through Promotions (kopf)."""
