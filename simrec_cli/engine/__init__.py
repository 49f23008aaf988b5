"""Training, evaluation and checkpoints: joins the data and models packages into runs."""
