"""The real llama.cpp backend with the real SmolLM2-135M GGUF."""

import asyncio

import pytest

from answer_engine.backends.base import (
    Backend,
    BackendError,
    ChatMessage,
    GenerationParams,
    decode_rate,
    too_short,
)
from answer_engine.backends.llamacpp import LlamaCppBackend

pytestmark = pytest.mark.model

MESSAGES = [
    ChatMessage(role="system", content="You are terse."),
    ChatMessage(role="user", content="Name a colour."),
]


@pytest.fixture(scope="module")
def backend(test_model_path):
    b = LlamaCppBackend(test_model_path, n_ctx=2048)
    b.load()
    yield b
    b.close()


def test_is_a_backend(backend):
    assert isinstance(backend, Backend)
    assert backend.info()["backend"] == "llamacpp"


def test_uses_the_models_own_chat_template(backend):
    prompt = backend._format(MESSAGES).prompt
    assert prompt.startswith("<|im_start|>system\nYou are terse.<|im_end|>")
    assert prompt.endswith("<|im_start|>assistant\n")
    assert backend.count_prompt_tokens(MESSAGES) > backend.count_tokens("You are terse. Name a colour.")


async def test_streams_greedy_and_deterministic(backend):
    params = GenerationParams(max_tokens=12, temperature=0.0)
    a = [p async for p in backend.stream(MESSAGES, params)]
    b = [p async for p in backend.stream(MESSAGES, params)]
    assert len(a) > 1 and "".join(a) == "".join(b)
    assert backend.count_tokens("".join(a)) <= 12


async def test_an_answer_may_not_end_before_it_says_anything(backend):
    # the default model once answered "In what year was Wisconsin v. Yoder decided?" with "1" and an
    # end of turn; here a few-shot thread makes the small model stop after one letter the same way
    thread = [
        ChatMessage(role="user", content="Letter after A?"),
        ChatMessage(role="assistant", content="B"),
        ChatMessage(role="user", content="Letter after B?"),
        ChatMessage(role="assistant", content="C"),
        ChatMessage(role="user", content="Letter after C?"),
    ]
    bare = "".join([p async for p in backend.stream(thread, GenerationParams(max_tokens=20))])
    assert bare == "D"  # no floor: the model's own one-letter end
    floored = "".join([p async for p in backend.stream(thread, GenerationParams(max_tokens=20, min_chars=3))])
    assert floored.startswith("D") and not too_short(floored, 3)
    assert backend.count_tokens(floored) <= 20  # the continuation keeps to max_tokens


def test_too_short_counts_letters_and_digits_outside_markers():
    assert too_short("1", 2) and too_short("[1]", 2) and too_short(" 1. [2]", 2)
    assert not too_short("No.", 2) and not too_short("42 [1]", 2) and not too_short("1", 0)


def test_decode_rate_counts_the_unseen_end_token_step():
    # 21 tokens shown, ended on its own: 21 decode steps after the first token's prefill
    assert decode_rate(21, 1.0, 256) == 21.0
    assert decode_rate(256, 1.0, 256) == 255.0  # cut at max_tokens: no end token was decoded
    assert decode_rate(1, 1.0, 256) == 0.0 and decode_rate(5, 0.0, 256) == 0.0


async def test_raw_timing_counts_tokens_as_the_pipeline_does(backend):
    # bench divides the pipeline's rate by raw llama.cpp's: both count the answer's own tokens
    # (raw's stream yields one more chunk, the empty one that ends it, which read ~5% fast)
    raw = await backend.raw_timing(MESSAGES, 24)
    text = "".join([p async for p in backend.stream(MESSAGES, GenerationParams(max_tokens=24))])
    assert raw["tokens"] == backend.count_tokens(text) > 1 and raw["tokens_per_s"] > 0


