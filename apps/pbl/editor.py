"""The teacher's project editor without JSON: Django forms and formsets for the driving
question, stages, rubric rows (milestone and criterion), resources, agents and exam questions.
The forms check each field (errors beside it); the assembled project then goes through the same
validation as an imported file (apps.pbl.schema), whose errors are mapped back to the row and
field they name. JSON import and export stay as they were."""

import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from apps.pbl import schema

KEY = RegexValidator(r"^[a-z0-9][a-z0-9_-]{0,39}$", "Use 1–40 lower-case letters, digits, - or _ (e.g. define).")
AGENT_NAME = RegexValidator(r"^[A-Za-z][A-Za-z0-9_]{1,19}$", "2–20 letters or digits, starting with a letter.")
ROLES = ["researcher", "critic", "domain_expert", "teammate", "tutor"]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _words(text: str) -> list[str]:
    # ", " separates, a bare comma does not: a keyword may be a number such as 20,000.
    return [part.strip() for part in re.split(r"[;\n]|,\s", text or "") if part.strip()]


class ProjectForm(forms.Form):
    title = forms.CharField(max_length=200)
    driving_question = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=4000)
    goals = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="One goal per line.")


class StageForm(forms.Form):
    key = forms.CharField(max_length=40, validators=[KEY])
    title = forms.CharField(max_length=4000)
    goal = forms.CharField(required=False, max_length=4000)
    expected_minutes = forms.IntegerField(min_value=1, max_value=10000, initial=20)
    deliverable_title = forms.CharField(max_length=4000, label="Deliverable")
    deliverable_prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, label="Task")
    # Not stripped: the template's blank lines and trailing "- " are where learners write.
    template = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, strip=False)
    tasks = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="One per line.")


class CriterionForm(forms.Form):
    """One rubric row: a criterion, in a milestone, in a stage (rows with the same stage and
    milestone keys form one milestone; its title is taken from its first row)."""

    stage = forms.CharField(max_length=40, validators=[KEY], help_text="Stage key")
    milestone = forms.CharField(max_length=40, validators=[KEY], help_text="Milestone key")
    milestone_title = forms.CharField(max_length=4000)
    milestone_description = forms.CharField(required=False, max_length=4000)
    key = forms.CharField(max_length=40, validators=[KEY], label="Criterion key")
    text = forms.CharField(max_length=4000, label="Criterion")
    keywords = forms.CharField(required=False, help_text="Separated by commas (comma and space) or new lines")
    min_words = forms.IntegerField(required=False, min_value=0, max_value=5000)


class ResourceForm(forms.Form):
    title = forms.CharField(max_length=4000)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=20000)


class AgentForm(forms.Form):
    name = forms.CharField(max_length=20, validators=[AGENT_NAME])
    role = forms.ChoiceField(choices=[(r, r.replace("_", " ")) for r in ROLES])
    persona = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=4000)
    may = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="One per line.")
    must_not = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="One per line.", label="Must not")
    strictness = forms.ChoiceField(choices=[(s, s) for s in schema.STRICTNESS], initial="medium")


class QuestionForm(forms.Form):
    exam = forms.ChoiceField(choices=[("pre", "pre"), ("post", "post")])
    key = forms.CharField(max_length=40, validators=[KEY])
    kind = forms.ChoiceField(choices=[("mc", "multiple choice"), ("short", "short answer")])
    prompt = forms.CharField(max_length=4000)
    options = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="One per line.")
    answer = forms.IntegerField(required=False, min_value=1, help_text="Number of the right option (1 = first)")
    keywords = forms.CharField(required=False, help_text="Short answer: comma-separated keywords")
    min_matches = forms.IntegerField(required=False, min_value=1)
    model_answer = forms.CharField(required=False, max_length=4000, help_text="Short answer: an example answer")
    points = forms.FloatField(required=False, min_value=0.01, max_value=100)

    def clean(self):
        data = super().clean()
        if data.get("kind") == "mc":
            options = _lines(data.get("options", ""))
            if len(options) < 2:
                self.add_error("options", "A multiple-choice question needs at least two options.")
            if not data.get("answer"):
                self.add_error("answer", "Say which option is right.")
            elif len(options) >= 2 and data["answer"] > len(options):
                self.add_error("answer", f"There are only {len(options)} options.")
        elif data.get("kind") == "short" and not _words(data.get("keywords", "")):
            self.add_error("keywords", "A short-answer question needs keywords to mark it by.")
        return data


