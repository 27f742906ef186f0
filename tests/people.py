"""Who acts in a test: users holding roles, and clients signed in as them.

One place for what test modules used to write again each (client_for ×7, user_with/person ×4, role
rows made by hand): a change to how roles are granted or clients authenticate is made here once.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from grid.models import RoleAssignment

User = get_user_model()


def user_with(
    role: str | None = None,
    *,
    username: str | None = None,
    password: str | None = None,
    staff: bool = False,
    **unit: Any,
) -> Any:
    """A new user holding `role` over `unit` (street=, community= or grid_cell=; none for the
    operator). Without a password the user cannot sign in by form: hashing one costs ~0.3 s, and
    API tests authenticate with `api_client`; browser and admin-form tests pass one."""
    name = username or f"u{User.objects.count() + 1}"
    user = User.objects.create_user(username=name, password=password, is_staff=staff)
    if role is not None:
        grant(user, role, **unit)
    return user


def grant(user: Any, role: str, **unit: Any) -> RoleAssignment:
    """One more role for an existing user (a test fixture: production grants go through grid.roles)."""
    return RoleAssignment.objects.create(user=user, role=role, **unit)


def api_client(user: Any = None) -> APIClient:
    """A DRF client authenticated as `user` (anonymous when None)."""
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def signed_in(user: Any) -> Client:
    """A Django client with a session for `user` (admin pages, the tablet page)."""
    client = Client()
    client.force_login(user)
    return client
