"""Person re-identification (issue 11): the Market-1501 split and figures, `eval` on re-id crops, the Evaluate page."""

import json

import numpy as np
import pytest
from PIL import Image

from app_helpers import open_page, zip_of
from conftest import run_cli
from siamese_core.data import sources as D
from siamese_core.cli import main
from siamese_core.config import TrainConfig
from siamese_core.errors import UserError
from siamese_core.data.images import pixels_to_image
from siamese_core.evaluation.reid import parse_identity_camera, reid_labels, reid_metrics, reid_split


# ---------------------------------------------------------------- names

def test_person_and_camera_are_read_from_market_names():
    assert parse_identity_camera("0002_c1s1_000451_03.jpg") == (2, 1)
    assert parse_identity_camera("train/1501_c6s4_001902_01.jpg") == (1501, 6)
    with pytest.raises(UserError, match="'cat.jpg' does not say which person and camera"):
        parse_identity_camera("cat.jpg")
    with pytest.raises(UserError, match="which camera"):
        parse_identity_camera("0002_s1_000451_03.jpg")
    with pytest.raises(UserError, match="not a valid regular expression"):
        parse_identity_camera("0002_c1.jpg", camera_pattern="_c(")
    persons, cameras = reid_labels(["0007_c2s1_1.jpg", "0003_c2s1_2.jpg", "0007_c5s1_3.jpg"])
    assert persons.tolist() == [1, 0, 1] and cameras.tolist() == [0, 0, 1]
    assert reid_labels(["0007_c2s1_1.jpg", "dog.png"]) is None
    with pytest.raises(UserError, match="'dog.png'"):
        reid_labels(["0007_c2s1_1.jpg", "dog.png"], required=True)


# ---------------------------------------------------------------- the split

def test_one_query_per_person_and_camera_each_keeping_a_match_from_another_camera():
    # person 0: cameras 1 (x3) and 2 (x2); 1: three cameras, one image each; 2: camera 1 (x2) and camera 2 (x1);
    # 3: one camera only
    persons = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3])
    cameras = np.array([1, 1, 1, 2, 2, 1, 2, 3, 1, 1, 2, 3, 3, 3, 3])
    query, gallery = reid_split(persons, cameras, seed=0)
    # 0: both cameras; 1: two of its three (the third keeps it findable); 2: camera 1 only (its lone camera-2
    # image is the match); 3: none, a distractor
    assert sorted(persons[query].tolist()) == [0, 0, 1, 1, 2]
    assert cameras[query[persons[query] == 2]].tolist() == [1]

    rng = np.random.default_rng(3)
    persons, cameras = rng.integers(0, 60, 400), rng.integers(0, 4, 400)
    cameras[persons == 7] = 2  # person 7 is only ever seen by one camera
    query, gallery = reid_split(persons, cameras, seed=5)
    assert np.intersect1d(query, gallery).size == 0
    assert np.union1d(query, gallery).tolist() == list(range(400))
    pairs = set(zip(persons[query].tolist(), cameras[query].tolist()))
    assert len(pairs) == len(query)  # never two queries for one person and camera
    for p, c in pairs:  # ... and each keeps a match from another camera in the gallery
        assert ((persons[gallery] == p) & (cameras[gallery] != c)).any()
    assert 7 not in persons[query] and (persons[gallery] == 7).sum() == (persons == 7).sum()
    assert len(query) > 100

    assert [a.tolist() for a in reid_split(persons, cameras, seed=5)] == [query.tolist(), gallery.tolist()]
    assert reid_split(persons, cameras, seed=6)[0].tolist() != query.tolist()
    figures = reid_metrics(rng.normal(size=(len(query), 4)), rng.normal(size=(len(gallery), 4)), persons[query],
                           persons[gallery], cameras[query], cameras[gallery])
    assert figures["queries"] == len(query) and figures["skipped_queries"] == 0


# ---------------------------------------------------------------- the figures

# Gallery of five: person, camera, and the distance from each of four queries.
G_PERSONS = np.array([1, 2, 1, 3, 1])
G_CAMS = np.array([1, 2, 2, 1, 3])
Q_PERSONS = np.array([1, 2, 4, 3])
Q_CAMS = np.array([1, 1, 1, 1])
DISTANCES = np.array([
    [0.1, 0.2, 0.3, 0.4, 0.5],  # person 1, camera 1: its nearest (0.1) is junk: same person, same camera
    [0.9, 0.1, 0.5, 0.6, 0.7],  # person 2: the right person first
    [0.1, 0.2, 0.3, 0.4, 0.5],  # person 4: not in the gallery: skipped
    [0.5, 0.4, 0.3, 0.1, 0.2],  # person 3: only seen by its own camera: junk only, skipped
])


