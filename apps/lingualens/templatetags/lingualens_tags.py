from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag
def latent_url(sae, index) -> str:
    """The stable URL of one SAE latent: /lingualens/features/<model>@<sae>:<index>/."""
    return reverse("lingualens:latent", args=[sae.feature_id(int(index))])
