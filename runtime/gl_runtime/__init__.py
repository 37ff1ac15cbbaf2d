"""gl-agent-runtime: serves one agent version's capabilities over HTTP inside its pod."""
