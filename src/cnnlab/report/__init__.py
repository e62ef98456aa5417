"""The HTML report of a run: one self-contained page (inline CSS and PNGs, no network, no script).

``write_report(run_or_path, data=None, lang="en", out=None, force=False)`` is the entry point
(``cnnlab report RUN`` and the end of ``cnnlab train`` call it). Compute and render are separate:
``collect.collect_report`` returns a ``ReportData``; ``render.render_html`` formats it.

>>> from cnnlab.report import write_report        # doctest: +SKIP
>>> write_report("runs/lenet5", lang="pt")        # doctest: +SKIP
PosixPath('runs/lenet5/report.html')
"""

from __future__ import annotations

from cnnlab.report.api import REPORT_NAME, check_not_running, write_report

report = write_report  # ``cnnlab.report`` in the lazy top-level API names this function

__all__ = ["REPORT_NAME", "check_not_running", "report", "write_report"]
