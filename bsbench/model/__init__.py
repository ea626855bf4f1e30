"""The torch model runner: loading, presets and shapes, attention, KV tensors. Knows no policy."""
