from django.urls import path

from counter import views

urlpatterns = [
    path("", views.index, name="index"),
    path("ping", views.ping, name="ping"),
]
