"""Using a trained model: the loaded model and its verdicts, galleries, the search index, export, explanations.

Imports nothing: each module is imported by name, so importing the package never loads torch."""
