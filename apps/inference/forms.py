from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from apps.inference.registry import all_models


def model_choices() -> list[tuple[str, str]]:
    return [
        (spec.name, f"{spec.name} ({'chat' if spec.chat else 'completion'}, {spec.backend})")
        for spec in all_models().values()
    ]


class PlaygroundForm(forms.Form):
    model = forms.ChoiceField(label=_("Model"))
    system = forms.CharField(
        label=_("System prompt"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        initial="You are a helpful assistant.",
    )
    message = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 4}), max_length=20_000)
    temperature = forms.FloatField(label=_("Temperature"), initial=0.7, min_value=0, max_value=2)
    top_p = forms.FloatField(label=_("Top p"), initial=1.0, min_value=0.01, max_value=1)
    max_tokens = forms.IntegerField(label=_("Max tokens"), initial=128, min_value=1, max_value=4096)
    repetition_penalty = forms.FloatField(label=_("Repetition penalty"), initial=1.2, min_value=1, max_value=2)
    seed = forms.IntegerField(label=_("Seed"), required=False)
    stop = forms.CharField(label=_("Stop sequence"), required=False, max_length=40)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = model_choices()
        self.fields["model"].initial = settings.DEFAULT_CHAT_MODEL

    def request_kwargs(self) -> dict:
        data = self.cleaned_data
        params = {key: data[key] for key in ("temperature", "top_p", "max_tokens", "repetition_penalty", "seed")}
        params["stop"] = [data["stop"]] if data["stop"] else []
        spec = all_models()[data["model"]]
        if spec.chat:
            messages = [{"role": "system", "content": data["system"]}] if data["system"].strip() else []
            messages.append({"role": "user", "content": data["message"]})
            return {"model_name": spec.name, "messages": messages, "params": params}
        prompt = f"{data['system'].strip()}\n\n{data['message']}" if data["system"].strip() else data["message"]
        return {"model_name": spec.name, "prompt": prompt, "params": params}
