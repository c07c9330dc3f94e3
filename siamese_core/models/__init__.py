"""The networks: backbones (timm, torchvision, the project's small nets), heads, weights.

Imports nothing: each module is imported by name, so importing the package never loads torch."""