async def test_closing_the_stream_stops_generation(backend):
    params = GenerationParams(max_tokens=400, temperature=0.0)
    stream = backend.stream(
        [ChatMessage(role="user", content="Count from 1 to 500, one number per line.")], params
    )
    before = backend.tokens_generated
    got = 0
    async for _ in stream:
        got += 1
        if got == 3:
            break
    await stream.aclose()
    # Wait until the single worker thread is free: it finished with the cancelled generation.
    await asyncio.get_running_loop().run_in_executor(backend._executor, lambda: None)
    # It stopped at its next token, far short of the 400 it was allowed.
    assert backend.tokens_generated - before < 20


async def test_prompt_too_long_is_a_backend_error(backend):
    huge = [ChatMessage(role="user", content="word " * 3000)]
    with pytest.raises(BackendError, match="exceeds n_ctx"):
        async for _ in backend.stream(huge, GenerationParams(max_tokens=8)):
            pass


def test_unloadable_file_is_a_backend_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(BackendError, match="could not load"):
        LlamaCppBackend(bad).load()


async def test_closing_during_prefill_stops_the_prompt_evaluation(test_model_path):
    """Watch llama.cpp itself: a long prompt is being evaluated when the client goes away; the
    evaluation stops at the next chunk boundary instead of running the whole prompt."""
    b = LlamaCppBackend(test_model_path, n_ctx=8192, prefill_chunk=16)
    b.load()
    long = [ChatMessage(role="user", content="Tell me about the sea. " * 700)]  # ~4,000 prompt tokens
    total = b.count_prompt_tokens(long)
    stream = b.stream(long, GenerationParams(max_tokens=8))
    task = asyncio.ensure_future(stream.__anext__())
    while b._llm.n_tokens < 32:  # prefill under way
        await asyncio.sleep(0.005)
    task.cancel()  # the client went away: the request's task is cancelled
    with pytest.raises(asyncio.CancelledError):
        await task
    await stream.aclose()
    # the chunk under way finishes (slowly, on a busy CPU), then nothing more
    stopped_at = -1
    for _ in range(40):
        if b._llm.n_tokens == stopped_at:
            break
        stopped_at = b._llm.n_tokens
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)
    assert b._llm.n_tokens == stopped_at < total - 1  # no further evaluation, and the prompt was not finished
    assert b.prefix_states.states == []  # a half-evaluated prompt is not kept for reuse
    # the next request still works and reuses nothing stale
    assert [p async for p in b.stream(MESSAGES, GenerationParams(max_tokens=4))]
    b.close()


async def test_chunked_prefill_gives_the_same_answer(backend, test_model_path):
    params = GenerationParams(max_tokens=12, temperature=0.0)
    whole = LlamaCppBackend(test_model_path, n_ctx=2048, prefill_chunk=4096)
    a = "".join([p async for p in whole.stream(MESSAGES, params)])
    b = "".join([p async for p in backend.stream(MESSAGES, params)])
    assert a == b
    whole.close()


LONG_SYSTEM = ChatMessage(
    role="system",
    content="You answer questions about colours and nothing else. " * 8 + "Keep every answer to a few words.",
)


async def test_a_saved_state_serves_the_shared_prefix_after_another_prompt(test_model_path):
    """Prompt A, an unrelated prompt B (which evicts A from the live KV cache), then C with A's system
    prompt: C starts from A's saved state and answers exactly as a backend without saved states."""
    a = [LONG_SYSTEM, ChatMessage(role="user", content="Name a colour.")]
    other = [ChatMessage(role="user", content="Say hello.")]
    c = [LONG_SYSTEM, ChatMessage(role="user", content="Name a dark colour.")]
    params = GenerationParams(max_tokens=8, temperature=0.0)
    answers = {}
    for states in (4, 0):
        b = LlamaCppBackend(test_model_path, n_ctx=2048, prefix_states=states)
        for messages in (a, other):
            assert [p async for p in b.stream(messages, params)]
        answers[states] = "".join([p async for p in b.stream(c, params)])
        assert b.prefix_states.restored == (1 if states else 0)
        assert len(b.prefix_states.states) == min(states, 3)
        b.close()
    assert answers[4] == answers[0]


