"""Train: pick data and a model, start a run in the background, watch it live."""

import time

import streamlit as st

from app_pages.shared import run_view, state, text
from app_pages.shared.runs import listed
from app_pages.train import data as train_data
from app_pages.train import photos as train_photos
from app_pages.train import reading as train_reading
from app_pages.train import time_note
from siamese_core import settings
from siamese_core.config import MODES, TrainConfig
from siamese_core.errors import UserError
from siamese_core.runs import jobs
from siamese_core.settings import runs_dir
from siamese_core.words import clean_class_word

QUICK = "Quick: 1 minute"
GOOD = "Good: 5 minutes"
BEST = "Best: 15 minutes"
PHOTOS = "Photos: EfficientNet-B0, seconds with pretrained weights"
BUDGETS = {QUICK: 60, GOOD: 300, BEST: 900}  # a preset's time budget in seconds
MINUTES = [0.5, 1, 2, 3, 5, 10, 15, 20, 30, 45, 60]  # the time slider's stops
BACKBONES = ["convnet", "small-resnet", "timm:efficientnet_b0", "timm:resnet18", "timm:mobilenetv3_small_100",
             "torchvision:resnet18", "torchvision:mobilenet_v3_small"]
OTHER = "another (type its name)"
MODE_HELP = ("pair: a head says how likely two images are the same (sigmoid, binary cross-entropy). "
             "contrastive: an embedding where same pairs are close and different pairs at least a margin apart. "
             "triplet: an embedding where an anchor is closer to a positive than to a negative.")

st.title("Train")
st.caption("Teach a Siamese network what 'same' looks like in your images. Training runs in the background: "
           "closing the browser does not stop it, and this page finds it again.")

RECENT_SECONDS = 3600  # a run that finished while the browser was closed is still shown for this long

watched = st.session_state.get(state.WATCHED_RUN)
if not watched or not (runs_dir() / watched).is_dir():
    recent = [info for info in listed() if info.unfinished
              or time.time() - (info.status.finished_at or 0) < RECENT_SECONDS]
    watched = recent[0].name if recent else None
    st.session_state[state.WATCHED_RUN] = watched  # stays on the page once it finishes
if watched:
    st.subheader("Your run")
    run_view.show_run(watched, start_again="Start it again with *Start training* below.")
    st.divider()

st.subheader("1. Data")
data = train_data.pick_data()
guessed = TrainConfig.default("class_word", **data.settings) if data.settings else "class"
# A data set named like nothing we know (class folders named after people: 'alice', 'bob') gets no guess: an empty box
# asking what each class is reads better than "Each class is one... class".
known_word = guessed if guessed != "class" else ""
class_word = st.text_input(run_view.CLASS_WORD_LABEL, known_word, max_chars=30,
                           key=f"class-word-{data.source}-{data.name}", placeholder="person, signature, product...",
                           help="What the images of one class show: person, digit, signature, product... The "
                                "verdicts use it ('same person'); it can be changed later on the Runs page.")
if not known_word and data.ready and not class_word:
    st.caption("Say what each class is (a person? a product?) so that the verdicts say 'same person' rather than "
               "'same class'.")

st.subheader("2. Model")
preset = st.radio("Preset", [QUICK, GOOD, BEST, PHOTOS], key="preset", horizontal=True,
                  help="Quick, Good and Best train a small network (the digit ConvNet on digits, a small ResNet on "
                       "photos) for that long, the steps set from this machine's measured speed: the run ends within "
                       "its time however busy the machine is. Photos trains EfficientNet-B0's head in seconds where "
                       "pretrained weights can be had, and the default recipe for 10 epochs otherwise. Under "
                       "Advanced settings: another length of time, or a number of epochs.")
recipe_note = st.empty()
advanced = st.expander("Advanced settings")
digits_like = data.settings.get("dataset") in ("digits", "mnist")
# The library's default recipe (docs/recipe.md: "The default recipe"), asked what it resolves to for this data.
read = train_reading.reading_of(data.settings)  # what the images look like and what that chooses (None: not read)
chosen = (read or {}).get("chose", {})
quick = TrainConfig(**data.settings, backbone=chosen.get("backbone") or ("convnet" if digits_like else None), epochs=5,
                    image_size=chosen.get("image_size")).preview()
defaults = {"backbone": quick.backbone, "epochs": quick.epochs, "image_size": quick.image_size, "pretrained": False,
            "mode": quick.mode, "lr": quick.lr, "frozen": False, "batch_size": quick.batch_size,
            "embedding_dim": quick.embedding_dim}
weights_file = ""
if preset == PHOTOS:
    defaults, weights_file = train_photos.photos_defaults(data, defaults, recipe_note, advanced)

