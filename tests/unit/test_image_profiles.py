"""Each multimodal profile shrinks images to its checkpoint's processor size, no larger and no smaller."""

from pathlib import Path

import pytest

from serve.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
MULTIMODAL = sorted(p for p in CONFIGS.glob("*.yaml") if "limit-mm-per-prompt" in p.read_text())
SIZES = {"demo:": 224, "google/medgemma": 896}  # demo_checkpoint.py builds 224; MedGemma's processor is 896


@pytest.mark.parametrize("path", MULTIMODAL, ids=lambda p: p.stem)
def test_profile_input_size_is_the_checkpoint_processor_size(path):
    profile = load_config(path)
    expected = next(size for prefix, size in SIZES.items() if profile.model.source.startswith(prefix))
    assert profile.gateway.images.model_input_size == expected


def test_every_multimodal_profile_is_checked():
    assert len(MULTIMODAL) >= 5


def test_a_demo_profile_without_the_key_gets_the_demo_size(tmp_path):
    path = tmp_path / "copy.yaml"
    path.write_text("name: copy\nmodel: {source: 'demo:tiny', served_name: x, license: none}\n")
    assert load_config(path).gateway.images.model_input_size == 224


def test_an_explicit_size_is_kept(tmp_path):
    path = tmp_path / "copy.yaml"
    path.write_text(
        "name: copy\nmodel: {source: 'demo:tiny', served_name: x, license: none}\n"
        "gateway: {images: {model_input_size: 448}}\n"
    )
    assert load_config(path).gateway.images.model_input_size == 448