def test_prefix_states_keep_the_newest_and_drop_what_a_newer_state_covers():
    from answer_engine.backends.llamacpp import PrefixStates

    states = PrefixStates(capacity=2)
    states.save([1, 2, 3], b"a")
    states.save([1, 2, 3, 4, 5], b"b")  # covers [1, 2, 3]: one state serves both
    assert [s.data for s in states.states] == [b"b"]
    states.save([7, 8], b"c")
    states.save([9], b"d")
    assert [s.data for s in states.states] == [b"c", b"d"]
    assert states.best([7, 8, 1]) == (states.states[0], 2)
    assert states.best([5]) == (None, 0)
    assert PrefixStates(capacity=0).save([1], b"x") is None


async def test_warming_the_answer_prefix_spares_the_first_answer_the_system_prompt(test_model_path):
    from answer_engine.passages import Passage, SourceDoc
    from answer_engine.prompt import answer_prefix, build_messages

    red = Passage(page=0, text="Red is a colour.")
    source = SourceDoc(n=1, url="http://x", title="Colours", passages=[red])
    question = build_messages("Name a colour.", [source], [])
    params = GenerationParams(max_tokens=8, temperature=0.0)
    warm = LlamaCppBackend(test_model_path, n_ctx=2048)
    await warm.warm_prefix(answer_prefix())
    assert len(warm.prefix_states.states) == 1
    shared = warm.prefix_states.best(warm._prompt_ids(question)[0])[1]
    assert shared > warm.count_tokens(question[0].content)  # the whole system prompt and more
    cold = LlamaCppBackend(test_model_path, n_ctx=2048, prefix_states=0)
    await cold.warm_prefix(answer_prefix())  # nothing kept, nothing to do
    assert cold.prefix_states.states == [] and cold._llm is None
    assert "".join([p async for p in warm.stream(question, params)]) == "".join(
        [p async for p in cold.stream(question, params)]
    )
    assert warm.prefix_states.restored == 0  # the warmed prefix was still the live cache: nothing to restore
    warm.close()
    cold.close()


async def test_a_fresh_process_restores_the_warmed_start_from_disk(test_model_path, tmp_path):
    """The warmed answer-prompt start outlives the process: a new backend (a fresh `ask`, a restarted
    server) reads it back instead of evaluating the system prompt, and answers exactly as a backend
    that evaluated it."""
    from answer_engine.passages import Passage, SourceDoc
    from answer_engine.prompt import answer_prefix, build_messages

    source = SourceDoc(
        n=1, url="http://x", title="Colours", passages=[Passage(page=0, text="Red is a colour.")]
    )
    question = build_messages("Name a colour.", [source], [])
    params = GenerationParams(max_tokens=8, temperature=0.0)
    states = tmp_path / "states"
    first = LlamaCppBackend(test_model_path, n_ctx=2048, state_dir=states)
    await first.warm_prefix(answer_prefix())
    first.close()
    (kept,) = states.glob("*.kv")
    assert first.disk_restored == 0
    second = LlamaCppBackend(test_model_path, n_ctx=2048, state_dir=states)
    await second.warm_prefix(answer_prefix())
    assert second.disk_restored == 1 and second.prefix_states.restored == 0
    assert second._llm.n_tokens == len(second.prefix_states.states[0].tokens) > 30  # nothing evaluated
    plain = LlamaCppBackend(test_model_path, n_ctx=2048)  # no state dir: evaluates the start itself
    await plain.warm_prefix(answer_prefix())
    assert "".join([p async for p in second.stream(question, params)]) == "".join(
        [p async for p in plain.stream(question, params)]
    )
    assert list(states.glob("*.kv")) == [kept]  # the same prompt on the same build: one file
    for b in (second, plain):
        b.close()


