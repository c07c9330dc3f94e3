"""The trainer: the loop, the frozen-backbone path, what both share, losses, distributed training.

Imports nothing: each module is imported by name, so importing the package never loads torch."""
