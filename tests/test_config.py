"""TrainConfig.resolve(), pinned: what a grid of representative configs resolves to, field by field, and the one
sentence each bad config gets (the first of its faults, in the order resolve() checks them).

RESOLVED and REFUSED were captured from resolve() as it stood before it was split per concern (issue 22), so the split
changed no decision; a change of a default now shows here as the rows it changes. Every config is resolved on a CPU
(device="cpu"), so the default recipe's backbone does not depend on the machine and no torch is imported.
"""

import dataclasses
import itertools

import pytest

from siamese_core.config import TrainConfig, parse_duration
from siamese_core.errors import UserError

# The fields resolve() decides, in the order of each row's values (str() of each, so 1 and 1.0 differ).
COLUMNS = ("recipe", "backbone", "mode", "mining", "split", "max_val_classes", "input", "image_size", "channels",
           "augment", "head", "head_norm", "dropout", "embedding_dim", "margin", "neck", "flip_test", "id_loss",
           "optimizer", "schedule", "warmup", "weight_decay", "lr", "same_share", "batch_size", "pretrained", "frozen",
           "class_word", "threshold_policy")
# Every data set with every way of naming a recipe and a mode, and with the backbones that change the defaults;
# the rows after the grid each turn one more knob (frozen, input, legacy augment values, explicit values, class words).
DATA = ("dataset=digits", "train_path=photos/faces10", "dataset=triplets triplets=shop/items.csv")
RECIPES = ("", "recipe=classic", "mode=pair", "mode=contrastive", "mode=triplet", "recipe=default mode=pair",
           "recipe=default mode=contrastive")
BACKBONES = ("", "backbone=convnet", "backbone=timm:efficientnet_b0")
GRID = [" ".join(part for part in parts if part) for parts in itertools.product(DATA, RECIPES, BACKBONES)]

