"""The checkpoint's `domain` field: what a model's images looked like (written by siamese_core.inference.domain),
checked field by field when a checkpoint loads, so a damaged or forged description is refused in words and never
reaches the arithmetic. Plain values and tensors only: it loads with torch.load(weights_only=True)."""

from __future__ import annotations

import math
from typing import Optional

DOMAIN_KEY = "domain"
DOMAIN_VERSION = 1
STAT_COUNT = 9  # siamese_core.inference.domain.STATS
MAX_CENTRES = 4096
MAX_FEATURE_DIM = 16384
MAX_CENTRE_VALUES = 2 ** 21  # 4 MB in float16: four times what describe_domain keeps
MAX_WHAT = 100  # characters in the words for what the images were


def _number(value, low: float, high: float) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and low <= value <= high)


def _tensor_problem(name: str, value, shape: tuple) -> Optional[str]:
    """None when `value` is a finite floating tensor of `shape` (None in it: any size), else why not."""
    import torch

    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        return f"{name} are not a table of numbers"
    if value.dim() != len(shape) or any(want is not None and got != want for got, want in zip(value.shape, shape)):
        return f"{name} have the shape {tuple(value.shape)}"
    if not bool(torch.isfinite(value).all()):
        return f"{name} hold a number that is not finite"
    return None


def domain_problem(domain) -> Optional[str]:
    """What is wrong with a checkpoint's description of its images, in words; None when nothing is. A description
    from a newer version is not checked further: the model then simply cannot tell."""
    problem = _problem(domain)
    return f"its description of its images is damaged ({problem})" if problem else None


def _problem(domain) -> Optional[str]:
    if not isinstance(domain, dict):
        return "it is not a table of values"
    version = domain.get("version")
    if not (isinstance(version, int) and not isinstance(version, bool) and version >= 1):
        return "it has no version number"
    if version > DOMAIN_VERSION:
        return None
    centres = domain.get("centres")
    problem = _tensor_problem("its reference vectors", centres, (None, None))
    if problem:
        return problem
    count, dim = centres.shape
    if not (1 <= count <= MAX_CENTRES and 1 <= dim <= MAX_FEATURE_DIM and count * dim <= MAX_CENTRE_VALUES):
        return f"its reference vectors are {count} x {dim}, more than a description holds"
    for key, words, shape in (("stats_mean", "its statistics' means", (STAT_COUNT,)),
                              ("stats_scale", "its statistics' scales", (STAT_COUNT,)),
                              ("stats_precision", "its statistics' precision", (STAT_COUNT, STAT_COUNT))):
        problem = _tensor_problem(words, domain.get(key), shape)
        if problem:
            return problem
    if not bool((domain["stats_scale"] > 0).all()):
        return "its statistics' scales hold a number that is not positive"
    if not _number(domain.get("feature_limit"), 0.0, 2.0):
        return f"its feature limit {domain.get('feature_limit')!r} is not a distance from 0 to 2"
    if not _number(domain.get("stats_limit"), 0.0, 1e6):
        return f"its statistics' limit {domain.get('stats_limit')!r} is not a positive number"
    paper = domain.get("paper_limit")
    if paper is not None and not _number(paper, 0.0, 1.0):
        return f"its paper limit {paper!r} is not a share from 0 to 1"
    what = domain.get("what")
    if what is not None and not (isinstance(what, str) and 0 < len(what) <= MAX_WHAT and what.isprintable()):
        return f"its words for its images are not one short line of text (at most {MAX_WHAT} characters)"
    for key in ("images", "calibration_images"):
        value = domain.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10 ** 9):
            return f"its {key.replace('_', ' ')} count {value!r} is not a whole number"
    return None
