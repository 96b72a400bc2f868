"""Administration: orgs, agents, API keys and credentials, each change audited."""
