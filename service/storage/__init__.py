"""Where buffers live: Redis keys, Lua scripts, and the operations built on them."""
