"""The stages of `metaaug train`: meta-training with validation, fine-tuning, evaluation."""