def test_cmc_and_map_by_hand_with_same_camera_matches_left_out():
    figures = reid_metrics(None, None, Q_PERSONS, G_PERSONS, Q_CAMS, G_CAMS, ranks=(1, 2, 5), distances=DISTANCES)
    # query 1 without junk ranks: person 2 (wrong), person 1 (right, rank 2), person 3, person 1 (right, rank 4)
    #   so it misses at rank 1, finds at rank 2, AP = (1/2 + 2/4) / 2 = 0.5; query 2: AP 1
    assert figures["queries"] == 2 and figures["skipped_queries"] == 2 and figures["gallery"] == 5
    assert figures["cmc"] == {1: 0.5, 2: 1.0, 5: 1.0}
    assert figures["map"] == pytest.approx((0.5 + 1.0) / 2)

    # were the same-camera match counted, query 1 would be right at rank 1 with AP (1/1 + 2/3 + 3/5) / 3
    counted = reid_metrics(None, None, Q_PERSONS[:1], G_PERSONS, [9], G_CAMS, ranks=(1,), distances=DISTANCES[:1])
    assert counted["cmc"][1] == 1.0 and counted["map"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)

    # the same figures from vectors whose distances are those (a callback), and none when no query is valid
    by_callback = reid_metrics(np.arange(4), np.arange(5), Q_PERSONS, G_PERSONS, Q_CAMS, G_CAMS, ranks=(1, 2, 5),
                               metric=lambda q, g: DISTANCES[np.ix_(q, g)])
    assert by_callback == figures
    nothing = reid_metrics(None, None, Q_PERSONS[2:], G_PERSONS, Q_CAMS[2:], G_CAMS, distances=DISTANCES[2:])
    assert nothing["queries"] == 0 and np.isnan(nothing["map"]) and np.isnan(nothing["cmc"][1])


def _market_reference(distances, q_persons, g_persons, q_cams, g_cams, max_rank):
    """torchreid's eval_market1501, query by query."""
    cmc_sum, aps = np.zeros(max_rank), []
    for i in range(len(q_persons)):
        order = np.argsort(distances[i], kind="stable")
        keep = ~((g_persons[order] == q_persons[i]) & (g_cams[order] == q_cams[i]))
        right = (g_persons[order] == q_persons[i])[keep].astype(float)
        if not right.any():
            continue
        cmc_sum += np.minimum(right.cumsum(), 1)[:max_rank]
        aps.append((right.cumsum() / np.arange(1, len(right) + 1) * right).sum() / right.sum())
    return cmc_sum / len(aps), float(np.mean(aps)), len(aps)


def test_figures_match_the_query_by_query_reference_on_random_data():
    rng = np.random.default_rng(0)
    persons, cameras = rng.integers(0, 250, 700), rng.integers(0, 5, 700)  # many seen once or by one camera
    vectors = rng.normal(size=(700, 6)) + 0.02 * persons[:, None]  # a weak signal: figures well inside (0, 1)
    query = rng.choice(700, 300, replace=False)  # random queries: some have no valid match
    gallery = np.setdiff1d(np.arange(700), query)
    distances = np.linalg.norm(vectors[query][:, None] - vectors[gallery][None], axis=2)
    cmc, mean_ap, valid = _market_reference(distances, persons[query], persons[gallery], cameras[query],
                                            cameras[gallery], 10)
    figures = reid_metrics(vectors[query], vectors[gallery], persons[query], persons[gallery], cameras[query],
                           cameras[gallery])
    assert 0 < valid < 300 and figures["queries"] == valid
    assert [figures["cmc"][k] for k in (1, 5, 10)] == pytest.approx([cmc[0], cmc[4], cmc[9]])
    assert figures["map"] == pytest.approx(mean_ap) and 0.05 < mean_ap < 0.95


# ---------------------------------------------------------------- eval on re-id crops

def write_people(folder, people, cameras=3, shots=2, seed=0, class_folders=False):
    """Market-style crops of made-up people: each wears a shirt and trousers of their own colours; every camera
    sees them at its own brightness, with noise."""
    rng = np.random.default_rng(seed)
    for person in people:
        shirt, trousers = np.random.default_rng(person).integers(0, 256, (2, 3))
        where = folder / f"{person:04d}" if class_folders else folder
        where.mkdir(parents=True, exist_ok=True)
        for camera in range(1, cameras + 1):
            for shot in range(shots):
                image = np.empty((32, 16, 3))
                image[:16], image[16:] = shirt, trousers
                image = image * rng.uniform(0.7, 1.1) + rng.normal(0, 20, image.shape)
                name = f"{person:04d}_c{camera}s1_{shot:06d}_00.png"
                Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(where / name)
    return folder


def train_on_people(root, mode: str, epochs: int):
    """A small ConvNet trained for real on 40 made-up people (a few seconds)."""
    from siamese_core.training.loop import train

    if not (root / "train").exists():
        write_people(root / "train", range(1, 41), class_folders=True)
    config = TrainConfig(dataset="folder", train_path=str(root / "train"), backbone="convnet", mode=mode,
                         channels=3, image_size=16, epochs=epochs, embedding_dim=32)
    assert train(config, root / mode, progress=False).state == "done"
    return root / mode / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def people_checkpoint(tmp_path_factory):
    return train_on_people(tmp_path_factory.mktemp("people"), "triplet", epochs=2)


