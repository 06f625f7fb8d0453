"""The authentication backend: Django's, with the user's role read in the same query.

Every page asks whether its visitor is a researcher (the menu, the researcher-only views).
``get_user`` loads the session's user with ``in_researchers`` annotated (an EXISTS over the
researchers group), so :func:`sbs.accounts.roles.is_researcher` needs no second query.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef

from sbs.accounts.models import RESEARCHERS_GROUP


class RoleAwareBackend(ModelBackend):
    def get_user(self, user_id: Any) -> User | None:
        membership = User.groups.through.objects.filter(
            user_id=OuterRef("pk"), group__name=RESEARCHERS_GROUP
        )
        user = User.objects.annotate(in_researchers=Exists(membership)).filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None
