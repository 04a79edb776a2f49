from django.contrib import admin
from django.http import HttpRequest
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from assessments import selectors as assessment_selectors
from trialsite import health


def _superusers_only(request: HttpRequest) -> bool:
    """The Django admin is for a superuser's configuration only; staff work in the dashboard, whatever their staff
    flag or model permissions say."""
    return bool(request.user.is_active and request.user.is_superuser)


admin.site.has_permission = _superusers_only  # type: ignore[method-assign]

api_v1 = [
    path("", include("participants.urls")),
    path("", include("scheduling.urls")),
    path("", include("assessments.urls")),
    path("", include("safety.urls")),
    path("", include("notifications.urls")),
    path("", include("exports.urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    # /readyz also reports the open safety alerts that reached no investigator (counts only; readiness unaffected).
    path("readyz", health.readyz, {"details": {"safety_alerts": assessment_selectors.safety_alerts_unnotified_counts}}),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include(api_v1)),
    path("l/", include("assessments.page_urls")),
    path("", include("dashboard.urls")),
]

# Outside a view (an unknown path, an id that is not a number), the API still answers JSON: trialsite.errors.
handler400 = "trialsite.errors.bad_request"
handler403 = "trialsite.errors.permission_denied"
handler404 = "trialsite.errors.page_not_found"
handler500 = "trialsite.errors.server_error"
