"""Credential stores stay out of the Django admin: a TOTP key shown there would be a second copy of every staff
member's second factor. Devices are reset with ``manage.py reset_second_factor`` (audited)."""

from __future__ import annotations

from django.contrib import admin
from django_otp.plugins.otp_totp.models import TOTPDevice

if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)