RESOLVED = {
    "dataset=digits":
        "default small-resnet triplet batch-hard image 50 digit 64 3 digits product True 0.3 128 0.3 True False 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False digit medians",
    "dataset=digits backbone=convnet":
        "default convnet triplet batch-hard image 50 digit 28 1 digits absdiff False 0.0 128 0.3 True False 1.0 adamw cosine 0.05 0.05 0.001 0.1 128 False False digit medians",
    "dataset=digits backbone=timm:efficientnet_b0":
        "default timm:efficientnet_b0 triplet batch-hard image 50 digit 224 3 digits product True 0.3 128 0.3 True False 1.0 adamw cosine 0.05 0.05 0.0001 0.1 64 True False digit medians",
    "dataset=digits recipe=classic":
        "classic timm:efficientnet_b0 pair none image 0 digit 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False digit medians",
    "dataset=digits recipe=classic backbone=convnet":
        "classic convnet pair none image 0 digit 28 1 none absdiff False 0.0 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 128 False False digit medians",
    "dataset=digits recipe=classic backbone=timm:efficientnet_b0":
        "classic timm:efficientnet_b0 pair none image 0 digit 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False digit medians",
    "dataset=digits mode=pair":
        "classic timm:efficientnet_b0 pair none image 0 digit 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False digit medians",
    "dataset=digits mode=pair backbone=convnet":
        "classic convnet pair none image 0 digit 28 1 none absdiff False 0.0 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 128 False False digit medians",
    "dataset=digits mode=pair backbone=timm:efficientnet_b0":
        "classic timm:efficientnet_b0 pair none image 0 digit 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False digit medians",
    "dataset=digits mode=contrastive":
        "classic timm:efficientnet_b0 contrastive none image 0 digit 224 3 none product True 0.3 512 1.0 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False digit medians",
    "dataset=digits mode=contrastive backbone=convnet":
        "classic convnet contrastive none image 0 digit 28 1 none absdiff False 0.0 512 1.0 False False 0.0 adam constant 0.0 0.0 0.001 0.1 128 False False digit medians",
    "dataset=digits mode=contrastive backbone=timm:efficientnet_b0":
        "classic timm:efficientnet_b0 contrastive none image 0 digit 224 3 none product True 0.3 512 1.0 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False digit medians",
    "dataset=digits mode=triplet":
        "classic timm:efficientnet_b0 triplet none image 0 digit 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False digit medians",
    "dataset=digits mode=triplet backbone=convnet":
        "classic convnet triplet none image 0 digit 28 1 none absdiff False 0.0 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 128 False False digit medians",
    "dataset=digits mode=triplet backbone=timm:efficientnet_b0":
        "classic timm:efficientnet_b0 triplet none image 0 digit 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False digit medians",
    "dataset=digits recipe=default mode=pair":
        "default small-resnet pair none image 50 digit 64 3 digits product True 0.3 128 0.3 False False 0.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False digit medians",
    "dataset=digits recipe=default mode=pair backbone=convnet":
        "default convnet pair none image 50 digit 28 1 digits absdiff False 0.0 128 0.3 False False 0.0 adamw cosine 0.05 0.05 0.001 0.1 128 False False digit medians",
    "dataset=digits recipe=default mode=pair backbone=timm:efficientnet_b0":
        "default timm:efficientnet_b0 pair none image 50 digit 224 3 digits product True 0.3 128 0.3 False False 0.0 adamw cosine 0.05 0.05 0.0001 0.1 64 True False digit medians",
    "dataset=digits recipe=default mode=contrastive":
        "default small-resnet contrastive none image 50 digit 64 3 digits product True 0.3 128 1.0 True False 0.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False digit medians",
    "dataset=digits recipe=default mode=contrastive backbone=convnet":
        "default convnet contrastive none image 50 digit 28 1 digits absdiff False 0.0 128 1.0 True False 0.0 adamw cosine 0.05 0.05 0.001 0.1 128 False False digit medians",
    "dataset=digits recipe=default mode=contrastive backbone=timm:efficientnet_b0":
        "default timm:efficientnet_b0 contrastive none image 50 digit 224 3 digits product True 0.3 128 1.0 True False 0.0 adamw cosine 0.05 0.05 0.0001 0.1 64 True False digit medians",
    "train_path=photos/faces10":
        "default small-resnet triplet batch-hard class 50 fit 64 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False person medians",
    "train_path=photos/faces10 backbone=convnet":
        "default convnet triplet batch-hard class 50 fit 28 1 digits absdiff False 0.0 128 0.3 True False 1.0 adamw cosine 0.05 0.05 0.001 0.1 128 False False person medians",
    "train_path=photos/faces10 backbone=timm:efficientnet_b0":
        "default timm:efficientnet_b0 triplet batch-hard class 50 fit 224 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.0001 0.1 64 True False person medians",
    "train_path=photos/faces10 recipe=classic":
        "classic timm:efficientnet_b0 pair none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False person medians",
    "train_path=photos/faces10 recipe=classic backbone=convnet":
        "classic convnet pair none class 0 resize 28 1 none absdiff False 0.0 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 128 False False person medians",
    "train_path=photos/faces10 recipe=classic backbone=timm:efficientnet_b0":
        "classic timm:efficientnet_b0 pair none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False person medians",
    "train_path=photos/faces10 mode=pair":
        "classic timm:efficientnet_b0 pair none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False person medians",
    "train_path=photos/faces10 mode=pair backbone=convnet":
        "classic convnet pair none class 0 resize 28 1 none absdiff False 0.0 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 128 False False person medians",
    "train_path=photos/faces10 mode=pair backbone=timm:efficientnet_b0":
        "classic timm:efficientnet_b0 pair none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False person medians",
    "train_path=photos/faces10 mode=contrastive":
        "classic timm:efficientnet_b0 contrastive none class 0 resize 224 3 none product True 0.3 512 1.0 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False person medians",
    "train_path=photos/faces10 mode=contrastive backbone=convnet":
        "classic convnet contrastive none class 0 resize 28 1 none absdiff False 0.0 512 1.0 False False 0.0 adam constant 0.0 0.0 0.001 0.1 128 False False person medians",
    "train_path=photos/faces10 mode=contrastive backbone=timm:efficientnet_b0":
        "classic timm:efficientnet_b0 contrastive none class 0 resize 224 3 none product True 0.3 512 1.0 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False person medians",
    "train_path=photos/faces10 mode=triplet":
        "classic timm:efficientnet_b0 triplet none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False person medians",
    "train_path=photos/faces10 mode=triplet backbone=convnet":
        "classic convnet triplet none class 0 resize 28 1 none absdiff False 0.0 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 128 False False person medians",
    "train_path=photos/faces10 mode=triplet backbone=timm:efficientnet_b0":
        "classic timm:efficientnet_b0 triplet none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False person medians",
    "train_path=photos/faces10 recipe=default mode=pair":
        "default small-resnet pair none class 50 fit 64 3 photos product True 0.3 128 0.3 False True 0.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False person medians",
    "train_path=photos/faces10 recipe=default mode=pair backbone=convnet":
        "default convnet pair none class 50 fit 28 1 digits absdiff False 0.0 128 0.3 False False 0.0 adamw cosine 0.05 0.05 0.001 0.1 128 False False person medians",
    "train_path=photos/faces10 recipe=default mode=pair backbone=timm:efficientnet_b0":
        "default timm:efficientnet_b0 pair none class 50 fit 224 3 photos product True 0.3 128 0.3 False True 0.0 adamw cosine 0.05 0.05 0.0001 0.1 64 True False person medians",
    "train_path=photos/faces10 recipe=default mode=contrastive":
        "default small-resnet contrastive none class 50 fit 64 3 photos product True 0.3 128 1.0 True True 0.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False person medians",
    "train_path=photos/faces10 recipe=default mode=contrastive backbone=convnet":
        "default convnet contrastive none class 50 fit 28 1 digits absdiff False 0.0 128 1.0 True False 0.0 adamw cosine 0.05 0.05 0.001 0.1 128 False False person medians",
    "train_path=photos/faces10 recipe=default mode=contrastive backbone=timm:efficientnet_b0":
        "default timm:efficientnet_b0 contrastive none class 50 fit 224 3 photos product True 0.3 128 1.0 True True 0.0 adamw cosine 0.05 0.05 0.0001 0.1 64 True False person medians",
    "dataset=triplets triplets=shop/items.csv":
        "default small-resnet triplet batch-hard class 50 fit 64 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False product medians",
    "dataset=triplets triplets=shop/items.csv backbone=convnet":
        "default convnet triplet batch-hard class 50 fit 28 1 digits absdiff False 0.0 128 0.3 True False 1.0 adamw cosine 0.05 0.05 0.001 0.1 128 False False product medians",
    "dataset=triplets triplets=shop/items.csv backbone=timm:efficientnet_b0":
        "default timm:efficientnet_b0 triplet batch-hard class 50 fit 224 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.0001 0.1 64 True False product medians",
    "dataset=triplets triplets=shop/items.csv recipe=classic":
        "classic timm:efficientnet_b0 pair none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False product medians",
    "dataset=triplets triplets=shop/items.csv recipe=classic backbone=convnet":
        "classic convnet pair none class 0 resize 28 1 none absdiff False 0.0 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 128 False False product medians",
    "dataset=triplets triplets=shop/items.csv recipe=classic backbone=timm:efficientnet_b0":
        "classic timm:efficientnet_b0 pair none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False product medians",
    "dataset=triplets triplets=shop/items.csv mode=pair":
        "classic timm:efficientnet_b0 pair none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False product medians",
    "dataset=triplets triplets=shop/items.csv mode=pair backbone=convnet":
        "classic convnet pair none class 0 resize 28 1 none absdiff False 0.0 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 128 False False product medians",
    "dataset=triplets triplets=shop/items.csv mode=pair backbone=timm:efficientnet_b0":
        "classic timm:efficientnet_b0 pair none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False product medians",
    "dataset=triplets triplets=shop/items.csv mode=contrastive":
        "classic timm:efficientnet_b0 contrastive none class 0 resize 224 3 none product True 0.3 512 1.0 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False product medians",
    "dataset=triplets triplets=shop/items.csv mode=contrastive backbone=convnet":
        "classic convnet contrastive none class 0 resize 28 1 none absdiff False 0.0 512 1.0 False False 0.0 adam constant 0.0 0.0 0.001 0.1 128 False False product medians",
    "dataset=triplets triplets=shop/items.csv mode=contrastive backbone=timm:efficientnet_b0":
        "classic timm:efficientnet_b0 contrastive none class 0 resize 224 3 none product True 0.3 512 1.0 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False product medians",
    "dataset=triplets triplets=shop/items.csv mode=triplet":
        "classic timm:efficientnet_b0 triplet none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False product medians",
    "dataset=triplets triplets=shop/items.csv mode=triplet backbone=convnet":
        "classic convnet triplet none class 0 resize 28 1 none absdiff False 0.0 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 128 False False product medians",
    "dataset=triplets triplets=shop/items.csv mode=triplet backbone=timm:efficientnet_b0":
        "classic timm:efficientnet_b0 triplet none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False product medians",
    "dataset=triplets triplets=shop/items.csv recipe=default mode=pair":
        "default small-resnet pair none class 50 fit 64 3 photos product True 0.3 128 0.3 False True 0.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False product medians",
    "dataset=triplets triplets=shop/items.csv recipe=default mode=pair backbone=convnet":
        "default convnet pair none class 50 fit 28 1 digits absdiff False 0.0 128 0.3 False False 0.0 adamw cosine 0.05 0.05 0.001 0.1 128 False False product medians",
    "dataset=triplets triplets=shop/items.csv recipe=default mode=pair backbone=timm:efficientnet_b0":
        "default timm:efficientnet_b0 pair none class 50 fit 224 3 photos product True 0.3 128 0.3 False True 0.0 adamw cosine 0.05 0.05 0.0001 0.1 64 True False product medians",
    "dataset=triplets triplets=shop/items.csv recipe=default mode=contrastive":
        "default small-resnet contrastive none class 50 fit 64 3 photos product True 0.3 128 1.0 True True 0.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False product medians",
    "dataset=triplets triplets=shop/items.csv recipe=default mode=contrastive backbone=convnet":
        "default convnet contrastive none class 50 fit 28 1 digits absdiff False 0.0 128 1.0 True False 0.0 adamw cosine 0.05 0.05 0.001 0.1 128 False False product medians",
    "dataset=triplets triplets=shop/items.csv recipe=default mode=contrastive backbone=timm:efficientnet_b0":
        "default timm:efficientnet_b0 contrastive none class 50 fit 224 3 photos product True 0.3 128 1.0 True True 0.0 adamw cosine 0.05 0.05 0.0001 0.1 64 True False product medians",
    "train_path=photos/x backbone=small-resnet mode=pair":
        "classic small-resnet pair none class 0 resize 64 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 32 False False class medians",
    "train_path=photos/x backbone=torchvision:resnet18":
        "default torchvision:resnet18 triplet batch-hard class 50 fit 224 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.0001 0.1 64 True False class medians",
    "train_path=photos/x backbone=torchvision:resnet18 mode=pair":
        "classic torchvision:resnet18 pair none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False class medians",
    "train_path=photos/x backbone=torchvision:resnet18 pretrained=False":
        "default torchvision:resnet18 triplet batch-hard class 50 fit 224 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False class medians",
    "train_path=photos/x backbone=timm:efficientnet_b0 frozen=True":
        "default timm:efficientnet_b0 triplet batch-hard class 50 fit 224 3 photos product True 0.3 128 0.3 True False 0.0 adamw cosine 0.05 0.05 0.001 0.1 64 True True class medians",
    "train_path=photos/x backbone=timm:efficientnet_b0 frozen=True mode=triplet":
        "classic timm:efficientnet_b0 triplet batch-hard class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 32 True True class medians",
    "train_path=photos/x backbone=timm:efficientnet_b0 frozen=True mode=pair":
        "classic timm:efficientnet_b0 pair none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 32 True True class medians",
    "train_path=photos/x backbone=timm:efficientnet_b0 frozen=True mode=contrastive":
        "classic timm:efficientnet_b0 contrastive none class 0 resize 224 3 none product True 0.3 512 1.0 False False 0.0 adam constant 0.0 0.0 0.001 0.1 32 True True class medians",
    "train_path=photos/x backbone=timm:efficientnet_b0 frozen=True mode=triplet id_loss=0.5 mining=semi-hard":
        "classic timm:efficientnet_b0 triplet semi-hard class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.5 adam constant 0.0 0.0 0.001 0.1 32 True True class medians",
    "dataset=triplets triplets=t.csv backbone=timm:efficientnet_b0 frozen=True mode=triplet":
        "classic timm:efficientnet_b0 triplet none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 32 True True identity medians",
    "train_path=photos/x backbone=convnet frozen=True weights=w.pth":
        "default convnet triplet batch-hard class 50 fit 28 1 digits absdiff False 0.0 128 0.3 True False 0.0 adamw cosine 0.05 0.05 0.001 0.1 128 False True class medians",
    "train_path=photos/x frozen=False":
        "default small-resnet triplet batch-hard class 50 fit 64 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False class medians",
    "train_path=photos/x frozen=True lr=0.01 weights=w.pth":
        "default small-resnet triplet batch-hard class 50 fit 64 3 photos product True 0.3 128 0.3 True False 0.0 adamw cosine 0.05 0.05 0.01 0.1 64 False True class medians",
    "train_path=photos/x input=digit":
        "default small-resnet triplet batch-hard class 50 digit 64 3 digits product True 0.3 128 0.3 True False 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False class medians",
    "train_path=photos/x input=digit mode=pair":
        "classic timm:efficientnet_b0 pair none class 0 digit 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False class medians",
    "dataset=digits input=resize":
        "default small-resnet triplet batch-hard image 50 resize 64 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False digit medians",
    "dataset=digits input=resize backbone=timm:efficientnet_b0":
        "default timm:efficientnet_b0 triplet batch-hard image 50 resize 224 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.0001 0.1 64 True False digit medians",
    "train_path=photos/x mode=pair augment=True":
        "classic timm:efficientnet_b0 pair none class 0 resize 224 3 shift product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.1 32 True False class medians",
    "train_path=photos/x augment=False":
        "default small-resnet triplet batch-hard class 50 fit 64 3 none product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False class medians",
    "train_path=photos/x augment=shift":
        "default small-resnet triplet batch-hard class 50 fit 64 3 shift product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False class medians",
    "train_path=photos/x schedule=constant":
        "default small-resnet triplet batch-hard class 50 fit 64 3 photos product True 0.3 128 0.3 True True 1.0 adamw constant 0.0 0.05 0.001 0.1 64 False False class medians",
    "train_path=photos/x optimizer=adam":
        "default small-resnet triplet batch-hard class 50 fit 64 3 photos product True 0.3 128 0.3 True True 1.0 adam cosine 0.05 0.0 0.001 0.1 64 False False class medians",
    "train_path=photos/x mode=pair optimizer=adamw schedule=cosine":
        "classic timm:efficientnet_b0 pair none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adamw cosine 0.05 0.05 0.0001 0.1 32 True False class medians",
    "train_path=photos/x mining=semi-hard":
        "default small-resnet triplet semi-hard class 50 fit 64 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False class medians",
    "train_path=photos/x mining=none":
        "default small-resnet triplet none class 50 fit 64 3 photos product True 0.3 128 0.3 True True 0.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False class medians",
    "train_path=photos/x split=image max_val_classes=0 val_fraction=0.5":
        "default small-resnet triplet batch-hard image 0 fit 64 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False class medians",
    "dataset=digits split=class max_val_classes=3":
        "default small-resnet triplet batch-hard class 3 digit 64 3 digits product True 0.3 128 0.3 True False 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False digit medians",
    "train_path=photos/x image_size=96 channels=1 head=concat dropout=0.5 embedding_dim=256 margin=0.5":
        "default small-resnet triplet batch-hard class 50 fit 96 1 photos concat True 0.5 256 0.5 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False class medians",
    "train_path=photos/x neck=False flip_test=False id_loss=0.5 warmup=0.1 weight_decay=0.01 lr=0.01":
        "default small-resnet triplet batch-hard class 50 fit 64 3 photos product True 0.3 128 0.3 False False 0.5 adamw cosine 0.1 0.01 0.01 0.1 64 False False class medians",
    "train_path=photos/x same_share=0.5 batch_size=16 head_norm=False pretrained=False":
        "default small-resnet triplet batch-hard class 50 fit 64 3 photos product False 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.5 16 False False class same-share",
    "train_path=photos/x mode=pair same_share=0.2 batch_size=8 precision=bf16 device=cpu":
        "classic timm:efficientnet_b0 pair none class 0 resize 224 3 none product True 0.3 512 0.3 False False 0.0 adam constant 0.0 0.0 0.0001 0.2 8 True False class same-share",
    "train_path=photos/x class_word=signature":
        "default small-resnet triplet batch-hard class 50 fit 64 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False signature medians",
    "train_path=uploads/run1 data_name=signatures.zip":
        "default small-resnet triplet batch-hard class 50 fit 64 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False signature medians",
    "train_path=photos/x data_name=faces10.zip":
        "default small-resnet triplet batch-hard class 50 fit 64 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False person medians",
    "dataset=triplets triplets=data/t.csv images=data/people":
        "default small-resnet triplet batch-hard class 50 fit 64 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False person medians",
    "dataset=mnist class_word=numeral":
        "default small-resnet triplet batch-hard image 50 digit 64 3 digits product True 0.3 128 0.3 True False 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False numeral medians",
    "dataset=mnist":
        "default small-resnet triplet batch-hard image 50 digit 64 3 digits product True 0.3 128 0.3 True False 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False digit medians",
    "dataset=mnist mode=pair backbone=convnet":
        "classic convnet pair none image 0 digit 28 1 none absdiff False 0.0 512 0.3 False False 0.0 adam constant 0.0 0.0 0.001 0.1 128 False False digit medians",
    "train_path=photos/x epochs=1 eval_pairs=2 pairs_per_epoch=2":
        "default small-resnet triplet batch-hard class 50 fit 64 3 photos product True 0.3 128 0.3 True True 1.0 adamw cosine 0.05 0.05 0.001 0.1 64 False False class medians",
}

