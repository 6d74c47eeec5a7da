"""The HTTP API: the FastAPI app, API keys, and the commands that serve and manage them."""
