from django.urls import path, re_path

from exports import analysis_api, api

urlpatterns = [
    path("export/freezes/", api.FreezeListCreate.as_view(), name="export-freezes"),
    path("export/freezes/<int:pk>.zip", api.FreezeDownload.as_view(), name="export-freeze-download"),
    re_path(r"^export/(?P<dataset>[a-z_]+)\.(?P<fmt>[a-z]+)$", api.DatasetExport.as_view(), name="export-dataset"),
    path("analysis/effect-sizes/", analysis_api.EffectSizes.as_view(), name="analysis-effect-sizes"),
]
