"""Pictures of the embedding: the 3D map, the epoch-by-epoch map and its snapshots, projections, map metadata.

Imports nothing: each module is imported by name, so importing the package never loads torch."""
