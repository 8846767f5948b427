"""Agents worth asking (issue 15): the project's resources are retrieved only when a short
draft is unsure (SeaKR: mean next-token entropy), the prompt carries the stage, and a reply
names the resources it drew on."""

import math
from types import SimpleNamespace

from apps.inference.backends.openai_backend import ChatResult
from apps.pbl import agents
from tests.pbl.conftest import demo

SPEC = demo()
PROJECT = SimpleNamespace(title=SPEC["title"], driving_question=SPEC["driving_question"], spec=SPEC)
STAGE, AGENT = SPEC["stages"][0], SPEC["agents"][0]


class DraftBackend:
    """Answers the uncertainty draft with tokens whose top alternatives are spread as given."""

    def __init__(self, spread: int):
        self.spread, self.asked = spread, []

    def chat_result(self, messages, params, top_logprobs=0):
        self.asked.append((messages, params.max_tokens, top_logprobs))
        alternatives = {f"t{i}": math.log(1 / self.spread) for i in range(self.spread)}
        return ChatResult(text="draft", finish_reason="length", logprobs=[("t0", alternatives["t0"], alternatives)] * 4)


def test_a_sure_draft_answers_without_retrieval():
    backend = DraftBackend(spread=1)  # one alternative: entropy 0
    messages, record = agents.grounding(backend, AGENT, PROJECT, STAGE, "@Nova what is lead?", [], seed=1)
    assert record == {"fired": False, "entropy": 0.0, "threshold": agents.RETRIEVE_ENTROPY, "retrieved": []}
    assert "Resources:" not in messages[0]["content"]
    assert STAGE["title"] in messages[0]["content"]
    # The draft is short, asks for alternatives and sees no resources.
    drafted, max_tokens, top = backend.asked[0]
    assert (max_tokens, top) == (agents.DRAFT_TOKENS, agents.TOP_LOGPROBS)
    assert "Resources:" not in drafted[0]["content"]


def test_an_unsure_draft_retrieves_the_relevant_resources_and_asks_to_cite_them():
    backend = DraftBackend(spread=5)  # five equal alternatives: entropy ln 5
    question = "@Nova how do we test the fountain water for lead?"
    messages, record = agents.grounding(backend, AGENT, PROJECT, STAGE, question, [], seed=1)
    assert record["fired"] is True
    assert math.isclose(record["entropy"], round(math.log(5), 3))
    assert record["retrieved"][0] == "Testing water"
    system = messages[0]["content"]
    assert "[Testing water]" in system
    assert "name the one you use in square brackets" in system


def test_no_log_probabilities_means_retrieve():
    messages, record = agents.grounding(object(), AGENT, PROJECT, STAGE, "@Nova what is pH?", [], seed=1)
    assert record["fired"] is True
    assert record["entropy"] is None
    assert "Resources:" in messages[0]["content"]


def test_a_reply_names_the_resources_it_used():
    resources = SPEC["resources"]
    testing = next(r for r in resources if r["title"] == "Testing water")
    reply = "Test strips measure pH, chlorine and nitrate in minutes; lead needs a lab test or a certified kit."
    assert agents.cited_resources(reply, resources) == ["Testing water"]
    assert agents.with_citation(reply, ["Testing water"]).endswith("Source: “Testing water”")
    named = f"As [{testing['title']}] says, lead needs a lab test."
    assert agents.with_citation(named, ["Testing water"]) == named  # already named: nothing added
    assert agents.cited_resources("What do you think?", resources) == []
