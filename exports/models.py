"""Data freezes: immutable snapshots of every dataset, the codebook and a manifest, kept as a zip with its SHA-256."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class ExportFreeze(models.Model):
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    label = models.CharField(max_length=200, blank=True)
    # The scope the snapshot was taken with: who may download it is decided from these, never widened later.
    site_codes = models.JSONField(default=list)
    study_codes = models.JSONField(default=list, blank=True)
    includes_arm = models.BooleanField(default=False)
    file_name = models.CharField(max_length=200, unique=True)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    manifest = models.JSONField()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("export_dates", "Can export calendar dates (?dates=iso)")]

    def __str__(self) -> str:
        return f"freeze {self.pk} ({self.created_at:%Y-%m-%d %H:%M})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A freeze is evidence of what an analysis used: written once, never changed.
        if self.pk is not None and ExportFreeze.objects.filter(pk=self.pk).exists():
            raise ValueError("an export freeze is immutable")
        super().save(*args, **kwargs)
