"""Each page's icon, in the sidebar and wherever a page links to another.

Material icons, not emoji: they come with Streamlit's own font, so they show on machines without an
emoji font (where emoji are empty boxes).
"""

ICONS = {
    "home": ":material/home:",
    "train": ":material/model_training:",
    "runs": ":material/monitoring:",
    "verify": ":material/compare:",
    "explore": ":material/explore:",
    "evaluate": ":material/target:",
}
