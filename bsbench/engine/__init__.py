"""The engine: request state, KV block manager, model runner and the loop that drives a scheduler."""
