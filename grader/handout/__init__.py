"""What instructors hand out: the student kit and the Gradescope autograder (never the solution)."""
