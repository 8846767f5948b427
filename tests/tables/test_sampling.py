"""How the code candidates reach the real assistant model (the llama.cpp server): every
candidate is sent the greedy one's exact messages, so the server reads the table's prompt once
and later requests find it in the cache; more samples and the text answer come only when the
first candidates do not settle the answer (mode auto)."""

import pandas as pd
import pytest

from apps.inference.registry import model_for_role
from apps.inference.services import load_backend
from apps.tables import assistant, workbooks
from apps.tables.prompts import CODE_START, code_messages, text_prompt

pytestmark = [pytest.mark.model]


class Recording:
    """The real backend; keeps each request's messages and llama.cpp's own timings."""

    def __init__(self, backend) -> None:
        self.backend, self.spec = backend, backend.spec
        self.requests: list[dict] = []

    def _create(self, messages, params, n=1):
        from apps.inference.backends.openai_backend import _request_params

        extra = {"n": n} if n > 1 else {}
        # A shared server may keep a request waiting for a slot for minutes: no client timeout.
        client = self.backend.client.with_options(timeout=1800, max_retries=0)
        try:
            reply = client.chat.completions.create(
                model=self.backend.model, messages=messages, **_request_params(params), **extra
            )
        except self.backend._errors as exc:
            raise self.backend._fail(exc) from None
        timings = (reply.model_extra or {}).get("timings") or {}
        self.requests.append({"messages": messages, "n": n, "choices": len(reply.choices), "timings": timings})
        return [choice.message.content or "" for choice in reply.choices]

    def chat(self, messages, params, should_stop=None):
        yield from self._create(messages, params)

    def chat_choices(self, messages, params, n):
        return self._create(messages, params, n)


@pytest.fixture
def recording(assistant_server):
    return Recording(load_backend(model_for_role("assistant")))


@pytest.fixture
def sales() -> pd.DataFrame:
    from pathlib import Path

    return workbooks.clean_frame(pd.read_csv(Path(__file__).parent / "data" / "sales.csv", dtype=str))


def test_candidates_share_one_prompt_and_text_comes_only_when_unsettled(recording, sales):
    question = "What is the total revenue?"
    solution = assistant.solve(
        sales, question, recording, assistant.greedy_code(recording), want_text="unsettled", candidates_wanted=3
    )
    prompt = code_messages(sales, question)
    assert prompt[-1] == {"role": "assistant", "content": CODE_START}  # the reply is started as code
    code_requests = [r for r in recording.requests if r["messages"] == prompt]
    repair_requests = [r for r in recording.requests if r["messages"][: len(prompt) - 1] == prompt[:-1]]
    repair_requests = [r for r in repair_requests if r not in code_requests]
    text_requests = [r for r in recording.requests if r["messages"] == text_prompt(sales, question)]
    assert len(recording.requests) == len(code_requests) + len(repair_requests) + len(text_requests)
    settled_early = assistant.settled(solution.candidates[:2], solution.expected)
    # Greedy, one sample, and the last sample only when those two did not agree.
    assert len(code_requests) == (2 if settled_early else 3)
    assert len(repair_requests) == (1 if solution.first_failure and solution.first_failure["kind"] != "refused" else 0)
    # The text answer is read only when the candidates did not settle the answer.
    assert len(text_requests) == (0 if assistant.settled(solution.candidates, solution.expected) else 1)
    assert bool(solution.text) == bool(text_requests)
    # The server found the greedy request's prompt in its cache for the samples: at most the
    # few tokens after the shared prefix were read again (0 when the cache was lost to other
    # users of a shared server in between, which says so in cache_n).
    for later in code_requests[1:]:
        timings = later["timings"]
        if timings.get("cache_n"):
            assert timings["prompt_n"] <= 8, timings


def test_mode_both_always_reads_the_text_answer(recording, sales):
    question = "How many rows are there?"
    solution = assistant.solve(
        sales, question, recording, assistant.greedy_code(recording), want_text="always", candidates_wanted=2
    )
    assert solution.text
    assert any(r["messages"] == text_prompt(sales, question) for r in recording.requests)


def test_settled_needs_a_majority_of_agreeing_candidates_of_the_right_kind(sales):
    total = "result = df['revenue'].sum()"
    same = assistant.evaluate("result = float(df.revenue.sum())", sales, True)
    other = assistant.evaluate("result = df['revenue'].max()", sales, True)
    greedy = assistant.evaluate(total, sales, False)
    assert assistant.settled([greedy, same], "number")
    assert not assistant.settled([greedy], "number")  # one candidate is not a vote
    assert not assistant.settled([greedy, other], "number")
    assert assistant.settled([greedy, other, same], "number")  # two of three
    assert not assistant.settled([greedy, same], "name")  # agreeing on the wrong kind


def test_a_sample_may_write_a_few_times_the_greedy_answer_within_floor_and_ceiling():
    one_line = "result = df['revenue'].sum()"
    assert assistant.sample_budget(one_line) == assistant.SAMPLE_FLOOR
    longer = "totals = df.groupby('region')['revenue'].sum()\nresult = totals.idxmax()\n" * 2
    assert assistant.SAMPLE_FLOOR < assistant.sample_budget(longer) < assistant.SAMPLE_TOKENS
    assert assistant.sample_budget(longer * 5) == assistant.SAMPLE_TOKENS
