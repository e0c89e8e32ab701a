"""DQN in PyTorch: the learner core shared by the reference loop and the distributed trainer.

config      TrainConfig: the hyperparameters (zoo's CartPole-v1 defaults) and their CLI
schedule    epsilon as a function of env steps
network     QNetwork; weights as named arrays and safetensors checkpoints
learner     DQNLearner: the TD update, target sync, epsilon-greedy actions
local_buffer  an in-process ring buffer (the baseline, and the reference loop's buffer)
prefetch    fetch batches on a background thread ahead of the learner
evaluation  greedy episodes on separately seeded vector envs
reference   the in-process loop: `python -m trainer.reference --seed 0`
benchmark   gradient steps per second of the learner alone
service_loop  the trainer fed by the replay service; curves: learning-curve plots

Nothing is imported here, so `trainer.config` and `trainer.schedule` load without torch.
"""
