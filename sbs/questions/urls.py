from django.urls import path

from sbs.questions import views

app_name = "questions"
urlpatterns = [
    path("", views.question_sets, name="sets"),
    path("<int:pk>/", views.question_set_detail, name="detail"),
]
