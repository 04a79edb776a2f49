"""Analysis API (v1): pre/post effect sizes. A thin view: the read parses and checks its parameters and the caller's
scope (exports.analysis.effect_sizes), the view renders."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exports.analysis.effect_sizes import effect_sizes
from exports.analysis.scales import VARIABLES


class EffectSizeRowOutput(serializers.Serializer[Any]):
    study = serializers.CharField()
    scale = serializers.ChoiceField(choices=list(VARIABLES), help_text="<INSTRUMENT>_<scale code>")
    instrument = serializers.CharField()
    scale_code = serializers.CharField()
    from_visit = serializers.CharField()
    to_visit = serializers.CharField()
    arm = serializers.CharField(
        allow_null=True,
        required=False,
        help_text="Present only for a caller who may see arms (an unblinded statistician after unblinding): null for "
        "the pooled row, else the arm code. Blinded callers get pooled rows without this key.",
    )
    n = serializers.IntegerField(help_text="Participants scored at both visits")
    mean_change = serializers.FloatField(allow_null=True)
    sd_change = serializers.FloatField(allow_null=True)
    d_z = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    t = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)


class EffectSizesOutput(serializers.Serializer[Any]):
    confidence = serializers.FloatField()
    ci_method = serializers.CharField()
    method = serializers.DictField(child=serializers.CharField())
    results = EffectSizeRowOutput(many=True)


class EffectSizes(APIView):
    @extend_schema(
        summary="Pre/post effect sizes per study, scale, visit pair and (only when unblinded) arm",
        parameters=[
            OpenApiParameter("study", str, description="Study code(s), comma-separated"),
            OpenApiParameter("site", str, description="Site code(s), comma-separated; must be sites you may export"),
            OpenApiParameter("scale", str, description=f"Scale(s), comma-separated: {', '.join(VARIABLES)}"),
            OpenApiParameter("from_visit", str, description="First visit code (with to_visit; default BASELINE)"),
            OpenApiParameter("to_visit", str, description="Second visit code (with from_visit; default the endpoint)"),
        ],
        responses=EffectSizesOutput,
    )
    def get(self, request: Request) -> Response:
        # Rendered from plain values (floats at full precision), not through a serializer per row.
        return Response(effect_sizes(request.user, request.query_params))
