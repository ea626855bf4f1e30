"""The simulated backend: the real engine loop, schedulers and KV block manager, with a runner that
computes no tensors and a cost model that advances a virtual clock (issue 10). Entry point: `backend.open_sim`."""
