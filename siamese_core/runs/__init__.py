"""The run directory (the contract between trainer and app), the checkpoint format, jobs and the queue, a model's context.

Imports nothing: each module is imported by name, so importing the package never loads torch."""
