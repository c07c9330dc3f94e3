"""The Explore page, driven by Streamlit's AppTest (no browser): real widgets, real model, no JavaScript."""

from __future__ import annotations

from app_helpers import open_page


def test_explore_page_maps_the_digits_with_the_demo_model(runs_dir):
    at = open_page("explore")
    assert len(at.get("plotly_chart")) == 1
    assert any("1,797 built-in digits" in c.value for c in at.caption)
