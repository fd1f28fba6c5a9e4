"""imagegate: a self-hosted, OpenAI-compatible image-generation gateway."""
