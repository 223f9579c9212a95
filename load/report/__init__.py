"""Reports of a run: template arguments built from data (pure), then rendered to HTML or Markdown."""
