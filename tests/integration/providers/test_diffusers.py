"""The diffusers adapter running a tiny, randomly initialised pipeline built offline.

The pipeline is assembled from minimal configs and a hand-written tokenizer vocabulary, saved
to a temporary directory and loaded back by the adapter: no hub download, only the real
loading and rendering code on a model small enough to run in a second on a CPU.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from imagegate.errors import ProviderUnavailable
from imagegate.providers.base import Completed, ProviderRequest, ProviderSettings
from imagegate.providers.diffusers import DiffusersProvider


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("tiny-sd")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab[letter] = len(vocab)
        vocab[f"{letter}</w>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(
        str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=16
    )
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=8,
        norm_num_groups=2,
        attention_head_dim=2,
    )
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=2,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=8,
            intermediate_size=16,
            num_attention_heads=2,
            num_hidden_layers=1,
            vocab_size=len(vocab),
            max_position_embeddings=16,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(root / "model")
    return root / "model"


def provider(http: httpx.AsyncClient, **options: object) -> DiffusersProvider:
    settings = ProviderSettings(name="local-sd", kind="diffusers", options=options)
    return DiffusersProvider(settings, http)


async def test_renders_the_requested_size_and_count_from_a_saved_pipeline(
    http: httpx.AsyncClient, model_path: Path
) -> None:
    sd = provider(http, model_path=str(model_path), num_inference_steps=1)
    request = ProviderRequest(
        upstream_model="tiny",
        prompt="a cat",
        negative_prompt="dog",
        n=2,
        width=32,
        height=24,
        seed=3,
    )

    answer = await sd.submit(request)

    assert isinstance(answer, Completed)
    assert len(answer.images) == 2
    for image in answer.images:
        assert image.data is not None
        picture = Image.open(io.BytesIO(image.data))
        assert (picture.format, picture.size) == ("PNG", (32, 24))


async def test_same_seed_renders_the_same_image(http: httpx.AsyncClient, model_path: Path) -> None:
    sd = provider(http, model_path=str(model_path), num_inference_steps=1)
    request = ProviderRequest(upstream_model="tiny", prompt="a cat", width=16, height=16, seed=9)

    first, second = await sd.submit(request), await sd.submit(request)

    assert isinstance(first, Completed)
    assert isinstance(second, Completed)
    assert first.images[0].data == second.images[0].data


async def test_missing_model_directory_is_unavailable(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    sd = provider(http, model_path=str(tmp_path / "absent"))

    with pytest.raises(ProviderUnavailable):
        await sd.submit(ProviderRequest(upstream_model="tiny", prompt="a cat"))
