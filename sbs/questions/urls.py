from django.urls import path

from sbs.questions import views

app_name = "questions"
urlpatterns = [
    path("", views.question_sets, name="sets"),
    path("<int:pk>/", views.question_set_detail, name="detail"),
    path("benchmarks/", views.benchmarks, name="benchmarks"),
    path("benchmarks/<int:pk>/", views.benchmark_detail, name="benchmark"),
    path("benchmarks/model/<int:model_pk>/", views.model_benchmarks, name="model_benchmarks"),
    path("benchmarks/study/<int:study_pk>/", views.study_benchmarks, name="study_benchmarks"),
]
