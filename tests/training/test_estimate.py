"""The estimate before Start times the batch the run will train on (training.estimate)."""

import numpy as np

from siamese_core.config import TrainConfig
from siamese_core.data import sources as D
from siamese_core.training.common import Batches
from siamese_core.training.estimate import TIMED_CLASSES, batch_classes


def test_a_set_of_few_classes_is_timed_on_batches_as_small_as_its_own(tmp_path):
    """A P x K batch takes 4 images of each class up to batch_size / 4 classes: two people's images give batches of
    8 images. The timing draws from as many classes as the run trains on, so it times that batch, not one of 64."""
    for name in ("alice", "bob"):
        (tmp_path / "two" / name).mkdir(parents=True)
    for i in range(10):
        (tmp_path / "ten" / f"p{i}").mkdir(parents=True)
    two = TrainConfig(train_path=str(tmp_path / "two"), split="image", device="cpu").resolve()
    ten = TrainConfig(train_path=str(tmp_path / "ten"), device="cpu").resolve()  # split by class: 3 held out
    assert (batch_classes(two), batch_classes(ten)) == (2, 7)
    assert batch_classes(TrainConfig(dataset="digits", backbone="convnet", device="cpu").resolve()) == 10
    assert batch_classes(TrainConfig(train_path=str(tmp_path / "two"), mode="pair").resolve()) == TIMED_CLASSES

    for config, classes in ((two, 2), (ten, 7)):  # what the run would draw from its own labels...
        real = D.ImageSet(np.zeros((classes * 10, 1, 1, 1), dtype=np.uint8), np.repeat(np.arange(classes), 10),
                          [str(c) for c in range(classes)], [str(i) for i in range(classes * 10)])
        timed = D.ImageSet(np.zeros((classes * 8, 1, 1, 1), dtype=np.uint8), np.repeat(np.arange(classes), 8),
                           [str(c) for c in range(classes)], [str(i) for i in range(classes * 8)])
        sizes = {len(item) for item in Batches(real, config, 1)} | {len(item) for item in Batches(timed, config, 1)}
        assert sizes == {min(config.batch_size, 4 * classes)}  # ...is the batch the estimate times
