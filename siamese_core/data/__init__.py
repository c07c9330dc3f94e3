"""Images in: sources and splits, samplers, decoding, the input pipelines, augmentation, uploads and the data-set builder.

Imports nothing: each module is imported by name, so importing the package never loads torch."""
