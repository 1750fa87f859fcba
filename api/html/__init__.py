"""HTML pages: the journey report (view, SVG charts, flow chart, template) and the
offline API docs page."""
