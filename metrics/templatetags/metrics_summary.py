"""{% metrics_summary %}: the pipeline at a glance, for the admin index."""

from django import template

from metrics.selectors import metrics_snapshot

register = template.Library()


@register.inclusion_tag("metrics/summary.html")
def metrics_summary() -> dict:
    return {"metrics": metrics_snapshot()}
