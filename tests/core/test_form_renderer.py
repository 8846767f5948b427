"""The form renderer writes the plainest widget templates out in Python (apps.core.form_renderer);
every field it renders must come out exactly as Django's templates render it."""

from django import forms
from django.conf import settings
from django.forms.renderers import DjangoTemplates
from django.utils.safestring import mark_safe

from apps.accounts.forms import CohortForm, LoginForm, SignUpForm, TokenForm
from apps.core.form_renderer import WRITTEN_OUT, FastWidgetRenderer
from apps.pbl import editor, schema

TEMPLATES = DjangoTemplates()
FAST = FastWidgetRenderer()


class Awkward(forms.Form):
    """Values and attributes that need escaping, booleans, numbers, and a label suffix."""

    text = forms.CharField(label='Name <b>&"quoted"', initial='<script>alert("x")</script> & more')
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "data-x": '"><img>'}), initial="line\n<two>")
    empty_note = forms.CharField(widget=forms.Textarea, required=False)
    count = forms.IntegerField(initial=0, widget=forms.NumberInput(attrs={"step": 0.5, "disabled": True}))
    flag = forms.BooleanField(initial=True, required=False)
    off = forms.BooleanField(initial=False, required=False)
    secret = forms.CharField(widget=forms.PasswordInput(render_value=True), initial="p<w")
    hidden = forms.CharField(widget=forms.HiddenInput, initial=mark_safe("<safe>"))
    upload = forms.FileField(required=False)
    email = forms.EmailField(initial="a@b.c", label_suffix=" ?")
    when = forms.DateField(widget=forms.DateInput(attrs={"type": "date", "hidden": False}))
    choice = forms.ChoiceField(choices=[("a", "A & B"), ("b", "<b>")], initial="b")  # a template one


def rendered(form: forms.Form, renderer) -> list[str]:
    form.renderer = renderer
    return [f"{field.label_tag()}|{field}|{field.as_hidden()}" for field in form]


def every_form():
    spec = schema.parse_project_json((settings.BASE_DIR / "apps/pbl/data/clean_water.json").read_bytes())
    project_editor = editor.Editor(spec=spec)
    yield project_editor.project
    for formset in project_editor.formsets.values():
        yield from formset.forms
        yield formset.management_form
    bound = editor.Editor(data={"project-title": "<x>", "stages-TOTAL_FORMS": "1", "stages-INITIAL_FORMS": "0"})
    bound.is_valid()  # with errors, as after a failed save
    yield bound.project
    yield from bound.formsets["stages"].forms
    yield from (LoginForm(), SignUpForm(), CohortForm(), TokenForm(), Awkward(), Awkward(data={"count": "x"}))


def test_every_field_renders_as_djangos_templates_render_it():
    fields = 0
    for form in every_form():
        fast, reference = rendered(form, FAST), rendered(form, TEMPLATES)
        assert fast == reference
        fields += len(fast)
    assert fields > 150  # the editor's rows are all there


def test_each_written_out_template_is_djangos_own():
    """No project template overrides one of them (the renderer would skip the override)."""
    for name in WRITTEN_OUT:
        origin = TEMPLATES.get_template(name).template.origin.name
        assert "/django/forms/templates/django/forms/" in origin, origin


def test_the_site_uses_it():
    assert settings.FORM_RENDERER == "apps.core.form_renderer.FastWidgetRenderer"
