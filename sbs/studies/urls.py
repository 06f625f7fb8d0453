from django.urls import path

from sbs.analysis import views as analysis_views
from sbs.studies import views

app_name = "studies"
urlpatterns = [
    path("", views.study_list, name="list"),
    path("<int:pk>/", views.study_detail, name="detail"),
    path("<int:pk>/answers/", views.study_answers, name="answers"),
    path("<int:pk>/results/", analysis_views.results, name="results"),
    path("<int:pk>/report/<str:fmt>/", analysis_views.export, name="export"),
    path("<int:pk>/annotators/", views.study_annotators, name="annotators"),
    path("<int:pk>/annotators/invite/", views.study_reinvite, name="reinvite"),
    path("<int:pk>/annotators/revoke/", views.study_revoke_invite, name="revoke_invite"),
    path("<int:pk>/annotators/remove/", views.study_remove_annotator, name="remove_annotator"),
    path("<int:pk>/<slug:action>/", views.study_action, name="action"),
]
