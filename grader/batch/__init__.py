"""Batch grading for instructors: many submissions, in parallel, resumable."""