suffix = f"{preset}-{data.source}-{defaults['frozen']}"  # new defaults when the preset or the data change
with advanced:
    left, right = st.columns(2)
    choices = BACKBONES if defaults["backbone"] in BACKBONES else [defaults["backbone"]] + BACKBONES
    picked = left.selectbox("Backbone", choices + [OTHER], index=choices.index(defaults["backbone"]),
                            key=f"backbone-{suffix}", help="The shared network both images go through. "
                            "Any timm model as timm:<name>, any torchvision model as torchvision:<name>.")
    backbone = picked if picked != OTHER else left.text_input("Backbone name", "timm:resnet34", key=f"other-{suffix}")
    if picked == OTHER:
        try:
            from siamese_core.models.networks import check_backbone  # imports torch: only for a typed name

            check_backbone(backbone.strip())
        except UserError as exc:
            left.error(str(exc))
            data.problems.append("Choose a backbone that exists.")
    mode = right.radio("Mode", list(MODES), index=MODES.index(defaults["mode"]),
                       key=f"mode-{suffix}", horizontal=True, help=MODE_HELP)
    head = right.selectbox("Pair head combines features by", ["automatic", "absdiff", "product", "concat"],
                           key=f"head-{suffix}", disabled=mode != "pair",
                           help="absdiff |a-b| (the digit design), product a*b (the photo design), or concat.")
    by_epochs = left.checkbox("Train for a number of epochs instead", preset == PHOTOS, key=f"by-epochs-{suffix}",
                              help="A time budget (the default) ends the run within its time; a number of epochs "
                                   "takes as long as this machine needs for them.")
    epochs = left.number_input("Epochs", 1, 500, defaults["epochs"], key=f"epochs-{suffix}", disabled=not by_epochs,
                               help="Passes over freshly drawn training pairs.")
    minutes = right.select_slider("Train for (minutes)", MINUTES, value=BUDGETS.get(preset, 60) // 60,
                                  key=f"minutes-{suffix}", disabled=by_epochs,
                                  help="The run measures its own speed and sets its steps so that it ends within "
                                       "this time, its last check and saving included.")
    lr = right.select_slider("Learning rate", train_photos.RATES,
                             value=defaults["lr"], key=f"lr-{suffix}",
                             help="How big each learning step is: smaller for pretrained backbones.")
    batch = left.select_slider("Batch size", [8, 16, 32, 64, 128, 256], value=defaults["batch_size"],
                               key=f"batch-{suffix}", help="Images per step in triplet mode (four images of each "
                               "class in the step), else pairs per step.")
    size = train_reading.size_setting(right, defaults["image_size"], f"size-{suffix}-{defaults['image_size']}",
                                      data.problems)
    embedding = left.number_input("Embedding size", 8, 2048, defaults["embedding_dim"], step=8, key=f"embedding-{suffix}",
                                  disabled=mode == "pair", help="Length of the vector an image becomes "
                                  "(contrastive and triplet modes).")
    margin = right.number_input("Margin", 0.05, 5.0, TrainConfig.default("margin", mode=mode), step=0.05,
                                key=f"margin-{suffix}-{mode}", disabled=mode == "pair",
                                help="How far apart different images must be pushed.")
    pretrained = left.checkbox("Start from pretrained weights", defaults["pretrained"], key=f"pretrained-{suffix}",
                               disabled=not TrainConfig.default("pretrained", backbone=backbone), help="Used when they can be downloaded or are "
                               "in the local cache; otherwise training starts from random weights, with a warning.")
    frozen = right.checkbox("Train only the head (frozen backbone)", defaults["frozen"], key=f"frozen-{suffix}",
                            disabled=not (pretrained or weights_file), help="Each image is embedded once by the "
                            "pretrained backbone, then only a small head trains: seconds instead of minutes. "
                            "Needs pretrained weights; unticked, the whole network is fine-tuned.")
    processes = left.number_input("Processes", 1, 64, settings.train_processes(), key="processes",
                                  disabled=bool(frozen) or not by_epochs, help="Train one model with several "
                                  "processes on this machine (with a number of epochs; a time budget is kept by one "
                                  "process measuring its own speed): "
                                  "PyTorch's torchrun, one GPU each or a share of the CPU cores each. "
                                  "The results are those of one process; each step is split between them.")

config = TrainConfig(**data.settings, class_word=clean_class_word(class_word or guessed), recipe="default",
                     backbone=backbone.strip(), mode=mode,
                     head=None if head == "automatic" else head, epochs=int(epochs), lr=float(lr),
                     batch_size=int(batch), image_size=size, embedding_dim=int(embedding),
                     margin=float(margin) if mode != "pair" else None, pretrained=bool(pretrained),
                     frozen=bool(frozen and (pretrained or weights_file)), weights=weights_file or None,
                     time_budget=None if by_epochs else float(minutes) * 60)

st.subheader("3. Start")
if read and preset != PHOTOS:
    st.info(read["sentence"], icon=":material/visibility:")
if data.ready:
    time_note.show_estimate(config, training_now=any(info.state == "running" for info in listed()))
name = st.text_input("Run name", f"{data.name}-{preset.split(':')[0].lower()}",
                     key=f"run-name-{suffix}-{data.name}", max_chars=40)
for problem in data.problems:
    st.caption(f"Not ready: {problem}")
start = st.button("Start training", icon=":material/rocket_launch:", type="primary", disabled=not data.ready,
                  key="start")
queue_note = run_view.queue_note(listed())
if queue_note:  # every slot is taken: Start queues the run instead of refusing it
    st.caption(queue_note)
if start:
    try:
        run = jobs.start_training(config, label=name or "run", upload_dir=data.upload_dir,
                                  processes=1 if config.frozen or config.time_budget else int(processes))
    except UserError as exc:
        text.error(exc)
    else:
        st.session_state[state.WATCHED_RUN] = run.path.name
        st.rerun()
