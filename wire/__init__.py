"""The wire contract of the replay service, shared by the service and the SDK.

Like h11 for HTTP, it does no I/O and belongs to neither side: `schema` (what a
buffer holds), `codec` (JSON and safetensors bodies, media types) and `errors`
(every error code and the HTTP status it travels with). The service imports
nothing from the SDK; both import this.
"""
