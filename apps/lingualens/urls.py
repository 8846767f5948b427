from django.urls import path

from apps.lingualens import views

app_name = "lingualens"
urlpatterns = [
    path("", views.index, name="index"),
    path("overview.svg", views.overview_svg, name="overview_svg"),
    path("cross-lingual.svg", views.cross_lingual_svg, name="cross_lingual_svg"),
    path("corpora/upload/", views.corpus_upload, name="corpus_upload"),
    path("train/", views.train, name="train"),
    path("catalogue/", views.catalogue, name="catalogue"),
    path("catalogue/import/", views.catalogue_import, name="catalogue_import"),
    path("catalogue/export.jsonl", views.catalogue_export, name="catalogue_export"),
    path("catalogue/<int:feature_id>/", views.feature_detail, name="feature"),
    path("catalogue/<int:feature_id>/layers.svg", views.feature_layers_svg, name="feature_layers_svg"),
    path("saes/<slug:slug>/", views.sae_detail, name="sae"),
    path("saes/<slug:slug>/refresh/", views.sae_refresh, name="sae_refresh"),
    path("saes/<slug:slug>/loss.svg", views.sae_loss_svg, name="sae_loss_svg"),
    path("saes/<slug:slug>/<str:action>/", views.sae_action, name="sae_action"),
    # Neuronpedia-style stable names: <model>@<sae>:<index>
    path("features/<str:feature_id>/", views.latent_detail, name="latent"),
    path("features/<str:feature_id>/histogram.svg", views.latent_histogram_svg, name="latent_histogram"),
    path("search/", views.search, name="search"),
    path("search/<int:job_id>/result/", views.search_result, name="search_result"),
    path("steer/", views.steer, name="steer"),
    path("steer/<int:job_id>/", views.steer_run, name="steer_run"),
]
