"""The trial report: ``hairtrial report --db URL --out DIR``.

:func:`build_report` reads a trial database, runs the analysis
(:func:`hairtrial.analyze.analyze_trial`) unless one is given, and writes a self-contained
HTML report (figures embedded as data URIs, readable offline) and a PDF with the same
sections: participant flow, baseline table, time course of each endpoint, paired tests,
subgroup forest plot, per-subject waterfall, ROC, before/after trichoscopy panels with hair
overlays, measurement QC and methods. Reports are blinded by default (coded arm labels,
:mod:`hairtrial.report.blinding`). The same inputs give the same report: the PDF and the
figures byte for byte, the HTML apart from its generation time.

Matplotlib, Jinja2 and reportlab load only when a report is built.
"""

from hairtrial.report.build import ReportFiles, build_report, read_subjects

__all__ = ["ReportFiles", "build_report", "read_subjects"]
