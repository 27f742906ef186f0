from django.apps import AppConfig


class DataConfig(AppConfig):
    # Demo data sits above every other app: its generator may use grid, orgs and mapping services.
    name = "data"
    label = "demo_data"
    verbose_name = "演示数据"
