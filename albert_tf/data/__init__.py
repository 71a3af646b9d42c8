"""Data: TFRecord feature schemas and pretraining-data creation."""
