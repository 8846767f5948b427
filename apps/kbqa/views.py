from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render

from apps.accounts.permissions import area_required
from apps.kbqa import services
from apps.kbqa.models import KnowledgeBase

ENTITIES_PER_PAGE = 25


@area_required("kbqa")
def index(request):
    return redirect("kbqa:kb_list")


@area_required("kbqa")
def kb_list(request):
    return render(request, "kbqa/kb_list.html", {"kbs": services.list_kbs()})


@area_required("kbqa")
def kb_detail(request, name: str):
    try:
        kb = services.get_kb(name)
    except KnowledgeBase.DoesNotExist:
        raise Http404("No such knowledge base.") from None
    query = request.GET.get("q", "")[:200]
    page = Paginator(services.search_entities(kb, query), ENTITIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {"kb": kb, "query": query, "page": page}
    if request.headers.get("HX-Request"):  # the search box swaps in the entity table only
        return render(request, "kbqa/kb_detail.html#entities", context)
    return render(request, "kbqa/kb_detail.html", {**context, "schema": services.kb_schema(kb)})
