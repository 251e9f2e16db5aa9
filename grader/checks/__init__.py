"""The rubric: one pytest file per contract component, run in the trusted parent by grader.rubric.run."""