@pytest.mark.slow
def test_eval_gives_re_id_figures_on_a_folder_of_new_people(people_checkpoint, tmp_path):
    crops = write_people(tmp_path / "crops", range(101, 113), seed=1)  # 12 people never trained on, flat
    done = run_cli("eval", "-c", people_checkpoint, "-v", crops, "-o", tmp_path / "out", "--images", "0",
                   "--seed", "3")
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    reid = written["reid"]
    # 12 people x 3 cameras: 36 queries; the other 36 images are the gallery; 6 of them are right for a query,
    # 2 of them left out as its own camera's: guessing finds the person first for about 4 in 34
    assert reid["queries"] == 36 and reid["gallery"] == 36 and reid["skipped_queries"] == 0
    assert reid["cmc"]["1"] >= 0.8 and reid["map"] >= 0.6
    assert reid["cmc"]["1"] <= reid["cmc"]["5"] <= reid["cmc"]["10"]
    assert "seed 3" in reid["note"] and "Euclidean" in reid["note"]
    line = next(s for s in done.stdout.splitlines() if s.startswith("re-identification"))
    assert f"rank-1 {100 * reid['cmc']['1']:.1f}%" in line and "over 36 queries and 36 gallery images" in line
    assert written["accuracy"] > 0.8  # the pair figures still come, persons read from the file names


def test_eval_skips_re_id_when_asked_and_says_why_a_folder_cannot_give_it(people_checkpoint, tmp_path, capsys):
    crops = write_people(tmp_path / "crops", range(101, 104), seed=1)
    assert main(["eval", "-c", str(people_checkpoint), "-v", str(crops), "-o", str(tmp_path / "out"),
                 "--images", "0", "--no-reid", "--folds", "0"]) == 0
    assert "re-identification" not in capsys.readouterr().out
    assert "cmc" not in json.loads((tmp_path / "out" / "metrics.json").read_text())["reid"]

    lone_cameras = write_people(tmp_path / "one-camera", range(1, 4), cameras=1)
    assert main(["eval", "-c", str(people_checkpoint), "-v", str(lone_cameras), "-o", str(tmp_path / "o2"),
                 "--reid"]) == 2
    assert "two cameras or more" in capsys.readouterr().err

    unnamed = tmp_path / "unnamed"
    unnamed.mkdir()
    for n, path in enumerate(sorted(lone_cameras.iterdir())):
        path.rename(unnamed / f"photo{n}.png")
    assert main(["eval", "-c", str(people_checkpoint), "-v", str(unnamed), "-o", str(tmp_path / "o3")]) == 2
    assert "holds images directly" in capsys.readouterr().err


def test_a_pair_head_ranks_the_gallery_by_its_pair_score(tmp_path):
    from siamese_core.evaluation.evaluate import evaluation_set, score_evaluation
    from siamese_core.inference.model import SiameseModel

    model = SiameseModel.load(train_on_people(tmp_path, "pair", epochs=1))
    assert not model.is_embedding
    image_set = evaluation_set(model, str(write_people(tmp_path / "crops", range(101, 113), seed=1)))
    ev = score_evaluation(model, image_set, n_pairs=100)
    assert "pair score" in ev.reid_note and ev.reid["queries"] == 36
    assert ev.reid["cmc"][1] >= 0.8  # ranked by distance instead of likeness, the right person would come last


# ---------------------------------------------------------------- the Evaluate page

def test_the_evaluate_page_shows_re_id_figures_for_an_uploaded_zip_of_crops(runs_dir, tmp_path):
    """The demo digits model on 'people' who are digits, each written several times and seen by three cameras."""
    digits = D.load_digits(28, 1)
    crops = tmp_path / "crops"
    crops.mkdir()
    for digit in range(6):
        for n, i in enumerate(np.flatnonzero(digits.labels == digit)[:6]):
            pixels_to_image(digits.pixels[i].numpy()).save(crops / f"{digit + 1:04d}_c{n % 3 + 1}s1_{n:06d}_00.png")
    at = open_page("evaluate")
    at.radio(key="eval-source").set_value(at.radio(key="eval-source").options[1]).run()
    at.get("file_uploader")[0].upload("crops.zip", zip_of(crops), "application/zip").run()
    assert not at.exception and not at.error
    assert any("36 images of 6 people, named by person and camera" in c.value for c in at.caption)
    shown = {m.label: m.value for m in at.metric}
    rank_1 = float(shown["Rank-1"].rstrip("%"))
    assert rank_1 > 60 and "mAP" in shown and "Rank-10" in shown  # guessing: about 1 in 6
    sentence = next(m.value for m in at.markdown if "the first answer for" in m.value)
    assert f"**{rank_1:.0f}%** of queries" in sentence and "18 query photos" in sentence
