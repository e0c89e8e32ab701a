"""Plug-ins for the training libraries people already use: `sb3` (Stable-Baselines3's
replay buffer) and `torchrl` (a TorchRL storage). Each needs its extra:
`pip install 'replay-service[sb3]'` or `'replay-service[torchrl]'`."""
