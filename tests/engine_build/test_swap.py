"""promote and rollback swap a running service's backend with no failed request during the swap:
two artifacts (the tiny Hugging Face checkpoint on transformers, SmolLM2 on llama.cpp), a real
uvicorn on 127.0.0.1, clients asking all the while, and engine-build telling the service to reload."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from answer_engine.api.access import hash_key
from answer_engine.api.app import create_app
from answer_engine.config import load_settings
from answer_engine.evaluation.load import ask_over_sse
from engine_build import artifacts
from engine_build.cli import main

KEY = "admin-test-key"


@pytest.mark.model
async def test_promote_and_rollback_under_load(
    settings, tiny_checkpoint, test_model_path, tmp_path, serve, capsys
):
    root = tmp_path / "engines"
    for model in (tiny_checkpoint, test_model_path):
        assert main(["package", str(model), "--output", str(root)]) == 0
    hf, gguf = capsys.readouterr().out.split()
    assert main(["promote", hf, "--output", str(root), "--force"]) == 0

    s = load_settings(
        data_dir=settings.data_dir,
        retrieval={"dense_weight": 0.0},
        generation={"artifacts_root": str(root), "max_tokens": 12, "n_ctx": 2048},
        server={"admin_key_hashes": [hash_key(KEY)], "max_in_flight": 16},
    )
    url = await asyncio.to_thread(serve, create_app(s))
    async with httpx.AsyncClient(timeout=120) as client:
        assert (await client.get(f"{url}/health")).json()["artifact"] == hf

        stop = asyncio.Event()
        outcomes: list[dict] = []

        async def asker() -> None:
            while not stop.is_set():
                outcomes.append(await ask_over_sse(client, url, "Who was Marie Curie?"))

        askers = [asyncio.create_task(asker()) for _ in range(3)]
        await asyncio.sleep(1)
        service = ["--service", url, "--admin-key", KEY]
        assert (
            await asyncio.to_thread(main, ["promote", gguf, "--output", str(root), "--force", *service]) == 0
        )
        assert (await client.get(f"{url}/health")).json()["artifact"] == gguf
        during = len(outcomes)
        await asyncio.sleep(3)
        assert await asyncio.to_thread(main, ["rollback", "--output", str(root), *service]) == 0
        assert (await client.get(f"{url}/health")).json()["artifact"] == hf
        await asyncio.sleep(1)
        stop.set()
        await asyncio.gather(*askers)

        bad = [o for o in outcomes if o["outcome"] != "ok"]
        assert not bad, bad
        assert len(outcomes) > during > 0  # answers before, during and after the swaps

        # a wrong key changes nothing
        r = await client.post(
            f"{url}/admin/reload", json={"artifact": gguf}, headers={"Authorization": "Bearer no"}
        )
        assert r.status_code == 401 and (await client.get(f"{url}/health")).json()["artifact"] == hf
        # only artifacts of the configured root load
        r = await client.post(
            f"{url}/admin/reload",
            json={"artifact": str(tmp_path)},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert r.status_code == 400 and "artifacts are loaded only from" in r.json()["error"]["message"]
        # a broken artifact is refused and the service keeps serving the current one
        broken = root / "artifacts" / "hf-broken"
        broken.mkdir()
        (broken / "manifest.json").write_text('{"kind": "hf", "model": "model"}')
        r = await client.post(
            f"{url}/admin/reload", json={"artifact": str(broken)}, headers={"Authorization": f"Bearer {KEY}"}
        )
        assert r.status_code == 500 and "still serving" in r.json()["error"]["message"]
        assert (await ask_over_sse(client, url, "Who was Marie Curie?"))["outcome"] == "ok"
    assert artifacts.current(root).name == os.path.basename(hf)
