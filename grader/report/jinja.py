"""The one Jinja2 environment of the reports: package templates, autoescaping on, strict undefined."""

import jinja2

ENVIRONMENT = jinja2.Environment(loader=jinja2.PackageLoader("grader.report", "templates"),
                                 autoescape=True, undefined=jinja2.StrictUndefined)
