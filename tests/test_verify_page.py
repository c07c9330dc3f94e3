"""The Verify page, driven by Streamlit's AppTest (no browser): real widgets, real model, no JavaScript."""

from __future__ import annotations

from app_helpers import open_page


def test_verify_page_works_on_first_launch_with_the_demo_model(runs_dir):
    at = open_page("verify")
    assert at.selectbox(key="model-picker-verify").value.key == "demo"
    assert any("Same digit" in s.value for s in at.success)  # two images of one digit, by default
    sample_b = at.selectbox(key="sample-B")
    other_digit = next(p for p in sorted(sample_b.value.parent.parent.glob("*/*.png"))
                       if p.parent != sample_b.value.parent)
    sample_b.set_value(other_digit).run()
    assert not at.exception
    assert any("Different digits" in e.value for e in at.error)


def test_verify_page_says_when_an_upload_is_not_an_image(runs_dir):
    at = open_page("verify")
    at.radio(key="source-A").set_value("Upload").run()
    at.get("file_uploader")[0].upload("notes.png", b"not an image at all", "image/png")
    at.run()
    assert not at.exception
    assert any("not an image" in e.value for e in at.error)
