from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from sbs.accounts import views as account_views
from sbs.api.api import urls as api_urls

urlpatterns = [
    path("", account_views.home, name="home"),
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The token rides in the fragment (/invite/#<token>), never in a logged request line;
    # the old form of the link answers 404 with a message and withdraws its token.
    path("invite/", account_views.invite_accept, name="invite"),
    path("invite/<str:token>/", account_views.invite_old_link, name="invite_old_link"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("studies/models/", include("sbs.catalog.urls")),
    path("studies/questions/", include("sbs.questions.urls")),
    path("studies/", include("sbs.studies.urls")),
    path("annotate/", include("sbs.voting.urls")),
    path("api/", api_urls()),
    path("account/api-tokens/", include("sbs.api.urls")),
    path("admin/", admin.site.urls),
]