# Each check once, then configs with two faults: the first in resolve()'s order is the one a person reads.
NO_TRAINING_IMAGES = ("Say where the training images are: --train_path DIR (one folder per class), or --dataset "
                      "digits for the built-in digits.")
FROZEN_WITHOUT_WEIGHTS = ("A frozen backbone with random weights learns nothing: name pretrained weights with "
                          "--weights FILE (a .pth or .safetensors file, or a run's checkpoint), or drop --frozen "
                          "to train the whole network.")
REFUSED = {
    "dataset=bogus": "Unknown dataset 'bogus': choose one of digits, mnist, folder, triplets.",
    "recipe=fancy": "Unknown recipe 'fancy': choose one of default, classic.",
    "mode=siamese": "Unknown mode 'siamese': choose one of pair, contrastive, triplet.",
    "train_path=x split=random": "Unknown split 'random': choose one of class, image.",
    "train_path=x mining=hardest": "Unknown mining 'hardest': choose one of none, batch-hard, semi-hard.",
    "train_path=x precision=fp8": "Unknown precision 'fp8': choose one of auto, fp32, bf16.",
    "train_path=x head=sum": "Unknown head 'sum': choose one of absdiff, product, concat.",
    "dataset=folder": NO_TRAINING_IMAGES,
    "dataset=triplets": "--dataset triplets needs --triplets CSV (columns Anchor, Positive, Negative).",
    "train_path=x mode=pair mining=batch-hard": "--mining only applies to --mode triplet.",
    "train_path=x epochs=0": "--epochs must be at least 1.",
    "train_path=x eval_pairs=1": "--eval-pairs must be at least 2.",
    "train_path=x pairs_per_epoch=1": "--pairs-per-epoch must be at least 2.",
    "train_path=x val_fraction=1.0": "--val-fraction must be between 0 and 1 (for example 0.3).",
    "train_path=x val_fraction=0.0": "--val-fraction must be between 0 and 1 (for example 0.3).",
    "train_path=x max_val_classes=1": "--max-val-classes must be 0 (no cap) or at least 2.",
    "train_path=x max_val_classes=-1": "--max-val-classes must be 0 (no cap) or at least 2.",
    "train_path=x input=crop": "Unknown input 'crop': choose one of resize, fit, digit, ink.",
    "train_path=x image_size=4": "--image-size must be at least 8 pixels.",
    "train_path=x augment=flip": "Unknown augment 'flip': choose one of none, shift, photos, digits, ink.",
    "train_path=x id_loss=-1.0": "--id-loss is a weight: 0 (off) or more.",
    "train_path=x mode=pair id_loss=1.0": "--id-loss needs the classes of the training images: use it with --mining.",
    "train_path=x mining=none id_loss=1.0": "--id-loss needs the classes of the training images: use it with --mining.",
    # checked before a frozen triplet run's mining becomes batch-hard, so asking for the identity loss is refused
    "train_path=x backbone=timm:efficientnet_b0 frozen=True mode=triplet id_loss=1.0":
        "--id-loss needs the classes of the training images: use it with --mining.",
    "train_path=x optimizer=sgd": "Unknown optimizer 'sgd': choose one of adamw, adam.",
    "train_path=x schedule=step": "Unknown schedule 'step': choose one of cosine, constant.",
    "train_path=x warmup=1.0": "--warmup is a share of all training steps, from 0 to below 1 (for example 0.05).",
    "train_path=x lr=0.0": "--lr must be positive (for example 0.001).",
    "train_path=x same_share=0.0":
        "--same-share is the share of same pairs the threshold is tuned for, between 0 and 1.",
    "train_path=x same_share=1.0":
        "--same-share is the share of same pairs the threshold is tuned for, between 0 and 1.",
    "train_path=x threshold_policy=best": "Unknown threshold policy 'best': choose one of medians, same-share.",
    "train_path=x batch_size=1": "--batch-size must be at least 2.",
    "train_path=x backbone=torchvision:resnet18 pretrained=False frozen=True": FROZEN_WITHOUT_WEIGHTS,
    "train_path=x backbone=convnet frozen=True": FROZEN_WITHOUT_WEIGHTS,
    "dataset=bogus epochs=0": "Unknown dataset 'bogus': choose one of digits, mnist, folder, triplets.",
    "mode=siamese split=random": "Unknown mode 'siamese': choose one of pair, contrastive, triplet.",
    "train_path=x split=random mining=hardest": "Unknown split 'random': choose one of class, image.",
    "dataset=folder lr=0.0": NO_TRAINING_IMAGES,
    "train_path=x epochs=0 batch_size=1": "--epochs must be at least 1.",
    "train_path=x max_val_classes=1 input=crop": "--max-val-classes must be 0 (no cap) or at least 2.",
    "train_path=x image_size=4 augment=flip": "--image-size must be at least 8 pixels.",
    "train_path=x id_loss=-1.0 optimizer=sgd": "--id-loss is a weight: 0 (off) or more.",
    "train_path=x same_share=0.0 batch_size=1":
        "--same-share is the share of same pairs the threshold is tuned for, between 0 and 1.",
    "train_path=x lr=0.0 backbone=convnet frozen=True": "--lr must be positive (for example 0.001).",
    "train_path=x head=sum mode=pair mining=batch-hard": "Unknown head 'sum': choose one of absdiff, product, concat.",
}


