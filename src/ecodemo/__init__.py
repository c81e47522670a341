"""ecodemo: frugal-AI eco-demonstrator monitoring pipeline.

The package never imports Airflow; ``dags/`` wires its stage functions (``ecodemo.pipeline``).
"""

__version__ = "0.1.0"
