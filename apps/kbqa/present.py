"""What the KBQA pages draw: the program as a graph, evaluation bars. Plain data for templates
(the SVG is written in the template, so every label goes through autoescaping)."""

from __future__ import annotations

from typing import Any

NODE_WIDTH = 190
NODE_HEIGHT = 58
GAP_X = 40
GAP_Y = 18
LABEL_CHARS = 26


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def program_graph(program: list[dict], steps: list[dict] | None = None) -> dict[str, Any]:
    """Layered layout of a KoPL program: a step's column is one more than its deepest input,
    so data flows left to right and the final step sits on the right."""
    steps = steps or []
    depth: list[int] = []
    for step in program:
        deps = [d for d in step.get("dependencies", []) if isinstance(d, int) and 0 <= d < len(depth)]
        depth.append(1 + max((depth[d] for d in deps), default=-1))
    rows: dict[int, int] = {}
    nodes = []
    for index, step in enumerate(program):
        column = depth[index]
        row = rows.get(column, 0)
        rows[column] = row + 1
        outcome = steps[index] if index < len(steps) else {}
        output = outcome.get("output") or {}
        if outcome.get("error"):
            status, result = "error", "error"
        elif output:
            status = "ok"
            result = f"{output.get('count')} result(s)" if "count" in output else str(output.get("value", ""))
        else:
            status, result = "pending", ""
        inputs = ", ".join(str(x) for x in step.get("inputs", []))
        nodes.append(
            {
                "index": index,
                "x": 10 + column * (NODE_WIDTH + GAP_X),
                "y": 10 + row * (NODE_HEIGHT + GAP_Y),
                "function": step.get("function", "?"),
                "inputs": _short(inputs),
                "inputs_full": inputs,
                "result": _short(result),
                "status": status,
            }
        )
    edges = []
    for index, step in enumerate(program):
        for dep in step.get("dependencies", []):
            if isinstance(dep, int) and 0 <= dep < index:
                source, target = nodes[dep], nodes[index]
                edges.append(
                    {
                        "x1": source["x"] + NODE_WIDTH,
                        "y1": source["y"] + NODE_HEIGHT / 2,
                        "x2": target["x"],
                        "y2": target["y"] + NODE_HEIGHT / 2,
                    }
                )
    width = 20 + (max(depth, default=0) + 1) * (NODE_WIDTH + GAP_X)
    height = 20 + max(rows.values(), default=1) * (NODE_HEIGHT + GAP_Y)
    return {"nodes": nodes, "edges": edges, "width": width, "height": height, "w": NODE_WIDTH, "h": NODE_HEIGHT}


def program_text(program: list[dict]) -> str:
    """A program on one line: "Find(Germany) → Relate(capital, forward) → QueryName()"."""
    return " → ".join(
        f"{step.get('function', '?')}({', '.join(str(x) for x in step.get('inputs', []))})"
        for step in program
        if isinstance(step, dict)
    )


def question_title(question) -> str:
    """The heading of a history entry: an edited re-run is its program, not the question it was
    edited from (whose answer it no longer is)."""
    if question.edited_from_id:
        return f"Edited program: {program_text(question.program)}"
    return question.text


def evaluation_rows(results: list[dict]) -> list[dict]:
    """One row per (KB, setting, wordings) with accuracy with and without pruning side by side,
    and bar widths in percent for the chart."""
    rows: dict[tuple, dict] = {}
    for item in results:
        key = (item["kb"], item["setting"], item["wordings"])
        row = rows.setdefault(key, {"kb": item["kb"], "setting": item["setting"], "wordings": item["wordings"]})
        row["with" if item["pruning"] else "without"] = item
    for row in rows.values():
        for side in ("with", "without"):
            if side in row:
                row[f"{side}_pct"] = round(100 * row[side]["answer_accuracy"], 1)
    return list(rows.values())