def config(spec: str) -> TrainConfig:
    """'train_path=x mode=pair lr=0.01 frozen=True' as a TrainConfig on a CPU."""
    values = {}
    for item in spec.split():
        name, _, text = item.partition("=")
        values[name] = {"True": True, "False": False}.get(text, text)
        for kind in (int, float):
            if isinstance(values[name], str):
                try:
                    values[name] = kind(text)
                except ValueError:
                    pass
    return TrainConfig(**{"device": "cpu", **values})


def test_the_table_holds_the_whole_grid():
    assert [spec for spec in GRID if spec not in RESOLVED] == []


def test_every_config_of_the_table_resolves_field_by_field_as_captured():
    differences = []
    for spec, row in RESOLVED.items():
        given = config(spec)
        asked = given.to_dict()
        resolved = given.resolve()
        assert given.to_dict() == asked, f"resolve() changed the config it was asked about: {spec}"
        expected = dict(zip(COLUMNS, row.split(" ")))
        assert len(expected) == len(COLUMNS) == len(row.split(" ")), spec
        for name in COLUMNS:
            if str(getattr(resolved, name)) != expected[name]:
                differences.append(f"{spec}: {name} = {getattr(resolved, name)!r}, captured {expected[name]}")
        for field in dataclasses.fields(TrainConfig):  # what resolve() does not decide, it passes on as given
            if field.name not in COLUMNS and getattr(resolved, field.name) != asked[field.name]:
                differences.append(f"{spec}: {field.name} changed to {getattr(resolved, field.name)!r}")
    assert differences == []


@pytest.mark.parametrize("spec", REFUSED)
def test_a_bad_config_gets_the_sentence_of_its_first_fault(spec):
    with pytest.raises(UserError) as refused:
        config(spec).resolve()
    assert str(refused.value) == REFUSED[spec]


@pytest.mark.parametrize("text, seconds", [("90", 90), ("60s", 60), ("2m", 120), ("15 min", 900), ("1.5m", 90),
                                           ("1h", 3600), (" 45 seconds ", 45)])
def test_a_length_of_time_reads_as_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "-5s", "2 weeks", "1e3", "60ss", "m"])
def test_a_length_that_is_not_one_gets_a_sentence(text):
    with pytest.raises(UserError, match="is not a length of time: write seconds or minutes, for example 60s"):
        parse_duration(text)


@pytest.mark.parametrize("seconds", [0, 5, 9.9, 2 * 86400, float("nan")])
def test_a_time_budget_out_of_bounds_is_refused(seconds):
    with pytest.raises(UserError, match="--time must be from 10 seconds to 24 hours"):
        TrainConfig(dataset="digits", device="cpu", time_budget=seconds).resolve()
    assert TrainConfig(dataset="digits", device="cpu", time_budget=60).resolve().time_budget == 60
