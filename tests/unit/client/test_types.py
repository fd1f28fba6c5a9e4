"""Response models accept what the seeds' gateway and ours send, including unknown fields."""

from __future__ import annotations

from imagegate.client import ImagesResponse, Task
from imagegate.client._operations import generation_request
from imagegate.client.types import parse_generation

SEED_TASK = {
    "created": 1706000000,
    "task_id": "img_abc123def456",
    "status": "pending",
    "data": [{"url": "", "revised_prompt": "a beautiful sunset over mountains"}],
}


def test_a_create_answer_with_task_fields_is_a_task() -> None:
    result = parse_generation(SEED_TASK)
    assert isinstance(result, Task)
    assert result.id == result.task_id == "img_abc123def456"
    assert result.poll_url is None
    assert not result.done


def test_a_create_answer_in_the_openai_shape_is_images() -> None:
    result = parse_generation({"created": 1, "data": [{"b64_json": "aGk=", "revised_prompt": "p"}]})
    assert isinstance(result, ImagesResponse)
    assert result.data[0].b64_json == "aGk="


def test_id_without_task_id_is_accepted() -> None:
    task = Task.model_validate({"id": "igt_x", "status": "completed"})
    assert task.task_id == "igt_x"
    assert task.done


def test_unknown_fields_are_kept() -> None:
    task = Task.model_validate({**SEED_TASK, "eta_seconds": 12})
    assert task.model_extra == {"eta_seconds": 12}


def test_generate_arguments_become_the_contracts_body_and_headers() -> None:
    body, headers = generation_request(
        "a fox",
        {
            "model": "m",
            "n": 2,
            "size": None,
            "async_": True,
            "idempotency_key": "k1",
            "extra_body": {"guidance": 7},
            "extra_headers": {"Prefer": "respond-async"},
        },
    )
    assert body == {"prompt": "a fox", "model": "m", "n": 2, "async": True, "guidance": 7}
    assert headers == {"Prefer": "respond-async", "Idempotency-Key": "k1"}


def test_every_create_gets_an_idempotency_key_so_retries_are_safe() -> None:
    first = generation_request("a", {})[1]["Idempotency-Key"]
    second = generation_request("a", {})[1]["Idempotency-Key"]
    assert first
    assert second
    assert first != second
