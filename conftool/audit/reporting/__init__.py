"""Reports a director can read: the HTML and Markdown audit reports, trend charts and monthly availability.

Named ``reporting`` (not ``report``) because ``conftool.audit.report`` is the terminal summary module; both read
the same `RunRecord`s and this package reuses its `summarize` so every view counts the same way.
"""
