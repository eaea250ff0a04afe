"""Post metrics: after a post is published the engine reads its views, likes, comments and
shares at growing steps (settings.post_metrics.steps_s) into the `post_metric` time series.

`plan` decides what is due (pure), `readers` calls each platform's batch read, `scan` is the
engine job that ties them together (an arq cron on the `metrics` queue).
"""
