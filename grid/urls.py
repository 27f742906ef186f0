from django.urls import path

app_name = "grid"
urlpatterns: list = []
