from django import forms
from django.utils.translation import gettext_lazy as _


class CountJobForm(forms.Form):
    n = forms.IntegerField(min_value=1, max_value=1000, initial=20, label=_("Count to"))
    delay = forms.FloatField(min_value=0, max_value=5, initial=0.2, label=_("Seconds per step"))
