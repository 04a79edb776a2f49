"""Export API (v1): datasets as streamed files and data freezes. Thin views: parse, check access (in the service),
stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exports import selectors, services
from exports.models import ExportFreeze

_FILTERS = [
    OpenApiParameter("study", str, description="Study code(s), comma-separated"),
    OpenApiParameter("site", str, description="Site code(s), comma-separated; must be sites you may export"),
    OpenApiParameter("instrument", str, description="Instrument code(s): responses, scores, safety_alerts"),
    OpenApiParameter(
        "visit_code",
        str,
        description="Visit code(s): every dataset but participants. Blinded exports (no arm column) match "
        "timepoint codes (BASELINE, PRIMARY ...) instead",
    ),
    OpenApiParameter("changed_since", OpenApiTypes.DATETIME, description="Rows whose source changed since (ISO)"),
    OpenApiParameter("layout", str, enum=["long", "wide"], description="scores only"),
    OpenApiParameter("dates", str, enum=["iso"], description="Add ISO date columns (permission export_dates)"),
]


def _stream(chunks: Iterator[bytes], content_type: str, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


class DatasetExport(APIView):
    @extend_schema(
        summary="Export a dataset (csv, json, sav, dta) or the codebook (csv, json), streamed",
        parameters=_FILTERS,
        responses={(200, "*/*"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, dataset: str, fmt: str) -> StreamingHttpResponse:
        export = services.export_open(user=request.user, dataset=dataset, fmt=fmt, params=request.query_params)
        return _stream(export.chunks, export.content_type, f"trialsite-{export.filename}")


class FreezeOutput(serializers.ModelSerializer[ExportFreeze]):
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="username", read_only=True)
    download = serializers.SerializerMethodField()

    class Meta:
        model = ExportFreeze
        fields = [
            "id",
            "created_at",
            "created_by",
            "label",
            "site_codes",
            "includes_arm",
            "size",
            "sha256",
            "manifest",
            "download",
        ]

    def get_download(self, obj: ExportFreeze) -> str:
        return f"/api/v1/export/freezes/{obj.pk}.zip"


class FreezeInput(serializers.Serializer[Any]):
    # The stubs give Field a ``label`` attribute (its title); this field of the same name is the API's, kept.
    label = serializers.CharField(  # type: ignore[assignment]
        max_length=200, required=False, allow_blank=True, default=""
    )


class FreezeListCreate(APIView):
    # A user's freezes of the day are limited (EXPORT_FREEZES_PER_DAY): the create answers 429 beyond them.
    rate_limited = True

    @extend_schema(summary="Data freezes you may download", responses=FreezeOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(FreezeOutput(selectors.freezes_for(request.user), many=True).data)

    @extend_schema(
        summary="Freeze every dataset, the codebook and a manifest into one zip",
        request=FreezeInput,
        responses={201: FreezeOutput},
    )
    def post(self, request: Request) -> Response:
        data = FreezeInput(data=request.data)
        data.is_valid(raise_exception=True)
        freeze = services.freeze_create(by=request.user, label=data.validated_data["label"])
        return Response(FreezeOutput(freeze).data, status=status.HTTP_201_CREATED)


class FreezeDownload(APIView):
    @extend_schema(summary="Download a freeze (zip)", responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        freeze, chunks = services.freeze_open(user=request.user, freeze_id=pk)
        response = _stream(chunks, "application/zip", f"trialsite-{freeze.file_name}")
        response["Content-Length"] = str(freeze.size)
        response["Digest"] = f"sha-256={freeze.sha256}"
        return response