def _formset(form, extra: int = 0):
    return forms.formset_factory(form, extra=extra, can_delete=True, min_num=1, validate_min=True)


FORMSETS = {
    "stages": _formset(StageForm),
    "criteria": _formset(CriterionForm),
    "resources": forms.formset_factory(ResourceForm, extra=0, can_delete=True),
    "agents": _formset(AgentForm),
    "questions": _formset(QuestionForm),
}
ROW_TEMPLATES = {name: f"pbl/editor_rows.html#{name}-row" for name in FORMSETS}


def initial_from_spec(spec: dict | None) -> dict:
    """Initial data for every form from a stored project (None: one blank row each)."""
    if not spec:
        return {"project": {}, **{name: [{}] for name in FORMSETS if name != "resources"}, "resources": []}
    return {
        "project": {
            "title": spec["title"],
            "driving_question": spec["driving_question"],
            "goals": "\n".join(spec["goals"]),
        },
        "stages": [
            {
                "key": s["key"],
                "title": s["title"],
                "goal": s.get("goal", ""),
                "expected_minutes": s.get("expected_minutes", 20),
                "deliverable_title": s["deliverable"]["title"],
                "deliverable_prompt": s["deliverable"]["prompt"],
                "template": s["deliverable"].get("template", ""),
                "tasks": "\n".join(s.get("tasks", [])),
            }
            for s in spec["stages"]
        ],
        "criteria": [
            {
                "stage": s["key"],
                "milestone": m["key"],
                "milestone_title": m["title"],
                "milestone_description": m.get("description", ""),
                "key": c["key"],
                "text": c["text"],
                "keywords": ", ".join(c.get("keywords", [])),
                "min_words": c.get("min_words"),
            }
            for s in spec["stages"]
            for m in s["milestones"]
            for c in m["criteria"]
        ],
        "resources": [{"title": r["title"], "text": r["text"]} for r in spec.get("resources", [])],
        "agents": [{**a, "may": "\n".join(a["may"]), "must_not": "\n".join(a["must_not"])} for a in spec["agents"]],
        "questions": [
            {
                "exam": exam,
                "key": q["key"],
                "kind": q["kind"],
                "prompt": q["prompt"],
                "options": "\n".join(q.get("options", [])),
                "answer": q["answer"] + 1 if "answer" in q else None,
                "keywords": ", ".join(q.get("rubric", {}).get("keywords", [])),
                "min_matches": q.get("rubric", {}).get("min_matches"),
                "model_answer": q.get("rubric", {}).get("model_answer", ""),
                "points": q.get("points"),
            }
            for exam in ("pre", "post")
            for q in spec["exams"][exam]
        ],
    }


