"""Renderers: the run's results (acceptance.results.RunResults) as text, JSON and HTML."""
