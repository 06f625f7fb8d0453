from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from sbs.accounts import views as account_views
from sbs.analysis import views as analysis_views
from sbs.studies import views as study_views
from sbs.voting import views as voting_views

studies_patterns = (
    [
        path("", study_views.study_list, name="list"),
        path("<int:pk>/", study_views.study_detail, name="detail"),
        path("<int:pk>/answers/", study_views.study_answers, name="answers"),
        path("<int:pk>/results/", analysis_views.results, name="results"),
        path("<int:pk>/report/<str:fmt>/", analysis_views.export, name="export"),
        path("<int:pk>/annotators/invite/", study_views.study_reinvite, name="reinvite"),
        path("<int:pk>/<slug:action>/", study_views.study_action, name="action"),
        path("questions/", study_views.question_sets, name="question_sets"),
        path("questions/<int:pk>/", study_views.question_set_detail, name="question_set"),
        path("models/", study_views.models_list, name="models"),
        path("models/<int:pk>/adapt/", study_views.model_adapt, name="adapt"),
    ],
    "studies",
)
voting_patterns = (
    [
        path("", voting_views.my_studies, name="my_studies"),
        path("guidelines/", voting_views.guidelines, name="guidelines"),
        path("<int:study_id>/", voting_views.vote, name="vote"),
    ],
    "voting",
)

urlpatterns = [
    path("", account_views.home, name="home"),
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The token rides in the fragment (/invite/#<token>), never in a logged request line;
    # the old form of the link answers 404 with a message and withdraws its token.
    path("invite/", account_views.invite_accept, name="invite"),
    path("invite/<str:token>/", account_views.invite_old_link, name="invite_old_link"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("studies/", include(studies_patterns)),
    path("annotate/", include(voting_patterns)),
    path("admin/", admin.site.urls),
]
