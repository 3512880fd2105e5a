"""Pages of runs: the HTML report (`genlab report`, report.py) and the explorer a person plays with
(`genlab serve`, server.py and static/explorer.html). Both show a model through `views.py`, which picks
what a model offers from its declarations (modality, conditioning, abilities), never from its name."""
