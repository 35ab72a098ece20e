"""Each stage's grading rules that are code, not secrets: what is compared and how."""