async def test_a_damaged_state_file_is_dropped_and_made_again(test_model_path, tmp_path):
    from answer_engine.prompt import answer_prefix

    states = tmp_path / "states"
    b = LlamaCppBackend(test_model_path, n_ctx=2048, state_dir=states)
    await b.warm_prefix(answer_prefix())
    b.close()
    (kept,) = states.glob("*.kv")
    raw = bytearray(kept.read_bytes())
    raw[-10] ^= 0xFF  # one byte of the KV data
    kept.write_bytes(bytes(raw))
    again = LlamaCppBackend(test_model_path, n_ctx=2048, state_dir=states)
    await again.warm_prefix(answer_prefix())
    assert again.disk_restored == 0  # evaluated, not restored from the damaged file
    assert again.prefix_states.states and kept.read_bytes() != bytes(raw)  # written anew
    third = LlamaCppBackend(test_model_path, n_ctx=2048, state_dir=states)
    await third.warm_prefix(answer_prefix())
    assert third.disk_restored == 1
    for x in (again, third):
        x.close()


def test_the_state_files_key_covers_what_the_kv_values_depend_on(test_model_path, tmp_path):
    ids = [1, 2, 3, 4]
    a = LlamaCppBackend(test_model_path, n_ctx=2048, n_threads=2, state_dir=tmp_path)
    assert a._disk_key(ids) == LlamaCppBackend(test_model_path, n_ctx=2048, n_threads=2)._disk_key(ids)
    others = [
        LlamaCppBackend(test_model_path, n_ctx=4096, n_threads=2),
        LlamaCppBackend(test_model_path, n_ctx=2048, n_threads=1),
        LlamaCppBackend(test_model_path, n_ctx=2048, n_threads=2, prefill_chunk=32),
        LlamaCppBackend(test_model_path, n_ctx=2048, n_threads=2, weight_repack=False),
    ]
    assert len({a._disk_key(ids), *(o._disk_key(ids) for o in others), a._disk_key([1, 2, 3])}) == 6


def test_settings_put_the_state_files_under_the_data_dir(tmp_path):
    from answer_engine.backends import prompt_state_dir
    from answer_engine.config import load_settings

    on = load_settings(data_dir=tmp_path)
    assert prompt_state_dir(on) == tmp_path / "cache" / "prompt-states"
    assert prompt_state_dir(load_settings(data_dir=tmp_path, generation={"disk_prefix_state": False})) is None


@pytest.mark.parametrize("repack", [False, True])
async def test_weight_repacking_reaches_llama_cpp_and_answers_stay_sound(test_model_path, repack):
    import llama_cpp.llama as llama_module

    default = llama_module.llama_cpp.llama_model_default_params
    backend = LlamaCppBackend(test_model_path, n_ctx=2048, weight_repack=repack)
    await backend.start()
    try:
        assert backend._llm.model_params.use_extra_bufts is repack  # what the model was loaded with
        assert llama_module.llama_cpp.llama_model_default_params is default  # put back after the load
        params = GenerationParams(max_tokens=12, temperature=0.0)
        text = "".join([p async for p in backend.stream([ChatMessage(role="user", content="Hi")], params)])
        assert text.strip()
    finally:
        backend.close()


def test_auto_leaves_weights_as_stored_on_avx512_with_longer_prefill_chunks(tmp_path, monkeypatch):
    from answer_engine.backends import llamacpp, llamacpp_options
    from answer_engine.config import load_settings

    assert llamacpp.resolve_repack("on") is True and llamacpp.resolve_repack("off") is False
    for avx512, repack, chunk in ((True, False, llamacpp.PREFILL_CHUNK_AVX512), (False, True, 64)):
        monkeypatch.setattr(llamacpp, "has_avx512", lambda avx512=avx512: avx512)
        options = llamacpp_options(load_settings(data_dir=tmp_path))
        assert (options["weight_repack"], options["prefill_chunk"]) == (repack, chunk)
    monkeypatch.setattr(llamacpp, "has_avx512", lambda: True)
    on = load_settings(data_dir=tmp_path, generation={"weight_repack": "on", "prefill_chunk": 0})
    assert (llamacpp_options(on)["weight_repack"], llamacpp_options(on)["prefill_chunk"]) == (True, 64)
    fixed = load_settings(data_dir=tmp_path, generation={"prefill_chunk": 100})
    assert llamacpp_options(fixed)["prefill_chunk"] == 100
