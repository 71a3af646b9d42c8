"""Evaluation metrics as the original and the standard scripts compute them.

`glue` (accuracy, F1, MCC, Pearson/Spearman per GLUE task), `squad` (the
official SQuAD v1.1/v2.0 evaluation and the original's prediction
writing), `tokens` (entity-level scores through seqeval).
"""
