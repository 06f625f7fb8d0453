from django.urls import path

from sbs.catalog import views

app_name = "catalog"
urlpatterns = [
    path("", views.models_list, name="models"),
    path("<int:pk>/", views.model_detail, name="detail"),
    path("<int:pk>/adapt/", views.model_adapt, name="adapt"),
    path("<int:pk>/ensemble/", views.model_ensemble, name="ensemble"),
    path("<int:pk>/download/", views.model_download, name="download"),
]
