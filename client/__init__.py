"""The Python SDK: `ReplayClient` and `AsyncReplayClient` over one shared protocol.

Import its public names from `replay_service`; the collector application, which
needs gymnasium, lives apart in `replay_service.client.collector`.
"""
