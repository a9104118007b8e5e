"""``anomask demo``: the whole journey on the embedded synthetic default. ``cli`` (the stages
and the command), ``stages`` (completion markers, skip and rerun), ``report`` (``report.md``)."""
