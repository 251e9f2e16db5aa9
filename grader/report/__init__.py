"""What a grade is turned into: results.json, report.html and the terminal summary."""
