from django.urls import path

from sbs.voting import views

app_name = "voting"
urlpatterns = [
    path("", views.my_studies, name="my_studies"),
    path("guidelines/", views.guidelines, name="guidelines"),
    path("<int:study_id>/", views.vote, name="vote"),
    path("<int:study_id>/votes/", views.votes, name="votes"),
    path("<int:study_id>/votes/<int:assignment_id>/", views.vote_change, name="vote_change"),
]
