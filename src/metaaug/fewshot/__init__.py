"""Few-shot classification with and without augmentation: episodes, learners, arms, statistics."""
