from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag
def latent_url(sae, index) -> str:
    """The stable URL of one SAE latent: /lingualens/features/<model>@<sae>:<index>/."""
    return reverse("lingualens:latent", args=[sae.feature_id(int(index))])


@register.inclusion_tag("lingualens/_default_set.html")
def default_set_banner() -> dict:
    """While the default SAE set is prepared (or stopped midway): its stage and the expected wait."""
    from apps.lingualens import default_set

    return {"state": default_set.status()}