class Editor:
    """The bound or unbound forms of one editor page, and the project they make."""

    def __init__(self, data=None, spec: dict | None = None):
        initial = initial_from_spec(spec)
        self.project = ProjectForm(data, initial=initial["project"], prefix="project")
        self.formsets = {
            name: formset(data, initial=None if data is not None else initial[name], prefix=name)
            for name, formset in FORMSETS.items()
        }
        self.error = ""

    def _rows(self, name: str) -> list[forms.Form]:
        formset = self.formsets[name]
        return [f for f in formset.forms if f.has_changed() or not f.empty_permitted if not _deleted(f)]

    def is_valid(self) -> bool:
        # Every form is checked (no short circuit), so each shows its own errors.
        checks = [self.project.is_valid(), *(formset.is_valid() for formset in self.formsets.values())]
        return all(checks)

    def spec(self) -> dict:
        """The project dict (call after is_valid())."""
        rows = {
            name: [{k: v for k, v in f.cleaned_data.items() if k != "DELETE"} for f in self._rows(name)]
            for name in self.formsets
        }
        stages = []
        for stage in rows["stages"]:
            milestones: dict[str, dict] = {}
            for row in rows["criteria"]:
                if row["stage"] != stage["key"]:
                    continue
                milestone = milestones.setdefault(
                    row["milestone"], {"key": row["milestone"], "title": row["milestone_title"], "criteria": []}
                )
                if row.get("milestone_description") and "description" not in milestone:
                    milestone["description"] = row["milestone_description"]
                criterion = {"key": row["key"], "text": row["text"], "keywords": _words(row["keywords"])}
                if row.get("min_words"):
                    criterion["min_words"] = row["min_words"]
                milestone["criteria"].append(criterion)
            stages.append(
                {
                    "key": stage["key"],
                    "title": stage["title"],
                    "goal": stage["goal"],
                    "expected_minutes": stage["expected_minutes"],
                    "deliverable": {
                        "title": stage["deliverable_title"],
                        "prompt": stage["deliverable_prompt"],
                        "template": stage["template"],
                    },
                    "milestones": list(milestones.values()),
                    "tasks": _lines(stage["tasks"]),
                }
            )
        exams: dict[str, list] = {"pre": [], "post": []}
        for row in rows["questions"]:
            question = {"key": row["key"], "kind": row["kind"], "prompt": row["prompt"]}
            if row["kind"] == "mc":
                question |= {"options": _lines(row["options"]), "answer": row["answer"] - 1}
            else:
                question["rubric"] = {"keywords": _words(row["keywords"]), "min_matches": row.get("min_matches") or 1}
                if row.get("model_answer"):
                    question["rubric"]["model_answer"] = row["model_answer"]
            if row.get("points"):
                question["points"] = int(row["points"]) if float(row["points"]).is_integer() else row["points"]
            exams[row["exam"]].append(question)
        return {
            "format": schema.FORMAT,
            "title": self.project.cleaned_data["title"],
            "driving_question": self.project.cleaned_data["driving_question"],
            "goals": _lines(self.project.cleaned_data["goals"]),
            "stages": stages,
            "resources": rows["resources"],
            "agents": [{**a, "may": _lines(a["may"]), "must_not": _lines(a["must_not"])} for a in rows["agents"]],
            "exams": exams,
        }

    def validated(self) -> dict | None:
        """The project, checked as an imported file would be; None with errors on the forms."""
        if not self.is_valid():
            self.error = "Some fields need attention (marked below)."
            return None
        data = self.spec()
        for stage in data["stages"]:
            if not stage["milestones"]:
                self._row_error("stages", {"key": stage["key"]}, "key", "Add at least one rubric row for this stage.")
                return None
        try:
            return schema.validate_project(data)
        except ValidationError as exc:
            self._place(exc.messages[0], data)
            return None

    def _row_error(self, name: str, match: dict | None, on: str, message: str, where: str = "") -> None:
        """The error beside `on` in the last row with the values in `match` (a duplicate is the
        later row), or at the top of the page, with the place it names."""
        for form in reversed(self._rows(name)):
            if match and all(form.cleaned_data.get(field) == value for field, value in match.items()):
                form.add_error(on, message)
                self.error = "Some fields need attention (marked below)."
                return
        self.error = f"{where}: {message}" if where else message

    def _place(self, message: str, data: dict) -> None:
        """Put a schema error (it names a path such as stages[0].milestones[1].criteria[0].key)
        beside the field it is about; otherwise at the top of the page."""
        where, _, why = message.partition(": ")
        fields = dict(re.findall(r"(\w+)\[(\d+)\]", where))
        last = where.rsplit(".", 1)[-1] if "." in where else ""
        last = re.sub(r"\[\d+\]$", "", last)
        if where.startswith("agents[") and last in AgentForm.base_fields:
            self._row_error("agents", {"name": data["agents"][int(fields["agents"])]["name"]}, last, why, where)
        elif where.startswith("stages[") and "criteria" in fields:
            stage = data["stages"][int(fields["stages"])]
            milestone = stage["milestones"][int(fields["milestones"])]
            criterion = milestone["criteria"][int(fields["criteria"])]
            rows = [
                f
                for f in self._rows("criteria")
                if (f.cleaned_data["stage"], f.cleaned_data["milestone"], f.cleaned_data["key"])
                == (stage["key"], milestone["key"], criterion["key"])
            ]
            target = rows[-1] if rows else None
            on = last if last in CriterionForm.base_fields else "key"
            if target is not None:
                target.add_error(on, why)
                self.error = "Some fields need attention (marked below)."
            else:
                self.error = message
        elif where.startswith("stages[") and "milestones" not in fields:
            on = last if last in StageForm.base_fields else "key"
            self._row_error("stages", {"key": data["stages"][int(fields["stages"])]["key"]}, on, why, where)
        elif where.startswith("exams."):
            exam = where.split(".")[1].split("[")[0]
            match = {"exam": exam, "key": data["exams"][exam][int(fields[exam])]["key"]} if exam in fields else None
            on = last if last in QuestionForm.base_fields else "key"
            self._row_error("questions", match, on, why, where)
        else:
            self.error = message


def _deleted(form: forms.Form) -> bool:
    return bool(getattr(form, "cleaned_data", {}).get("DELETE")) if form.is_bound else False
