"""The replay service: FastAPI routes over capped buffers kept in Redis."""
