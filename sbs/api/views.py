"""The API tokens page: every account's own tokens (researchers for their scripts, an
annotator for a client that votes). A new token is shown once, in the response to the POST
that made it, and never again: only its digest is kept."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from sbs.accounts.roles import AuthedRequest, annotator_required
from sbs.api import selectors, services
from sbs.api.forms import TokenCreateForm


@never_cache
@annotator_required
@require_http_methods(["GET", "POST"])
def token_list(request: AuthedRequest) -> HttpResponse:
    form = TokenCreateForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        _row, new_token = services.token_create(user=request.user, name=form.cleaned_data["name"])
        form = TokenCreateForm()
    return render(
        request,
        "api/tokens.html",
        {"form": form, "tokens": selectors.tokens_of(request.user), "new_token": new_token},
    )


@annotator_required
@require_POST
def token_revoke(request: AuthedRequest, pk: int) -> HttpResponse:
    get_object_or_404(selectors.tokens_of(request.user), pk=pk)  # another's: 404
    if services.token_revoke(user=request.user, token_id=pk):
        messages.success(request, _("The token is revoked: requests with it are refused."))
    else:
        messages.info(request, _("This token was already revoked."))
    return redirect("api_tokens:list")
