"""How good a model is: verification, retrieval and re-identification metrics, the evaluation report.

Imports nothing: each module is imported by name, so importing the package never loads torch."""
