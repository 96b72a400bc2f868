"""Identity: organizations, agents and the API keys that identify them."""
